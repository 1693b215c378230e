"""The rule file's data -> YAML text, headed by where it came from and the import's warnings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import yaml


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


class _Dumper(yaml.SafeDumper):
    """Block style with list items indented under their key, multi-line text as ``|``."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)
