"""Path normalisation: repeated slashes, ``./`` and ``dir/../`` resolved (also with ``\\``)."""

from __future__ import annotations

from wafproxy.acl.transforms.registry import TRANSFORMS


def _normalize(path: str) -> str:
    absolute = path.startswith("/")
    kept: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment != "..":
            kept.append(segment)
        elif kept and kept[-1] != "..":
            kept.pop()
        elif not absolute:
            kept.append("..")  # a relative path keeps the back-references it cannot resolve
    joined = "/".join(kept)
    if kept and path.endswith("/"):
        joined += "/"
    return "/" + joined if absolute else joined


@TRANSFORMS.register("normalize_path")
def normalize_path(s: str) -> str:
    """Remove repeated slashes, ``./`` self-references and ``dir/../`` back-references
    (``/a/./b/../c`` -> ``/a/c``). An absolute path never climbs above ``/``; a relative path
    keeps leading ``..`` segments it cannot resolve. A trailing slash is kept.

    ``transforms: [url_decode, normalize_path, lowercase]``
    """
    if "//" not in s and "/." not in s and not s.startswith("."):
        return s
    return _normalize(s)


@TRANSFORMS.register("normalize_path_win")
def normalize_path_win(s: str) -> str:
    """``normalize_path`` after turning every backslash into a forward slash
    (``C:\\a\\..\\b`` -> ``C:/b``).

    ``transforms: [url_decode, normalize_path_win, lowercase]``
    """
    return normalize_path(s.replace("\\", "/") if "\\" in s else s)
