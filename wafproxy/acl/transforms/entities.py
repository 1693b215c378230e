"""HTML character references: numeric, and the named ones AWS and ModSecurity decode."""

from __future__ import annotations

from wafproxy.acl.transforms.registry import TRANSFORMS

# ModSecurity's five, which also decode without the ";", and the ASCII punctuation that the AWS
# Developer Guide lists; names are matched case-insensitively, as AWS documents.
_LOOSE_ENTITIES = {"quot": '"', "amp": "&", "lt": "<", "gt": ">", "nbsp": "\xa0"}
_ENTITIES = {
    **_LOOSE_ENTITIES,
    "nonbreakingspace": "\xa0",
    "newline": "\n",
    "tab": "\t",
    "apos": "'",
    "excl": "!",
    "num": "#",
    "dollar": "$",
    "percnt": "%",
    "lpar": "(",
    "rpar": ")",
    "ast": "*",
    "midast": "*",
    "plus": "+",
    "comma": ",",
    "period": ".",
    "sol": "/",
    "colon": ":",
    "semi": ";",
    "equals": "=",
    "quest": "?",
    "commat": "@",
    "lsqb": "[",
    "lbrack": "[",
    "bsol": "\\",
    "rsqb": "]",
    "rbrack": "]",
    "hat": "^",
    "lowbar": "_",
    "underbar": "_",
    "grave": "`",
    "diacriticalgrave": "`",
    "lcub": "{",
    "lbrace": "{",
    "verbar": "|",
    "vert": "|",
    "verticalline": "|",
    "rcub": "}",
    "rbrace": "}",
}
_LONGEST_ENTITY = max(map(len, _ENTITIES))
_DIGITS = "0123456789"
_HEX_DIGITS = "0123456789abcdefABCDEF"


def _numeric_entity(part: str) -> str | None:
    """``#NNN...`` / ``#xHHH...`` (``;`` optional) at the start of ``part``, decoded."""
    hexadecimal = part[1:2] in ("x", "X")
    body = part[2:] if hexadecimal else part[1:]
    significant = body.lstrip("0")
    rest = significant.lstrip(_HEX_DIGITS if hexadecimal else _DIGITS)
    number = significant[: len(significant) - len(rest)]
    if len(rest) == len(body) or len(number) > 7:
        return None  # no digits at all, or far beyond U+10FFFF
    code = int(number or "0", 16 if hexadecimal else 10)
    if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code) + (rest[1:] if rest[:1] == ";" else rest)


def _named_entity(part: str) -> str | None:
    """``name;`` (or one of the loose five without ``;``) at the start of ``part``, decoded."""
    semicolon = part.find(";", 1, _LONGEST_ENTITY + 1)
    if semicolon > 0:
        value = _ENTITIES.get(part[:semicolon].lower())
        if value is not None:
            return value + part[semicolon + 1 :]
    folded = part[:4].lower()
    for size in (4, 3, 2):  # the lengths of the loose names
        value = _LOOSE_ENTITIES.get(folded[:size]) if size <= len(part) else None
        if value is not None:
            following = part[size : size + 1]
            if following.isascii() and following.isalnum():
                return None  # a longer name: "&ltx" is not "&lt" + "x"
            return value + part[size:]
    return None


@TRANSFORMS.register("html_entity_decode")
def html_entity_decode(s: str) -> str:
    """Decode HTML character references: ``&#xhhhh;`` and ``&#nnnn;`` (the ``;`` is optional) to
    the character they name, and named ones such as ``&lt;`` ``&quot;`` ``&nbsp;`` ``&lpar;``
    (case-insensitive; ``&quot &amp &lt &gt &nbsp`` also without ``;``). Anything else stays.

    ``transforms: [url_decode, html_entity_decode]``
    """
    if "&" not in s:
        return s
    parts = s.split("&")
    out = [parts[0]]
    for part in parts[1:]:
        first = part[:1]
        if first == "#":
            decoded = _numeric_entity(part)
        elif first.isascii() and first.isalnum():
            decoded = _named_entity(part)
        else:
            decoded = None
        out.append("&" + part if decoded is None else decoded)
    return "".join(out)
