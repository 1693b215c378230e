"""AWS WAF (wafv2) JSON -> one wafproxy rule file (``wafproxy import-aws``).

Input documents are what ``aws wafv2 get-web-acl`` / ``get-rule-group`` / ``get-ip-set`` /
``get-regex-pattern-set`` print, or the bare objects inside them. ARNs resolve against the
other documents given (by ARN, else by the name in the ARN). The output is docs/rule-language.md.

Lossless or loud: a key this package does not know is an error naming its JSON path, and so is
anything wafproxy cannot do the same way. Dropped on purpose, because they do not change what
happens to a request:

- LockToken, ApplicationIntegrationURL, Id, ARN (only used to resolve references),
  VisibilityConfig (metrics, sampling), a web ACL's Capacity (computed here),
  ManagedByFirewallManager, RetrofittedByFirewallManager, TokenDomains (CAPTCHA / challenge
  tokens), ApplicationConfig (console metadata), a rule group's AvailableLabels and
  ConsumedLabels (computed), an IP set's IPAddressVersion (each address carries its own);
- empty Pre/PostProcessFirewallManagerRuleGroups;
- CaptchaConfig / ChallengeConfig at their default (unset, or immunity 300 s): wafproxy has
  no CAPTCHA or challenge action, and those actions are refused.

Kept in another form:

- Description -> description; a web ACL's LabelNamespace (or the one its ARN implies) ->
  label_namespace without the trailing ':'.
- A custom rule group's labels are namespaced ``rulegroup:<name>`` here, so label_match keys
  under an imported group's AWS namespace (``awswaf:<account>:rulegroup:<name>:``) are rewritten.
- A rule group's CustomResponseBodies join the file's custom_response_bodies (names are global).
- ExcludedRules of a rule group reference become ``count`` overrides, as AWS treats them.
- AWS managed rule groups map to wafproxy's by MANAGED_GROUPS, with a warning (similar scope,
  not the same rules); their Version, ExcludedRules and RuleActionOverrides are dropped.
- ByteMatchStatement.SearchString is base64 in the API and in what the AWS CLI prints (it
  base64-encodes blobs; AWS's get-web-acl example shows ``"SearchString": "dGVzdHN0cmluZw=="``)
  but plain text in the console's JSON editor. SearchStringEncoding.AUTO reads it as base64 in
  get-* output (``{"WebACL": ...}``) and as text in a bare object. SearchStringBase64
  (CloudFormation) is always base64.

Refused: RateBasedStatement CustomKeys, Captcha / Challenge actions, the JA3Fingerprint /
JA4Fingerprint / UriFragment fields, ManagedRuleGroupConfigs, managed groups without a counterpart,
AssociationConfig, DataProtectionConfig, OnSourceDDoSProtectionConfig, Firewall Manager rule
groups, non-default CaptchaConfig / ChallengeConfig.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from wafproxy.config.aws_import.documents import document_from_json, read_json
from wafproxy.config.aws_import.fields import TRANSFORM_TYPES
from wafproxy.config.aws_import.model import AwsImportError, ImportResult, SearchStringEncoding
from wafproxy.config.aws_import.rule_file import convert_documents
from wafproxy.config.aws_import.statements import MANAGED_GROUPS
from wafproxy.config.aws_import.yaml_dump import dump_yaml

__all__ = [
    "MANAGED_GROUPS",
    "TRANSFORM_TYPES",
    "AwsImportError",
    "ImportResult",
    "SearchStringEncoding",
    "convert",
    "dump_yaml",
    "import_files",
    "read_json",
]


def convert(
    documents: Sequence[tuple[str, object]],
    *,
    search_string: SearchStringEncoding = SearchStringEncoding.AUTO,
) -> ImportResult:
    """(file name, parsed JSON) pairs -> one rule file's data, plus warnings for a human."""
    if not documents:
        raise AwsImportError("", "", "no documents to import")
    docs = [document_from_json(name, value) for name, value in documents]
    return convert_documents(docs, search_string)


def import_files(
    paths: Sequence[Path], *, search_string: SearchStringEncoding = SearchStringEncoding.AUTO
) -> str:
    documents = [(str(path), read_json(path)) for path in paths]
    result = convert(documents, search_string=search_string)
    return dump_yaml(result.data, result.warnings, [Path(p).name for p in paths])
