"""One import's shared state and the checked reads every converter makes through it.

The converters are functions of a ``Context``: it knows every document (references resolve
against them), the one being converted (errors and warnings name its file) and the warnings so
far. Its reads check a JSON value's type and keys and fail with the value's JSON path."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from wafproxy.config.aws_import.documents import (
    GET_COMMANDS,
    Document,
    Kind,
    arn_name,
    aws_namespace,
    join_path,
)
from wafproxy.config.aws_import.model import AwsImportError, SearchStringEncoding


class Context:
    def __init__(self, docs: list[Document], encoding: SearchStringEncoding) -> None:
        self.docs = docs
        self.doc = docs[0]
        self.encoding = encoding
        self.warnings: list[str] = []
        # (an imported rule group's AWS label namespace, ours): label_match keys are rewritten
        self.label_prefixes = [
            (aws, f"rulegroup:{d.name}:")
            for d in docs
            if d.kind is Kind.RULE_GROUP and (aws := aws_namespace(d, "rulegroup"))
        ]

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
                raise self.error(join_path(path, key), f"unknown key {key!r}: expected {expected}")
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
                raise self.error(join_path(path, key), f"{key} is not supported: {reason}")

    def resolve(self, value: object, kind: Kind, path: str) -> str:
        arn = self.text(value, path)
        for doc in self.docs:
            if doc.kind is kind and doc.arn == arn:
                return doc.name
        name = arn_name(arn, kind)
        if name is not None and any(d.kind is kind and d.name == name for d in self.docs):
            return name
        raise self.error(
            path,
            f"no {kind.value} document for {arn}; pass the output of "
            f"`aws wafv2 {GET_COMMANDS[kind]}` for it as well",
        )


def _describe(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
