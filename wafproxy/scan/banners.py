"""Product names and versions from response headers (``Server: Apache/2.4.49 (Unix)
OpenSSL/1.0.1f``) and from debug pages. Plain string handling, no regular expressions."""

from __future__ import annotations

from dataclasses import dataclass

from wafproxy.scan.client import Probe

BANNER_HEADERS = ("Server", "X-Powered-By", "X-AspNet-Version", "X-AspNetMvc-Version",
                  "X-Generator", "X-Runtime-Version")  # fmt: skip
VERSION_ONLY = {"x-aspnet-version": "ASP.NET", "x-aspnetmvc-version": "ASP.NET MVC"}


@dataclass(frozen=True)
class Product:
    name: str
    version: str | None
    header: str
    """Where it was seen: a header name, or ``body`` for a debug page."""


def strip_comments(value: str) -> str:
    out: list[str] = []
    depth = 0
    for ch in value:
        if ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
        elif not depth:
            out.append(ch)
    return "".join(out)


def parse_products(value: str, header: str) -> list[Product]:
    """RFC 9110 product tokens: ``name[/version]`` separated by spaces, comments ignored."""
    if header.lower() in VERSION_ONLY:
        version = value.strip()
        return [Product(VERSION_ONLY[header.lower()], version or None, header)]
    products = []
    for token in strip_comments(value).replace(",", " ").split():
        name, _, version = token.partition("/")
        if name and any(c.isalpha() for c in name):
            products.append(Product(name, version if _looks_like_version(version) else None,
                                    header))  # fmt: skip
    return products


def _looks_like_version(text: str) -> bool:
    return bool(text) and text[0].isdigit()


def products_of(probe: Probe) -> list[Product]:
    found: list[Product] = []
    for header in BANNER_HEADERS:
        for value in probe.header_all(header):
            found.extend(parse_products(value, header))
    found.extend(debug_page_products(probe.text))
    return found


def debug_page_products(text: str) -> list[Product]:
    """Versions that framework debug pages print (Django's yellow page, PHP's phpinfo)."""
    found = []
    django = _cell_after(text, "Django Version:")
    if django:
        found.append(Product("Django", django, "body"))
    php = _cell_after(text, "PHP Version ")
    if php and "phpinfo()" in text:
        found.append(Product("PHP", php, "body"))
    return found


def _cell_after(text: str, label: str) -> str | None:
    at = text.find(label)
    if at < 0:
        return None
    rest = text[at + len(label) : at + len(label) + 200]
    # skip markup between the label and the value (e.g. "</th>\n<td>")
    value: list[str] = []
    in_tag = False
    for ch in rest:
        if ch == "<":
            if value:
                break
            in_tag = True
        elif ch == ">":
            in_tag = False
        elif not in_tag and (ch.isalnum() or ch in ".-+") and not (ch == "." and not value):
            value.append(ch)
        elif not in_tag and value:
            break
    version = "".join(value)
    return version if _looks_like_version(version) else None
