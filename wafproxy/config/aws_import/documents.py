"""Reading the input: JSON files, each one document (web ACL, rule group, IP set or regex
pattern set) either in its ``aws wafv2 get-*`` envelope or bare; ARNs and label namespaces."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wafproxy.config.aws_import.model import AwsImportError


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


def document_from_json(file: str, value: object) -> Document:
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
        return _checked_document(file, ENVELOPES[key], value[key], key)
    return _checked_document(file, _bare_kind(file, value), value, "")


def _checked_document(file: str, kind: Kind, body: object, path: str) -> Document:
    if not isinstance(body, dict):
        raise AwsImportError(file, path, f"expected the {kind.value} as a JSON object")
    name, arn = body.get("Name"), body.get("ARN", "")
    if not isinstance(name, str) or not name:
        raise AwsImportError(file, join_path(path, "Name"), f"expected the {kind.value}'s name")
    if not isinstance(arn, str):
        raise AwsImportError(file, join_path(path, "ARN"), "expected a string")
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


def arn_name(arn: str, kind: Kind) -> str | None:
    parts = _arn_parts(arn)
    return parts[3] if len(parts) >= 4 and ARN_KINDS.get(parts[2]) is kind else None


def aws_namespace(doc: Document, word: str) -> str | None:
    """The label namespace AWS gives a web ACL or rule group, from its document or its ARN."""
    given = doc.body.get("LabelNamespace")
    if isinstance(given, str) and given:
        return given if given.endswith(":") else given + ":"
    parts = _arn_parts(doc.arn)
    return f"awswaf:{parts[0]}:{word}:{doc.name}:" if parts and parts[0] else None


def join_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
