"""Access control with AWS's model: callers, identity policies and key policies.

A key policy is an AWS key policy document (the subset wafproxy understands: ``Effect``,
``Principal`` as ``*`` / account / root ARN / ``arn:aws:iam::ACCOUNT:user/NAME``, ``Action``
with wildcards, ``Resource``, and ``Condition`` with String* operators on
``kms:EncryptionContext:<name>``, ``kms:CallerAccount`` and ``aws:PrincipalArn``). Anything else
is a MalformedPolicyDocumentException, never silently ignored.

Evaluation, as AWS does it: an explicit Deny wins; an Allow naming the caller (or ``*``) allows;
an Allow naming the account root delegates to the caller's identity policy (its ``actions``);
everything else is an implicit deny. The default key policy is AWS's: the account root may do
``kms:*``, i.e. identity policies decide.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from wafproxy.kms.errors import MALFORMED_POLICY, KmsError
from wafproxy.kms.glob import glob_match

ACTION_PREFIX = "kms:"
CONTEXT_PREFIX = "kms:EncryptionContext:"
OPERATORS = ("StringEquals", "StringNotEquals", "StringLike", "StringNotLike")
MAX_POLICY_BYTES = 32768


@dataclass(frozen=True)
class Caller:
    """Who is calling: the account root (embedded use, the CLI) or a principal."""

    name: str
    arn: str
    account: str
    actions: tuple[str, ...] = ("kms:*",)
    access_key_id: str | None = None
    is_root: bool = False

    @classmethod
    def root(cls, account: str) -> Caller:
        return cls("root", root_arn(account), account, is_root=True)

    @classmethod
    def principal(
        cls, account: str, name: str, actions: Sequence[str], access_key_id: str | None
    ) -> Caller:
        return cls(name, user_arn(account, name), account, tuple(actions), access_key_id)

    def identity_allows(self, action: str) -> bool:
        return self.is_root or any(action_matches(p, action) for p in self.actions)


def root_arn(account: str) -> str:
    return f"arn:aws:iam::{account}:root"


def user_arn(account: str, name: str) -> str:
    return f"arn:aws:iam::{account}:user/{name}"


@functools.lru_cache(maxsize=8)
def default_policy(account: str) -> str:
    statement = {
        "Sid": "Enable IAM User Permissions",
        "Effect": "Allow",
        "Principal": {"AWS": root_arn(account)},
        "Action": "kms:*",
        "Resource": "*",
    }
    doc = {"Version": "2012-10-17", "Id": "key-default-1", "Statement": [statement]}
    return json.dumps(doc, indent=2)


def action_matches(pattern: str, action: str) -> bool:
    return glob_match(pattern.lower(), action.lower())


@dataclass(frozen=True)
class Condition:
    operator: str
    key: str
    values: tuple[str, ...]
    if_exists: bool

    def holds(self, request: Mapping[str, str]) -> bool:
        value = request.get(self.key)
        negated = "Not" in self.operator
        if value is None:
            return self.if_exists or negated
        if "Like" in self.operator:
            hit = any(glob_match(v, value) for v in self.values)
        else:
            hit = value in self.values
        return hit != negated


@dataclass(frozen=True)
class Statement:
    allow: bool
    principals: tuple[str, ...]
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: tuple[Condition, ...]

    def applies(self, action: str, resource: str, request: Mapping[str, str]) -> bool:
        return (
            any(action_matches(a, action) for a in self.actions)
            and any(glob_match(r, resource) for r in self.resources)
            and all(c.holds(request) for c in self.conditions)
        )


class Verdict:
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit deny"
    IMPLICIT_DENY = "implicit deny"


@dataclass(frozen=True)
class KeyPolicy:
    account: str
    statements: tuple[Statement, ...]

    @classmethod
    def parse(cls, text: str, account: str) -> KeyPolicy:
        return cls(account, tuple(_statements(_document(text), account)))

    def evaluate(
        self, caller: Caller, action: str, resource: str, context: Mapping[str, str]
    ) -> str:
        request = {f"{CONTEXT_PREFIX}{k}": v for k, v in context.items()}
        request["kms:CallerAccount"] = caller.account
        request["aws:PrincipalArn"] = caller.arn
        matching = [s for s in self.statements if s.applies(action, resource, request)]
        root = root_arn(self.account)
        for s in matching:
            if not s.allow and (
                "*" in s.principals or root in s.principals or caller.arn in s.principals
            ):
                return Verdict.EXPLICIT_DENY
        for s in matching:
            if s.allow and ("*" in s.principals or caller.arn in s.principals):
                return Verdict.ALLOW
        delegated = any(s.allow and root in s.principals for s in matching)
        if delegated and caller.identity_allows(action):
            return Verdict.ALLOW
        return Verdict.IMPLICIT_DENY


def _malformed(message: str) -> KmsError:
    return KmsError(MALFORMED_POLICY, message)


def _document(text: str) -> dict[str, Any]:
    if len(text.encode("utf-8")) > MAX_POLICY_BYTES:
        raise _malformed(f"The key policy is larger than {MAX_POLICY_BYTES} bytes.")
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise _malformed(f"The key policy is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or "Statement" not in doc:
        raise _malformed("The key policy must be a JSON object with a Statement.")
    unknown = set(doc) - {"Version", "Id", "Statement"}
    if unknown:
        raise _malformed(f"Unsupported key policy element(s): {', '.join(sorted(unknown))}.")
    return doc


def _statements(doc: Mapping[str, Any], account: str) -> list[Statement]:
    raw = doc["Statement"]
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise _malformed("The key policy has no statements.")
    return [_statement(item, account) for item in items]


def _statement(item: Any, account: str) -> Statement:
    if not isinstance(item, dict):
        raise _malformed("Each statement must be a JSON object.")
    unknown = set(item) - {"Sid", "Effect", "Principal", "Action", "Resource", "Condition"}
    if unknown:
        raise _malformed(f"Unsupported statement element(s): {', '.join(sorted(unknown))}.")
    effect = item.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise _malformed("Statement Effect must be Allow or Deny.")
    actions = _strings(item.get("Action"), "Action")
    if not all(a == "*" or a.lower().startswith(ACTION_PREFIX) for a in actions):
        raise _malformed("Statement Action values must be kms:<Operation> (wildcards allowed).")
    return Statement(
        allow=effect == "Allow",
        principals=tuple(_principal(p, account) for p in _principals(item.get("Principal"))),
        actions=actions,
        resources=_strings(item.get("Resource", "*"), "Resource"),
        conditions=tuple(_conditions(item.get("Condition", {}))),
    )


def _strings(value: Any, what: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, str) and v for v in items):
        raise _malformed(f"Statement {what} must be a string or a list of strings.")
    return tuple(items)


def _principals(value: Any) -> tuple[str, ...]:
    if value == "*":
        return ("*",)
    if isinstance(value, dict) and set(value) == {"AWS"}:
        return _strings(value["AWS"], "Principal")
    raise _malformed('Statement Principal must be "*" or {"AWS": ...}.')


def _principal(text: str, account: str) -> str:
    if text in ("*", account, root_arn(account)):
        return root_arn(account) if text == account else text
    prefix = f"arn:aws:iam::{account}:user/"
    if text.startswith(prefix) and len(text) > len(prefix):
        return text
    raise _malformed(f"Policy contains a statement with one or more invalid principals: {text}")


def _conditions(value: Any) -> list[Condition]:
    if not isinstance(value, dict):
        raise _malformed("Statement Condition must be a JSON object.")
    out = []
    for operator, tests in value.items():
        base = operator.removesuffix("IfExists")
        if base not in OPERATORS or not isinstance(tests, dict):
            raise _malformed(f"Unsupported condition operator {operator!r}.")
        for key, values in tests.items():
            if not (
                key.startswith(CONTEXT_PREFIX) or key in ("kms:CallerAccount", "aws:PrincipalArn")
            ):
                raise _malformed(f"Unsupported condition key {key!r}.")
            out.append(Condition(base, key, _strings(values, "Condition"), base != operator))
    return out
