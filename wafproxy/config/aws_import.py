"""AWS WAF (wafv2) JSON -> one wafproxy rule file (``wafproxy import-aws``).

Input documents are what ``aws wafv2 get-web-acl`` / ``get-rule-group`` / ``get-ip-set`` /
``get-regex-pattern-set`` print, or the bare objects inside them. ARNs resolve against the
other documents given (by ARN, else by the name in the ARN). The output is docs/rule-language.md.

Lossless or loud: a key this module does not know is an error naming its JSON path, and so is
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

import base64
import binascii
import enum
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from wafproxy.errors import WafProxyError

Out = dict[str, object]

MANAGED_GROUPS = {
    "AWSManagedRulesCommonRuleSet": "wafproxy-core",
    "AWSManagedRulesSQLiRuleSet": "wafproxy-sqli",
    "AWSManagedRulesKnownBadInputsRuleSet": "wafproxy-known-bad-inputs",
    "AWSManagedRulesLinuxRuleSet": "wafproxy-rce",
    "AWSManagedRulesUnixRuleSet": "wafproxy-rce",
    "AWSManagedRulesPHPRuleSet": "wafproxy-php",
    "AWSManagedRulesAdminProtectionRuleSet": "wafproxy-admin-protection",
    "AWSManagedRulesAmazonIpReputationList": "wafproxy-ip-reputation",
    "AWSManagedRulesAnonymousIpList": "wafproxy-anonymous-ip",
}
TRANSFORM_TYPES = (
    "NONE", "COMPRESS_WHITE_SPACE", "HTML_ENTITY_DECODE", "LOWERCASE", "CMD_LINE", "URL_DECODE",
    "BASE64_DECODE", "HEX_DECODE", "MD5", "REPLACE_COMMENTS", "ESCAPE_SEQ_DECODE",
    "SQL_HEX_DECODE", "CSS_DECODE", "JS_DECODE", "NORMALIZE_PATH", "NORMALIZE_PATH_WIN",
    "REMOVE_NULLS", "REPLACE_NULLS", "BASE64_DECODE_EXT", "URL_DECODE_UNI", "UTF8_TO_UNICODE",
)  # fmt: skip
CONTENT_TYPES = {
    "TEXT_PLAIN": "text/plain",
    "TEXT_HTML": "text/html",
    "APPLICATION_JSON": "application/json",
}
BARE_FIELDS = {
    "UriPath": "uri_path",
    "QueryString": "query_string",
    "Method": "method",
    "AllQueryArguments": "all_query_arguments",
}
UNSUPPORTED_FIELDS = ("JA3Fingerprint", "JA4Fingerprint", "UriFragment")
OVERSIZE = ("CONTINUE", "MATCH", "NO_MATCH")
SCOPES = ("ALL", "KEY", "VALUE")
FALLBACK = ("MATCH", "NO_MATCH")
RULE_ACTIONS = ("Allow", "Block", "Count")
DEFAULT_IMMUNITY_SECONDS = 300
REFUSED = {
    "AssociationConfig": "wafproxy's body inspection limit is inspect_body_bytes in the service "
    "config",
    "DataProtectionConfig": "configure redaction in the service config's logging section",
    "OnSourceDDoSProtectionConfig": "wafproxy has no counterpart",
    "PreProcessFirewallManagerRuleGroups": "export Firewall Manager rule groups as rule groups",
    "PostProcessFirewallManagerRuleGroups": "export Firewall Manager rule groups as rule groups",
}
REFUSED_IN_MANAGED = {"ManagedRuleGroupConfigs": "wafproxy's managed groups take no configuration"}
WEB_ACL_KEYS = [
    "Description",
    "Rules",
    "LabelNamespace",
    "CustomResponseBodies",
    "CaptchaConfig",
    "ChallengeConfig",
    *REFUSED,
]
WEB_ACL_DROPPED = [
    "Id",
    "ARN",
    "VisibilityConfig",
    "Capacity",
    "ManagedByFirewallManager",
    "RetrofittedByFirewallManager",
    "TokenDomains",
    "ApplicationConfig",
]


class AwsImportError(WafProxyError):
    """Names where (file, or file:line:col) and the JSON path of what cannot be imported."""

    def __init__(self, where: str, path: str, message: str) -> None:
        self.where = where
        self.path = path
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        return ": ".join([p for p in (self.where, self.path) if p] + [self.message])


class SearchStringEncoding(enum.Enum):
    AUTO = "auto"
    BASE64 = "base64"
    TEXT = "text"


@dataclass(frozen=True)
class ImportResult:
    data: Out
    warnings: tuple[str, ...]


class Kind(enum.Enum):
    WEB_ACL = "web ACL"
    RULE_GROUP = "rule group"
    IP_SET = "IP set"
    REGEX_SET = "regex pattern set"


ENVELOPES = {
    "WebACL": Kind.WEB_ACL,
    "RuleGroup": Kind.RULE_GROUP,
    "IPSet": Kind.IP_SET,
    "RegexPatternSet": Kind.REGEX_SET,
}
ARN_KINDS = {
    "webacl": Kind.WEB_ACL,
    "rulegroup": Kind.RULE_GROUP,
    "ipset": Kind.IP_SET,
    "regexpatternset": Kind.REGEX_SET,
}
GET_COMMANDS = {
    Kind.WEB_ACL: "get-web-acl",
    Kind.RULE_GROUP: "get-rule-group",
    Kind.IP_SET: "get-ip-set",
    Kind.REGEX_SET: "get-regex-pattern-set",
}


@dataclass(frozen=True)
class Document:
    file: str
    kind: Kind
    body: Mapping[str, object]
    path: str
    """The JSON path of ``body``: "WebACL" etc. in get-* output, "" for a bare object."""
    name: str
    arn: str


# -- public API -----------------------------------------------------------------------------------
def convert(
    documents: Sequence[tuple[str, object]],
    *,
    search_string: SearchStringEncoding = SearchStringEncoding.AUTO,
) -> ImportResult:
    """(file name, parsed JSON) pairs -> one rule file's data, plus warnings for a human."""
    if not documents:
        raise AwsImportError("", "", "no documents to import")
    docs = [_document(name, value) for name, value in documents]
    return _Converter(docs, search_string).run()


def dump_yaml(
    data: Mapping[str, object], warnings: Sequence[str] = (), sources: Sequence[str] = ()
) -> str:
    origin = f" from {', '.join(sources)}" if sources else ""
    lines = [
        f"# Imported from AWS WAF (wafv2) JSON by `wafproxy import-aws`{origin}.",
        "# Check it with `wafproxy check` before use.",
    ]
    if warnings:
        lines.append("# Warnings:")
        lines += [f"#   - {' '.join(w.splitlines())}" for w in warnings]
    body = yaml.dump(
        dict(data),
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )
    return "\n".join(lines) + "\n" + body


def import_files(
    paths: Sequence[Path], *, search_string: SearchStringEncoding = SearchStringEncoding.AUTO
) -> str:
    documents = [(str(path), read_json(path)) for path in paths]
    result = convert(documents, search_string=search_string)
    return dump_yaml(result.data, result.warnings, [Path(p).name for p in paths])


def read_json(path: Path) -> object:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise AwsImportError(str(path), "", f"cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise AwsImportError(str(path), "", f"not UTF-8 text: {exc.reason}") from exc
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise AwsImportError(
            f"{path}:{exc.lineno}:{exc.colno}", "", f"invalid JSON: {exc.msg}"
        ) from exc
    except _DuplicateKey as exc:
        raise AwsImportError(str(path), "", f"duplicate key {exc.key!r} in a JSON object") from exc


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


class _Dumper(yaml.SafeDumper):
    """Block style with list items indented under their key, multi-line text as ``|``."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


# -- documents ------------------------------------------------------------------------------------
def _document(file: str, value: object) -> Document:
    if not isinstance(value, dict):
        raise AwsImportError(
            file,
            "",
            "expected a JSON object from aws wafv2 get-web-acl, "
            "get-rule-group, get-ip-set or get-regex-pattern-set",
        )
    wrapped = [key for key in ENVELOPES if key in value]
    if len(wrapped) > 1:
        raise AwsImportError(file, "", f"expected one of {', '.join(wrapped)}, not several")
    if wrapped:
        key = wrapped[0]
        for extra in value:
            if extra not in (key, "LockToken", "ApplicationIntegrationURL"):
                raise AwsImportError(file, extra, f"unknown key {extra!r} beside {key}")
        return _make(file, ENVELOPES[key], value[key], key)
    return _make(file, _bare_kind(file, value), value, "")


def _make(file: str, kind: Kind, body: object, path: str) -> Document:
    if not isinstance(body, dict):
        raise AwsImportError(file, path, f"expected the {kind.value} as a JSON object")
    name, arn = body.get("Name"), body.get("ARN", "")
    if not isinstance(name, str) or not name:
        raise AwsImportError(file, _join(path, "Name"), f"expected the {kind.value}'s name")
    if not isinstance(arn, str):
        raise AwsImportError(file, _join(path, "ARN"), "expected a string")
    return Document(file, kind, body, path, name, arn)


def _bare_kind(file: str, value: Mapping[str, object]) -> Kind:
    arn = value.get("ARN")
    if isinstance(arn, str) and (kind := _arn_kind(arn)) is not None:
        return kind
    for key, kind in (
        ("DefaultAction", Kind.WEB_ACL),
        ("Addresses", Kind.IP_SET),
        ("RegularExpressionList", Kind.REGEX_SET),
        ("Rules", Kind.RULE_GROUP),
        ("Capacity", Kind.RULE_GROUP),
    ):
        if key in value:
            return kind
    raise AwsImportError(file, "", "not a web ACL, rule group, IP set or regex pattern set")


def _arn_parts(arn: str) -> list[str]:
    """``arn:aws:wafv2:REGION:ACCOUNT:SCOPE/KIND/NAME/ID`` -> [ACCOUNT, SCOPE, KIND, NAME, ID]."""
    fields = arn.split(":", 5)
    if len(fields) != 6 or fields[0] != "arn":
        return []
    return [fields[4], *fields[5].split("/")]


def _arn_kind(arn: str) -> Kind | None:
    parts = _arn_parts(arn)
    return ARN_KINDS.get(parts[2]) if len(parts) >= 4 else None


def _arn_name(arn: str, kind: Kind) -> str | None:
    parts = _arn_parts(arn)
    return parts[3] if len(parts) >= 4 and ARN_KINDS.get(parts[2]) is kind else None


def _aws_namespace(doc: Document, word: str) -> str | None:
    """The label namespace AWS gives a web ACL or rule group, from its document or its ARN."""
    given = doc.body.get("LabelNamespace")
    if isinstance(given, str) and given:
        return given if given.endswith(":") else given + ":"
    parts = _arn_parts(doc.arn)
    return f"awswaf:{parts[0]}:{word}:{doc.name}:" if parts and parts[0] else None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


def _describe(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- conversion -----------------------------------------------------------------------------------
class _Converter:
    def __init__(self, docs: list[Document], encoding: SearchStringEncoding) -> None:
        self.docs = docs
        self.doc = docs[0]
        self.encoding = encoding
        self.warnings: list[str] = []
        self.bodies: dict[str, Out] = {}
        self.body_files: dict[str, str] = {}
        self.label_prefixes = [
            (aws, f"rulegroup:{d.name}:")
            for d in docs
            if d.kind is Kind.RULE_GROUP and (aws := _aws_namespace(d, "rulegroup"))
        ]
        self.statements: dict[str, Callable[[object, str], Out]] = {
            "ByteMatchStatement": self.byte_match,
            "RegexMatchStatement": self.regex_match,
            "RegexPatternSetReferenceStatement": self.regex_pattern_set,
            "SizeConstraintStatement": self.size_constraint,
            "SqliMatchStatement": self.sqli_match,
            "XssMatchStatement": self.xss_match,
            "GeoMatchStatement": self.geo_match,
            "AsnMatchStatement": self.asn_match,
            "IPSetReferenceStatement": self.ip_set_reference,
            "LabelMatchStatement": self.label_match,
            "AndStatement": lambda v, p: self.combine(v, p, "and"),
            "OrStatement": lambda v, p: self.combine(v, p, "or"),
            "NotStatement": self.not_,
            "RuleGroupReferenceStatement": self.rule_group_reference,
            "ManagedRuleGroupStatement": self.managed_rule_group,
            "RateBasedStatement": self.rate_based,
        }

    def run(self) -> ImportResult:
        acls = [d for d in self.docs if d.kind is Kind.WEB_ACL]
        if len(acls) > 1:
            self.doc = acls[1]
            raise self.error(
                acls[1].path,
                f"a rule file holds one web ACL; {acls[0].name!r} from {acls[0].file} is the first",
            )
        acl = self.web_acl(acls[0]) if acls else {}
        tables = {
            "rule_groups": self.named(Kind.RULE_GROUP, self.rule_group),
            "ip_sets": self.named(Kind.IP_SET, self.ip_set),
            "regex_pattern_sets": self.named(Kind.REGEX_SET, self.regex_set),
        }
        out = {k: v for k, v in acl.items() if k != "rules"}
        if self.bodies:
            out["custom_response_bodies"] = self.bodies
        if "rules" in acl:
            out["rules"] = acl["rules"]
        out.update({key: table for key, table in tables.items() if table})
        return ImportResult(out, tuple(self.warnings))

    def named(self, kind: Kind, convert: Callable[[Document], Out]) -> Out:
        table: Out = {}
        for doc in self.docs:
            if doc.kind is kind:
                self.doc = doc
                if doc.name in table:
                    raise self.error(
                        _join(doc.path, "Name"), f"a second {kind.value} named {doc.name!r}"
                    )
                table[doc.name] = convert(doc)
        return table

    # -- reading JSON -----------------------------------------------------------------------------
    def error(self, path: str, message: str) -> AwsImportError:
        return AwsImportError(self.doc.file, path, message)

    def warn(self, path: str, message: str) -> None:
        text = f"{self.doc.file}: {path}: {message}"
        if text not in self.warnings:
            self.warnings.append(text)

    def mapping(self, value: object, path: str) -> dict[str, object]:
        if not isinstance(value, dict):
            raise self.error(path, f"expected a JSON object; got {_describe(value)}")
        return {k: v for k, v in value.items() if v is not None}

    def fields(
        self,
        value: object,
        path: str,
        required: Sequence[str] = (),
        optional: Sequence[str] = (),
        dropped: Sequence[str] = (),
    ) -> dict[str, object]:
        """The object's keys after checking them; ``dropped`` keys are left out of the result."""
        obj = self.mapping(value, path)
        known = [*required, *optional, *dropped]
        for key in obj:
            if key not in known:
                expected = f"one of {', '.join(known)}" if known else "no keys here"
                raise self.error(_join(path, key), f"unknown key {key!r}: expected {expected}")
        for key in required:
            if key not in obj:
                raise self.error(path, f"missing required key {key!r}")
        return {k: v for k, v in obj.items() if k not in dropped}

    def one_key(self, value: object, path: str, what: str) -> tuple[str, object]:
        obj = self.mapping(value, path)
        if len(obj) != 1:
            raise self.error(path, f"expected exactly one {what}; got {', '.join(obj) or 'none'}")
        return next(iter(obj.items()))

    def text(self, value: object, path: str) -> str:
        if not isinstance(value, str):
            raise self.error(path, f"expected a string; got {_describe(value)}")
        return value

    def integer(self, value: object, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(path, f"expected an integer; got {_describe(value)}")
        return value

    def items(self, value: object, path: str) -> list[tuple[str, object]]:
        """(path of the item, item) for each item of a JSON array."""
        if not isinstance(value, list):
            raise self.error(path, f"expected a JSON array; got {_describe(value)}")
        return [(f"{path}[{i}]", item) for i, item in enumerate(value)]

    def choice(self, value: object, path: str, allowed: Sequence[str]) -> str:
        text = self.text(value, path)
        if text not in allowed:
            raise self.error(path, f"expected one of {', '.join(allowed)}; got {text!r}")
        return text.lower()

    def texts(self, value: object, path: str) -> list[str]:
        return [self.text(item, p) for p, item in self.items(value, path)]

    def empty(self, value: object, path: str) -> None:
        self.fields(value, path)

    def refuse(self, obj: Mapping[str, object], path: str, refused: Mapping[str, str]) -> None:
        for key, reason in refused.items():
            if obj.get(key) not in (None, {}, []):
                raise self.error(_join(path, key), f"{key} is not supported: {reason}")

    # -- documents --------------------------------------------------------------------------------
    def web_acl(self, doc: Document) -> Out:
        self.doc = doc
        path = doc.path
        f = self.fields(doc.body, path, ["Name", "DefaultAction"], WEB_ACL_KEYS, WEB_ACL_DROPPED)
        self.refuse(f, path, REFUSED)
        self.immunity(f, path)
        out: Out = {"web_acl": doc.name}
        self.describe_into(out, f, path)
        self.text(f.get("LabelNamespace", ""), _join(path, "LabelNamespace"))
        namespace = _aws_namespace(doc, "webacl")
        if namespace:
            out["label_namespace"] = namespace.rstrip(":")
        p = _join(path, "DefaultAction")
        out["default_action"] = self.action(f["DefaultAction"], p, ("Allow", "Block"))
        self.add_bodies(f.get("CustomResponseBodies"), _join(path, "CustomResponseBodies"))
        if "Rules" in f:
            out["rules"] = self.rules(f["Rules"], _join(path, "Rules"))
        return out

    def rule_group(self, doc: Document) -> Out:
        path = doc.path
        f = self.fields(
            doc.body,
            path,
            ["Name"],
            ["Capacity", "Rules", "Description", "LabelNamespace", "CustomResponseBodies"],
            ["Id", "ARN", "VisibilityConfig", "AvailableLabels", "ConsumedLabels"],
        )
        self.text(f.get("LabelNamespace", ""), _join(path, "LabelNamespace"))
        out: Out = {}
        self.describe_into(out, f, path)
        if "Capacity" in f:
            out["capacity"] = self.integer(f["Capacity"], _join(path, "Capacity"))
        self.add_bodies(f.get("CustomResponseBodies"), _join(path, "CustomResponseBodies"))
        out["rules"] = self.rules(f.get("Rules", []), _join(path, "Rules"))
        return out

    def ip_set(self, doc: Document) -> Out:
        f = self.fields(
            doc.body,
            doc.path,
            ["Name", "Addresses"],
            ["Description", "IPAddressVersion"],
            ["Id", "ARN"],
        )
        if "IPAddressVersion" in f:
            self.choice(
                f["IPAddressVersion"], _join(doc.path, "IPAddressVersion"), ("IPV4", "IPV6")
            )
        out: Out = {}
        self.describe_into(out, f, doc.path)
        out["addresses"] = self.texts(f["Addresses"], _join(doc.path, "Addresses"))
        return out

    def regex_set(self, doc: Document) -> Out:
        path = doc.path
        f = self.fields(
            doc.body, path, ["Name", "RegularExpressionList"], ["Description"], ["Id", "ARN"]
        )
        out: Out = {}
        self.describe_into(out, f, path)
        regexes = self.items(f["RegularExpressionList"], _join(path, "RegularExpressionList"))
        out["regular_expressions"] = [
            self.text(self.fields(item, p, ["RegexString"])["RegexString"], _join(p, "RegexString"))
            for p, item in regexes
        ]
        return out

    def describe_into(self, out: Out, f: Mapping[str, object], path: str) -> None:
        text = self.text(f.get("Description", ""), _join(path, "Description"))
        if text:
            out["description"] = text

    def add_bodies(self, value: object, path: str) -> None:
        if value is None:
            return
        for key, body in self.mapping(value, path).items():
            p = _join(path, key)
            f = self.fields(body, p, ["ContentType", "Content"])
            ctype = CONTENT_TYPES[
                self.choice(f["ContentType"], _join(p, "ContentType"), list(CONTENT_TYPES)).upper()
            ]
            entry: Out = {
                "content_type": ctype,
                "content": self.text(f["Content"], _join(p, "Content")),
            }
            if self.bodies.get(key, entry) != entry:
                raise self.error(
                    p,
                    f"custom response body {key!r} differs from the one in "
                    f"{self.body_files[key]}; the names are global in wafproxy",
                )
            self.bodies[key] = entry
            self.body_files.setdefault(key, self.doc.file)

    def immunity(self, f: Mapping[str, object], path: str) -> None:
        for key in ("CaptchaConfig", "ChallengeConfig"):
            if key not in f:
                continue
            p = _join(path, key)
            config = self.fields(f[key], p, optional=["ImmunityTimeProperty"])
            if "ImmunityTimeProperty" not in config:
                continue
            q = _join(p, "ImmunityTimeProperty")
            seconds = self.fields(config["ImmunityTimeProperty"], q, ["ImmunityTime"])
            if (
                self.integer(seconds["ImmunityTime"], _join(q, "ImmunityTime"))
                != DEFAULT_IMMUNITY_SECONDS
            ):
                raise self.error(
                    p,
                    f"{key} with a non-default immunity time is not supported: "
                    "wafproxy has no CAPTCHA or challenge actions",
                )

    # -- rules and actions ------------------------------------------------------------------------
    def rules(self, value: object, path: str) -> list[object]:
        return [self.rule(item, p) for p, item in self.items(value, path)]

    def rule(self, value: object, path: str) -> Out:
        f = self.fields(
            value,
            path,
            ["Name", "Priority", "Statement"],
            ["Action", "OverrideAction", "RuleLabels", "CaptchaConfig", "ChallengeConfig"],
            ["VisibilityConfig"],
        )
        self.immunity(f, path)
        out: Out = {
            "name": self.text(f["Name"], _join(path, "Name")),
            "priority": self.integer(f["Priority"], _join(path, "Priority")),
        }
        if "Action" in f:
            out["action"] = self.action(f["Action"], _join(path, "Action"), RULE_ACTIONS)
        if "OverrideAction" in f:
            p = _join(path, "OverrideAction")
            key, inner = self.one_key(f["OverrideAction"], p, "override action: None or Count")
            self.choice(key, p, ("None", "Count"))
            self.empty(inner, _join(p, key))
            out["override_action"] = key.lower()
        if f.get("RuleLabels"):
            out["rule_labels"] = [
                self.text(self.fields(item, p, ["Name"])["Name"], _join(p, "Name"))
                for p, item in self.items(f["RuleLabels"], _join(path, "RuleLabels"))
            ]
        out["statement"] = self.statement(f["Statement"], _join(path, "Statement"))
        return out

    def action(self, value: object, path: str, allowed: Sequence[str]) -> object:
        key, inner = self.one_key(value, path, f"action: {', '.join(allowed)}")
        p = _join(path, key)
        if key in ("Captcha", "Challenge"):
            raise self.error(
                p,
                f"{key} actions are not supported: wafproxy has no CAPTCHA or "
                "challenge; change the rule to Block or Count before importing",
            )
        self.choice(key, path, allowed)
        name = key.lower()
        if key == "Block":
            f = self.fields(inner, p, optional=["CustomResponse"])
            if "CustomResponse" not in f:
                return name
            response = self.custom_response(f["CustomResponse"], _join(p, "CustomResponse"))
            return {name: {"custom_response": response}}
        f = self.fields(inner, p, optional=["CustomRequestHandling"])
        if "CustomRequestHandling" not in f:
            return name
        q = _join(p, "CustomRequestHandling")
        handling = self.fields(f["CustomRequestHandling"], q, ["InsertHeaders"])
        headers = self.headers(handling["InsertHeaders"], _join(q, "InsertHeaders"))
        self.warn(
            q, "inserted headers reach the upstream as x-wafproxy-<name>, not x-amzn-waf-<name>"
        )
        return {name: {"custom_request_handling": {"insert_headers": headers}}}

    def custom_response(self, value: object, path: str) -> Out:
        f = self.fields(value, path, ["ResponseCode"], ["CustomResponseBodyKey", "ResponseHeaders"])
        out: Out = {"response_code": self.integer(f["ResponseCode"], _join(path, "ResponseCode"))}
        if "CustomResponseBodyKey" in f:
            p = _join(path, "CustomResponseBodyKey")
            out["custom_response_body_key"] = self.text(f["CustomResponseBodyKey"], p)
        if "ResponseHeaders" in f:
            out["response_headers"] = self.headers(
                f["ResponseHeaders"], _join(path, "ResponseHeaders")
            )
        return out

    def headers(self, value: object, path: str) -> list[object]:
        out: list[object] = []
        for p, item in self.items(value, path):
            f = self.fields(item, p, ["Name", "Value"])
            out.append(
                {
                    "name": self.text(f["Name"], _join(p, "Name")),
                    "value": self.text(f["Value"], _join(p, "Value")),
                }
            )
        return out

    # -- statements -------------------------------------------------------------------------------
    def statement(self, value: object, path: str) -> Out:
        key, inner = self.one_key(value, path, "statement")
        p = _join(path, key)
        if key not in self.statements:
            raise self.error(p, f"unknown statement {key!r}")
        return self.statements[key](inner, p)

    def inspect(
        self, name: str, f: Mapping[str, object], path: str, options: Out, ref: str = ""
    ) -> Out:
        """A statement over FieldToMatch with TextTransformations."""
        out: Out = {"ref": ref} if ref else {}
        out["field"] = self.field(f["FieldToMatch"], _join(path, "FieldToMatch"))
        out.update(options)
        chain = self.transforms(f["TextTransformations"], _join(path, "TextTransformations"))
        if chain:
            out["transforms"] = chain
        return {name: out}

    def byte_match(self, value: object, path: str) -> Out:
        f = self.fields(
            value,
            path,
            ["FieldToMatch", "TextTransformations", "PositionalConstraint"],
            ["SearchString", "SearchStringBase64"],
        )
        constraint = self.choice(
            f["PositionalConstraint"],
            _join(path, "PositionalConstraint"),
            ("EXACTLY", "STARTS_WITH", "ENDS_WITH", "CONTAINS", "CONTAINS_WORD"),
        )
        options: Out = {"constraint": constraint, "value": self.search_string(f, path)}
        return self.inspect("byte_match", f, path, options)

    def regex_match(self, value: object, path: str) -> Out:
        f = self.fields(value, path, ["RegexString", "FieldToMatch", "TextTransformations"])
        regex = self.text(f["RegexString"], _join(path, "RegexString"))
        return self.inspect("regex_match", f, path, {"regex": regex})

    def regex_pattern_set(self, value: object, path: str) -> Out:
        f = self.fields(value, path, ["ARN", "FieldToMatch", "TextTransformations"])
        ref = self.resolve(f["ARN"], Kind.REGEX_SET, _join(path, "ARN"))
        return self.inspect("regex_pattern_set", f, path, {}, ref)

    def size_constraint(self, value: object, path: str) -> Out:
        f = self.fields(
            value, path, ["FieldToMatch", "ComparisonOperator", "Size", "TextTransformations"]
        )
        operator = self.choice(
            f["ComparisonOperator"],
            _join(path, "ComparisonOperator"),
            ("EQ", "NE", "LE", "LT", "GE", "GT"),
        )
        options: Out = {
            "comparison_operator": operator,
            "size": self.integer(f["Size"], _join(path, "Size")),
        }
        return self.inspect("size_constraint", f, path, options)

    def sqli_match(self, value: object, path: str) -> Out:
        f = self.fields(value, path, ["FieldToMatch", "TextTransformations"], ["SensitivityLevel"])
        options: Out = {}
        if "SensitivityLevel" in f:
            p = _join(path, "SensitivityLevel")
            options["sensitivity_level"] = self.choice(f["SensitivityLevel"], p, ("LOW", "HIGH"))
        return self.inspect("sqli_match", f, path, options)

    def xss_match(self, value: object, path: str) -> Out:
        f = self.fields(value, path, ["FieldToMatch", "TextTransformations"])
        return self.inspect("xss_match", f, path, {})

    def rate_based(self, value: object, path: str) -> Out:
        f = self.fields(
            value,
            path,
            ["Limit", "AggregateKeyType"],
            ["EvaluationWindowSec", "ScopeDownStatement", "ForwardedIPConfig", "CustomKeys"],
        )
        key_type = self.choice(
            f["AggregateKeyType"],
            _join(path, "AggregateKeyType"),
            ("IP", "FORWARDED_IP", "CONSTANT", "CUSTOM_KEYS"),
        )
        if key_type == "custom_keys" or "CustomKeys" in f:
            raise self.error(
                _join(path, "CustomKeys"), "importing custom_keys is not supported yet"
            )
        out: Out = {
            "limit": self.integer(f["Limit"], _join(path, "Limit")),
            "aggregate_key_type": key_type,
        }
        if "EvaluationWindowSec" in f:
            window = _join(path, "EvaluationWindowSec")
            out["evaluation_window_sec"] = self.integer(f["EvaluationWindowSec"], window)
        if "ScopeDownStatement" in f:
            scope = _join(path, "ScopeDownStatement")
            out["scope_down_statement"] = self.statement(f["ScopeDownStatement"], scope)
        if "ForwardedIPConfig" in f:
            fwd = _join(path, "ForwardedIPConfig")
            out["forwarded_ip_config"] = self.forwarded(f["ForwardedIPConfig"], fwd, False)
        return {"rate_based": out}

    def geo_match(self, value: object, path: str) -> Out:
        f = self.fields(value, path, ["CountryCodes"], ["ForwardedIPConfig"])
        out: Out = {"country_codes": self.texts(f["CountryCodes"], _join(path, "CountryCodes"))}
        return {"geo_match": self.with_forwarded(out, f, path)}

    def asn_match(self, value: object, path: str) -> Out:
        f = self.fields(value, path, ["AsnList"], ["ForwardedIPConfig"])
        numbers = [
            self.integer(item, p) for p, item in self.items(f["AsnList"], _join(path, "AsnList"))
        ]
        return {"asn_match": self.with_forwarded({"asn_list": numbers}, f, path)}

    def with_forwarded(self, out: Out, f: Mapping[str, object], path: str) -> Out:
        self.warn(
            path,
            "geo_match / asn_match need geo_database / asn_database (MaxMind .mmdb "
            "files) in the web ACL: add them before loading this file",
        )
        if "ForwardedIPConfig" in f:
            out["forwarded_ip_config"] = self.forwarded(
                f["ForwardedIPConfig"], _join(path, "ForwardedIPConfig"), False
            )
        return out

    def forwarded(self, value: object, path: str, with_position: bool) -> Out:
        f = self.fields(
            value, path, ["HeaderName", "FallbackBehavior", *(["Position"] * with_position)]
        )
        out: Out = {
            "header_name": self.text(f["HeaderName"], _join(path, "HeaderName")),
            "fallback_behavior": self.choice(
                f["FallbackBehavior"], _join(path, "FallbackBehavior"), FALLBACK
            ),
        }
        if with_position:
            out["position"] = self.choice(
                f["Position"], _join(path, "Position"), ("FIRST", "LAST", "ANY")
            )
        return out

    def ip_set_reference(self, value: object, path: str) -> Out:
        f = self.fields(value, path, ["ARN"], ["IPSetForwardedIPConfig"])
        out: Out = {"ref": self.resolve(f["ARN"], Kind.IP_SET, _join(path, "ARN"))}
        if "IPSetForwardedIPConfig" in f:
            p = _join(path, "IPSetForwardedIPConfig")
            out["forwarded_ip_config"] = self.forwarded(f["IPSetForwardedIPConfig"], p, True)
        return {"ip_set": out}

    def label_match(self, value: object, path: str) -> Out:
        f = self.fields(value, path, ["Scope", "Key"])
        scope = self.choice(f["Scope"], _join(path, "Scope"), ("LABEL", "NAMESPACE"))
        key = self.label_key(self.text(f["Key"], _join(path, "Key")), _join(path, "Key"))
        return {"label_match": {"scope": scope, "key": key}}

    def label_key(self, key: str, path: str) -> str:
        for aws, ours in self.label_prefixes:
            if key.startswith(aws):
                return ours + key[len(aws) :]
        if key.startswith("awswaf:managed:"):
            self.warn(
                path,
                f"{key!r} is a label of an AWS managed rule group; wafproxy's "
                "managed groups add wafproxy:... labels instead, so this never matches",
            )
        return key

    def combine(self, value: object, path: str, name: str) -> Out:
        f = self.fields(value, path, ["Statements"])
        parts = self.items(f["Statements"], _join(path, "Statements"))
        return {name: [self.statement(item, p) for p, item in parts]}

    def not_(self, value: object, path: str) -> Out:
        f = self.fields(value, path, ["Statement"])
        return {"not": self.statement(f["Statement"], _join(path, "Statement"))}

    def rule_group_reference(self, value: object, path: str) -> Out:
        f = self.fields(value, path, ["ARN"], ["ExcludedRules", "RuleActionOverrides"])
        out: Out = {"ref": self.resolve(f["ARN"], Kind.RULE_GROUP, _join(path, "ARN"))}
        overrides = self.overrides(f, path)
        if overrides:
            out["rule_action_overrides"] = overrides
        return {"rule_group": out}

    def overrides(self, f: Mapping[str, object], path: str) -> Out:
        out: Out = {}
        for p, item in self.items(f.get("ExcludedRules", []), _join(path, "ExcludedRules")):
            out[self.text(self.fields(item, p, ["Name"])["Name"], _join(p, "Name"))] = "count"
        for p, item in self.items(
            f.get("RuleActionOverrides", []), _join(path, "RuleActionOverrides")
        ):
            o = self.fields(item, p, ["Name", "ActionToUse"])
            name = self.text(o["Name"], _join(p, "Name"))
            action = self.action(o["ActionToUse"], _join(p, "ActionToUse"), RULE_ACTIONS)
            if out.get(name, action) != action:
                raise self.error(p, f"rule {name!r} is both excluded and overridden to {action}")
            out[name] = action
        return out

    def managed_rule_group(self, value: object, path: str) -> Out:
        f = self.fields(
            value,
            path,
            ["VendorName", "Name"],
            [
                "Version",
                "ExcludedRules",
                "ScopeDownStatement",
                "ManagedRuleGroupConfigs",
                "RuleActionOverrides",
            ],
        )
        self.refuse(f, path, REFUSED_IN_MANAGED)
        vendor = self.text(f["VendorName"], _join(path, "VendorName"))
        name = self.text(f["Name"], _join(path, "Name"))
        ours = MANAGED_GROUPS.get(name) if vendor == "AWS" else None
        if ours is None:
            raise self.error(
                _join(path, "Name"),
                f"managed rule group {vendor}/{name} has no "
                f"wafproxy counterpart (known: {', '.join(MANAGED_GROUPS)})",
            )
        self.warn(
            path,
            f"{vendor}/{name} is replaced by wafproxy's {ours}: a similar scope, "
            f"not the same rules{self.dropped_tuning(f, path)}",
        )
        out: Out = {"name": ours}
        if "ScopeDownStatement" in f:
            p = _join(path, "ScopeDownStatement")
            out["scope_down_statement"] = self.statement(f["ScopeDownStatement"], p)
        return {"managed_rule_group": out}

    def dropped_tuning(self, f: Mapping[str, object], path: str) -> str:
        """What a managed group reference tuned that cannot carry over (rule names differ)."""
        notes = []
        if "Version" in f:
            notes.append(f"Version {self.text(f['Version'], _join(path, 'Version'))!r}")
        for key in ("ExcludedRules", "RuleActionOverrides"):
            names = [
                self.text(self.mapping(item, p).get("Name"), _join(p, "Name"))
                for p, item in self.items(f.get(key, []), _join(path, key))
            ]
            if names:
                notes.append(f"{key} for {', '.join(names)}")
        return f"; dropped {'; '.join(notes)}" if notes else ""

    # -- fields, transformations, references ------------------------------------------------------
    def field(self, value: object, path: str) -> object:
        key, inner = self.one_key(value, path, "field to match")
        p = _join(path, key)
        if key in BARE_FIELDS:
            self.empty(inner, p)
            return BARE_FIELDS[key]
        if key in ("SingleHeader", "SingleQueryArgument"):
            name = self.text(self.fields(inner, p, ["Name"])["Name"], _join(p, "Name"))
            return {_snake(key): {"name": name}}
        if key == "Body":
            f = self.fields(inner, p, optional=["OversizeHandling"])
            return {"body": {"oversize_handling": self.oversize(f, p)}} if f else "body"
        if key == "HeaderOrder":
            f = self.fields(inner, p, ["OversizeHandling"])
            return {"header_order": {"oversize_handling": self.oversize(f, p)}}
        if key == "JsonBody":
            return {"json_body": self.json_body(inner, p)}
        if key in ("Headers", "Cookies"):
            return {_snake(key): self.pairs(inner, p, key)}
        if key in UNSUPPORTED_FIELDS:
            raise self.error(p, f"the field {key} is not supported by wafproxy")
        raise self.error(p, f"unknown field to match {key!r}")

    def oversize(self, f: Mapping[str, object], path: str) -> str:
        return self.choice(f["OversizeHandling"], _join(path, "OversizeHandling"), OVERSIZE)

    def json_body(self, value: object, path: str) -> Out:
        f = self.fields(
            value,
            path,
            ["MatchPattern", "MatchScope"],
            ["InvalidFallbackBehavior", "OversizeHandling"],
        )
        out: Out = {
            "match_pattern": self.match_pattern(
                f["MatchPattern"], _join(path, "MatchPattern"), ("IncludedPaths",)
            ),
            "match_scope": self.choice(f["MatchScope"], _join(path, "MatchScope"), SCOPES),
        }
        if "InvalidFallbackBehavior" in f:
            out["invalid_fallback_behavior"] = self.choice(
                f["InvalidFallbackBehavior"],
                _join(path, "InvalidFallbackBehavior"),
                (*FALLBACK, "EVALUATE_AS_STRING"),
            )
        if "OversizeHandling" in f:
            out["oversize_handling"] = self.oversize(f, path)
        return out

    def pairs(self, value: object, path: str, key: str) -> Out:
        f = self.fields(value, path, ["MatchPattern", "MatchScope", "OversizeHandling"])
        lists = (f"Included{key}", f"Excluded{key}")
        return {
            "match_pattern": self.match_pattern(
                f["MatchPattern"], _join(path, "MatchPattern"), lists
            ),
            "match_scope": self.choice(f["MatchScope"], _join(path, "MatchScope"), SCOPES),
            "oversize_handling": self.oversize(f, path),
        }

    def match_pattern(self, value: object, path: str, lists: Sequence[str]) -> Out:
        key, inner = self.one_key(value, path, f"match pattern: All, {', '.join(lists)}")
        p = _join(path, key)
        if key == "All":
            self.empty(inner, p)
            return {"all": {}}
        if key not in lists:
            raise self.error(p, f"unknown match pattern {key!r}: expected All, {', '.join(lists)}")
        return {_snake(key): self.texts(inner, p)}

    def transforms(self, value: object, path: str) -> list[str]:
        chain: dict[int, str] = {}
        for p, item in self.items(value, path):
            f = self.fields(item, p, ["Priority", "Type"])
            priority = self.integer(f["Priority"], _join(p, "Priority"))
            if priority in chain:
                raise self.error(
                    _join(p, "Priority"), f"two text transformations at priority {priority}"
                )
            chain[priority] = self.choice(f["Type"], _join(p, "Type"), TRANSFORM_TYPES)
        return [chain[k] for k in sorted(chain) if chain[k] != "none"]

    def search_string(self, f: Mapping[str, object], path: str) -> str:
        if "SearchStringBase64" in f:
            p = _join(path, "SearchStringBase64")
            value = self.from_base64(self.text(f["SearchStringBase64"], p), p, hint=False)
            plain = f.get("SearchString", value)
            if self.text(plain, _join(path, "SearchString")) != value:
                raise self.error(path, "SearchString and SearchStringBase64 disagree")
            return value
        if "SearchString" not in f:
            raise self.error(path, "missing required key 'SearchString'")
        p = _join(path, "SearchString")
        text = self.text(f["SearchString"], p)
        encoding = self.encoding
        if encoding is SearchStringEncoding.AUTO:
            encoding = SearchStringEncoding.BASE64 if self.doc.path else SearchStringEncoding.TEXT
            if encoding is SearchStringEncoding.TEXT:
                self.warn_if_base64(text, p)
        if encoding is SearchStringEncoding.BASE64:
            return self.from_base64(text, p, hint=self.encoding is SearchStringEncoding.AUTO)
        return text

    def from_base64(self, text: str, path: str, *, hint: bool) -> str:
        try:
            return base64.b64decode(text, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            more = (
                (
                    "; get-* output carries SearchString base64-encoded: if this document has it "
                    "as plain text, import with the search string encoding 'text'"
                )
                if hint
                else ""
            )
            raise self.error(path, f"{text!r} is not base64-encoded UTF-8 text{more}") from exc

    def warn_if_base64(self, text: str, path: str) -> None:
        if len(text) < 8 or len(text) % 4:
            return
        try:
            decoded = base64.b64decode(text, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return
        if decoded.isprintable():
            self.warn(
                path,
                f"{text!r} looks base64-encoded (it decodes to {decoded!r}) but is "
                "taken as plain text, as in a bare object; use the encoding 'base64' if "
                "it is encoded",
            )

    def resolve(self, value: object, kind: Kind, path: str) -> str:
        arn = self.text(value, path)
        for doc in self.docs:
            if doc.kind is kind and doc.arn == arn:
                return doc.name
        name = _arn_name(arn, kind)
        if name is not None and any(d.kind is kind and d.name == name for d in self.docs):
            return name
        raise self.error(
            path,
            f"no {kind.value} document for {arn}; pass the output of "
            f"`aws wafv2 {GET_COMMANDS[kind]}` for it as well",
        )
