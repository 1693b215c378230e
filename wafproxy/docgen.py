"""docs/reference.md is generated from the registries' docstrings, so it cannot drift from the code.

``python -m wafproxy.docgen > docs/reference.md``; tests/test_docs.py checks the file is current
and compiles every example it contains.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from wafproxy.acl.actions import ACTIONS
from wafproxy.acl.fields import FIELDS
from wafproxy.acl.statements import STATEMENTS
from wafproxy.acl.transforms import TRANSFORMS
from wafproxy.registry import Registry

FENCE = "```"


@dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    text: str
    examples: tuple[str, ...]


def entries() -> Iterator[Entry]:
    sections: list[tuple[str, Registry[Callable[..., object]]]] = [
        ("statement", STATEMENTS),  # type: ignore[list-item]
        ("field", FIELDS),  # type: ignore[list-item]
        ("transform", TRANSFORMS),  # type: ignore[list-item]
        ("action", ACTIONS),  # type: ignore[list-item]
    ]
    for kind, registry in sections:
        for name, item in registry.items():
            doc = inspect.getdoc(item) or ""
            text, examples = split_doc(doc)
            yield Entry(kind, name, text, examples)


def split_doc(doc: str) -> tuple[str, tuple[str, ...]]:
    """Prose, and the YAML examples: fenced yaml blocks or ``inline`` literals on their own line."""
    prose: list[str] = []
    examples: list[str] = []
    lines = iter(doc.splitlines())
    for line in lines:
        stripped = line.strip()
        if stripped.startswith(FENCE):
            block = []
            for inner in lines:
                if inner.strip().startswith(FENCE):
                    break
                block.append(inner)
            examples.append("\n".join(block))
        elif stripped.startswith("``") and stripped.endswith("``") and len(stripped) > 4:
            examples.append(stripped[2:-2])
        else:
            prose.append(line)
    return " ".join(p.strip() for p in prose if p.strip()), tuple(examples)


def render() -> str:
    out = [
        "# Rule reference",
        "",
        "Generated from the code by `python -m wafproxy.docgen`; do not edit by hand.",
        "The language itself is described in [rule-language.md](rule-language.md).",
    ]
    titles = {
        "statement": "Statements",
        "field": "Fields",
        "transform": "Text transformations",
        "action": "Actions",
    }
    current = ""
    for entry in entries():
        if entry.kind != current:
            current = entry.kind
            out += ["", f"## {titles[current]}"]
        out += ["", f"### `{entry.name}`", "", entry.text or "(no description)"]
        for example in entry.examples:
            out += ["", f"{FENCE}yaml", example, FENCE]
    return "\n".join(out) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(render(), end="")
