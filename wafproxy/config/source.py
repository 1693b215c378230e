"""YAML -> Node tree that remembers file:line:col for every value.

Loaded with ``yaml.compose`` (safe, no object construction) so every error can say where it is.
Duplicate keys are rejected here; unknown keys are rejected by ``Node.fields``.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import yaml

from wafproxy.errors import ConfigError, Mark

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - pure Python PyYAML
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

Scalar = str | int | float | bool | None
MAX_NODES = 2_000_000  # aliases can expand a small file into a huge tree

_BOOL = {"true": True, "false": False, "yes": True, "no": False, "on": True, "off": False}


class Node:
    """One YAML value with its position and its path from the document root."""

    __slots__ = ("key_marks", "mark", "path", "value")

    def __init__(
        self,
        value: Scalar | list[Node] | dict[str, Node],
        mark: Mark,
        path: str,
        key_marks: dict[str, Mark] | None = None,
    ) -> None:
        self.value = value
        self.mark = mark
        self.path = path
        self.key_marks = key_marks
        """For a mapping: where each key is written (errors about a key point at the key)."""

    # -- errors -------------------------------------------------------------------------------
    def error(self, message: builtins.str) -> ConfigError:
        return ConfigError(self.mark, self.path, message)

    def expected(self, what: builtins.str) -> ConfigError:
        return self.error(f"expected {what}; got {self.describe()}")

    def describe(self) -> builtins.str:
        if isinstance(self.value, dict):
            return "a mapping"
        if isinstance(self.value, list):
            return "a list"
        if self.value is None:
            return "nothing"
        return repr(self.value)

    # -- shapes -------------------------------------------------------------------------------
    @property
    def is_map(self) -> bool:
        return isinstance(self.value, dict)

    @property
    def is_seq(self) -> bool:
        return isinstance(self.value, list)

    @property
    def is_scalar(self) -> bool:
        return not isinstance(self.value, (dict, list))

    def map(self) -> dict[builtins.str, Node]:
        if not isinstance(self.value, dict):
            raise self.expected("a mapping")
        return self.value

    def seq(self) -> list[Node]:
        if not isinstance(self.value, list):
            raise self.expected("a list")
        return self.value

    def fields(
        self, required: Iterable[builtins.str] = (), optional: Iterable[builtins.str] = ()
    ) -> dict[builtins.str, Node]:
        """The mapping, after checking that required keys are there and no other keys are."""
        items = self.map()
        req = list(required)
        allowed = list(dict.fromkeys([*req, *optional]))
        for key in items:
            if key not in allowed:
                raise self.key_error(key, allowed)
        for key in req:
            if key not in items:
                raise self.error(f"missing required key {key!r}")
        return items

    def key_error(self, key: builtins.str, allowed: Sequence[builtins.str]) -> ConfigError:
        import difflib

        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        mark = (self.key_marks or {}).get(key, self.mark)
        path = f"{self.path}.{key}" if self.path else key
        message = f"unknown key {key!r}; expected one of {', '.join(allowed)}{hint}"
        return ConfigError(mark, path, message)

    def single_key(self, what: builtins.str) -> tuple[builtins.str, Node]:
        """A mapping with exactly one key, e.g. ``{byte_match: {...}}``, or a bare string."""
        if isinstance(self.value, str):
            return self.value, Node(None, self.mark, f"{self.path}.{self.value}")
        items = self.map()
        if len(items) != 1:
            raise self.expected(f"exactly one {what}")
        ((key, child),) = items.items()
        return key, child

    # -- scalars ------------------------------------------------------------------------------
    def str(self) -> str:
        if isinstance(self.value, (dict, list)) or self.value is None:
            raise self.expected("a string")
        if isinstance(self.value, bool):
            return "true" if self.value else "false"
        return str(self.value)

    def int(self, low: int | None = None, high: int | None = None) -> int:
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            raise self.expected("an integer")
        if (low is not None and self.value < low) or (high is not None and self.value > high):
            raise self.expected(_range_text("an integer", low, high))
        return self.value

    def number(self, low: float | None = None, high: float | None = None) -> float:
        if isinstance(self.value, bool) or not isinstance(self.value, (int, float)):
            raise self.expected("a number")
        value = float(self.value)
        if (low is not None and value < low) or (high is not None and value > high):
            raise self.expected(_range_text("a number", low, high))
        return value

    def bool(self) -> bool:
        if not isinstance(self.value, bool):
            raise self.expected("true or false")
        return self.value

    def one_of(self, choices: Sequence[builtins.str]) -> builtins.str:
        if not isinstance(self.value, str) or self.value not in choices:
            raise self.expected(f"one of {', '.join(choices)}")
        return self.value

    def str_list(self) -> list[builtins.str]:
        """A list of strings; a single string is taken as a list of one."""
        if isinstance(self.value, str):
            return [self.value]
        return [child.str() for child in self.seq()]

    def __iter__(self) -> Iterator[Node]:
        return iter(self.seq())

    def __repr__(self) -> builtins.str:
        return f"Node({self.path!r} at {self.mark})"

    def plain(self) -> object:
        """The value as plain Python data (for tests and for re-emitting YAML)."""
        if isinstance(self.value, dict):
            return {k: v.plain() for k, v in self.value.items()}
        if isinstance(self.value, list):
            return [v.plain() for v in self.value]
        return self.value


def _range_text(what: str, low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{what} from {low} to {high}"
    if low is not None:
        return f"{what} >= {low}"
    return f"{what} <= {high}"


def load_file(path: str | Path) -> Node:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(None, "", f"{p}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(Mark(str(p), 1, 1), "", f"not UTF-8 text: {exc.reason}") from exc
    return parse(text, str(p))


def parse(text: str, filename: str = "<string>") -> Node:
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Mark(filename, mark.line + 1, mark.column + 1) if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(where, "", f"invalid YAML: {problem}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(Mark(filename, 1, 1), "", f"invalid YAML: {exc}") from exc
    if root is None:
        return Node({}, Mark(filename, 1, 1), "")
    return _Builder(filename).build(root, "")


class _Builder:
    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.count = 0

    def mark(self, node: yaml.Node) -> Mark:
        return Mark(self.filename, node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: yaml.Node, path: str) -> Node:
        self.count += 1
        if self.count > MAX_NODES:
            raise ConfigError(self.mark(node), path, f"document too large (over {MAX_NODES} nodes)")
        if isinstance(node, yaml.MappingNode):
            return self.build_map(node, path)
        if isinstance(node, yaml.SequenceNode):
            items = [self.build(child, f"{path}[{i}]") for i, child in enumerate(node.value)]
            return Node(items, self.mark(node), path)
        assert isinstance(node, yaml.ScalarNode)
        return Node(_scalar(node), self.mark(node), path)

    def build_map(self, node: yaml.MappingNode, path: str) -> Node:
        items: dict[str, Node] = {}
        key_marks: dict[str, Mark] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(self.mark(key_node), path, "expected a plain key")
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise ConfigError(self.mark(key_node), path, "merge keys (<<) are not supported")
            key = str(key_node.value)
            child_path = f"{path}.{key}" if path else key
            if key in items:
                raise ConfigError(self.mark(key_node), child_path, f"duplicate key {key!r}")
            items[key] = self.build(value_node, child_path)
            key_marks[key] = self.mark(key_node)
        return Node(items, self.mark(node), path, key_marks)


def _scalar(node: yaml.ScalarNode) -> Scalar:
    text: str = node.value
    tag = node.tag
    if tag.endswith(":null"):
        return None
    if tag.endswith(":bool"):
        # YAML 1.1 reads yes/no/on/off as booleans; a rule named "no" should stay a name
        return _BOOL[text.lower()] if text.lower() in ("true", "false") else text
    if tag.endswith(":int"):
        try:
            return int(text.replace("_", ""), 0)
        except ValueError:
            return text
    if tag.endswith(":float"):
        try:
            return float(text.replace("_", ""))
        except ValueError:
            return text
    return text
