"""Plain (aligned) or markdown tables for the benchmark reports."""

from __future__ import annotations

from collections.abc import Sequence


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool) -> str:
    if markdown:
        lines = [_md_row(headers), _md_row(["---"] * len(headers))]
        return "\n".join(lines + [_md_row(row) for row in rows])
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=True)]
    lines = [_plain_row(headers, widths), _plain_row(["-" * w for w in widths], widths)]
    return "\n".join(lines + [_plain_row(row, widths) for row in rows])


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _plain_row(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()
