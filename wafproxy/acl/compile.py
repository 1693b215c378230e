"""Rule files -> WebAcl values, and the scan plan (DESIGN.md §4).

``load_rule_files`` reads every file, gathers web ACLs, rule groups, IP sets, regex pattern sets
and response bodies into one namespace, then compiles each web ACL. Every pattern of an ACL
becomes an atom of the MatchGroup for its (field, transformation chain); statements keep only an
AtomRef. Errors are collected per rule, so ``wafproxy check`` can print all of them at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from wafproxy.acl.actions import compile_action, response_body
from wafproxy.acl.attacks import Detection
from wafproxy.acl.fields import compile_field
from wafproxy.acl.ipset import IpSet, build_ip_set, read_ip_list
from wafproxy.acl.matchers import (
    Atom,
    JointScan,
    MatchGroup,
    build_group,
    build_joint_scan,
    validate_regex,
)
from wafproxy.acl.model import (
    ActionKind,
    CustomResponse,
    Field,
    GeoResolver,
    OverrideAction,
    Rule,
    RuleAction,
    RuleGroup,
    RuleType,
    ScanInput,
    Statement,
    Transform,
    WebAcl,
)
from wafproxy.acl.prefilter import build_prefilter, build_quiet_plan
from wafproxy.acl.transforms import TRANSFORMS
from wafproxy.config.source import Node, load_file
from wafproxy.errors import ConfigError, ConfigErrors

TEST_SUFFIX = ".tests.yaml"
ACL_KEYS = [
    "web_acl", "description", "default_action", "label_namespace", "on_error", "rules",
    "custom_response_bodies", "rule_groups", "ip_sets", "regex_pattern_sets",
    "geo_database", "asn_database",
]  # fmt: skip
GROUP_FILE_KEYS = [
    "rule_group", "version", "description", "capacity", "rules", "custom_response_bodies",
    "ip_sets", "regex_pattern_sets",
]  # fmt: skip
SETS_FILE_KEYS = ["custom_response_bodies", "rule_groups", "ip_sets", "regex_pattern_sets"]


@dataclass(frozen=True)
class Chain:
    names: tuple[str, ...]
    fns: tuple[Transform, ...]


_AtomKey = tuple[str, tuple[str, ...], str, bool, Detection | None]


@dataclass(frozen=True)
class AtomRef:
    slot: int
    """Index of the MatchGroup in WebAcl.match_groups."""
    atom: int


@dataclass(frozen=True)
class RuleSet:
    acls: Mapping[str, WebAcl]
    files: tuple[Path, ...]
    warnings: tuple[str, ...] = ()
    read_files: tuple[Path, ...] = ()
    """Every other file the rules read (IP lists): a reload watches them too."""
    dynamic_ip_sets: frozenset[str] = frozenset()
    """IP sets declared ``dynamic: true``: entries come from the state at run time."""


@dataclass
class Sources:
    """Everything the files define, by name, with the node each came from."""

    acls: dict[str, Node] = field(default_factory=dict)
    groups: dict[str, Node] = field(default_factory=dict)
    managed: dict[str, Node] = field(default_factory=dict)
    ip_sets: dict[str, tuple[Node, IpSet]] = field(default_factory=dict)
    regex_sets: dict[str, tuple[Node, tuple[str, ...]]] = field(default_factory=dict)
    bodies: dict[str, CustomResponse] = field(default_factory=dict)
    errors: list[ConfigError] = field(default_factory=list)
    used_sets: set[str] = field(default_factory=set)
    used_groups: set[str] = field(default_factory=set)
    shipped_sets: set[str] = field(default_factory=set)
    dynamic_sets: set[str] = field(default_factory=set)
    read_files: list[Path] = field(default_factory=list)


def managed_rules_dir() -> Path:
    return Path(str(resources.files("wafproxy.rules")))


def default_rule_files() -> list[Path]:
    return [managed_rules_dir() / "default.yaml"]


def load_rule_files(paths: Sequence[Path | str], extra: Sequence[Node] = ()) -> RuleSet:
    """Compile every web ACL the files (and ``extra`` parsed documents) define.

    Raises ConfigErrors listing every problem.
    """
    sources = Sources()
    managed = _managed_files()
    for path in managed:
        _gather(sources, path, managed=True)
    shipped = {p.resolve() for p in managed}
    files = tuple(Path(p) for p in paths)
    for path in files:
        if path.resolve() not in shipped:  # a managed group named again: already loaded
            _gather(sources, path, managed=False)
    for node in extra:
        _gather(sources, Path(node.mark.file), managed=False, root=node)
    acls: dict[str, WebAcl] = {}
    warnings: list[str] = []
    for name, node in sources.acls.items():
        acl = _compile_acl(name, node, sources)
        if acl is not None:
            acls[name] = acl
            warnings.extend(acl.warnings)
    _check_unreferenced_groups(sources)
    if not sources.acls and not sources.errors:
        sources.errors.append(ConfigError(None, "", "no web_acl defined in the rule files"))
    warnings.extend(_unused_set_warnings(sources))
    if sources.errors:
        raise ConfigErrors(_unique_in_file_order(sources.errors))
    return RuleSet(
        acls=acls,
        files=files,
        warnings=tuple(warnings),
        read_files=tuple(dict.fromkeys(sources.read_files)),
        dynamic_ip_sets=frozenset(sources.dynamic_sets),
    )


def _check_unreferenced_groups(sources: Sources) -> None:
    """A custom group no ACL references is still checked, so its errors don't wait for its
    first use."""
    from wafproxy.acl.rules import compile_rule_list

    for name, node in sources.groups.items():
        if name not in sources.used_groups:
            c = Compiler(sources, f"rulegroup:{name}")
            compile_rule_list(node.map().get("rules"), c, f"rulegroup:{name}", in_group=True)


def _unique_in_file_order(errors: Sequence[ConfigError]) -> list[ConfigError]:
    """A group referenced twice is compiled twice: report each of its errors once."""
    unique = {str(e): e for e in errors}
    return sorted(
        unique.values(),
        key=lambda e: (e.mark.file, e.mark.line, e.mark.col) if e.mark else ("", 0, 0),
    )


def _managed_files() -> list[Path]:
    return sorted(
        p
        for p in managed_rules_dir().glob("*.yaml")
        if not p.name.endswith(TEST_SUFFIX) and p.name != "default.yaml"
    )


# -- gathering ------------------------------------------------------------------------------------
def _gather(sources: Sources, path: Path, *, managed: bool, root: Node | None = None) -> None:
    try:
        if root is None:
            root = load_file(path)
        items = root.map()
        if "web_acl" in items:
            root.fields(required=["web_acl", "default_action"], optional=ACL_KEYS)
            _add(sources.acls, items["web_acl"], root, "web ACL")
        elif "rule_group" in items:
            root.fields(required=["rule_group", "rules"], optional=GROUP_FILE_KEYS)
            _add(
                sources.managed if managed else sources.groups,
                items["rule_group"],
                root,
                "rule group",
            )
        else:
            root.fields(optional=SETS_FILE_KEYS)
    except ConfigError as exc:
        sources.errors.append(exc)
        return
    _gather_sets(sources, items, path.parent)
    if managed:  # a shipped group's sets are used when the group is: no warning for them
        for key in ("ip_sets", "regex_pattern_sets"):
            if key in items and items[key].is_map:
                sources.shipped_sets.update(items[key].map())


def _add(table: dict[str, Node], name_node: Node, root: Node, what: str) -> None:
    name = name_node.str()
    if name in table:
        raise name_node.error(f"{what} {name!r} is already defined at {table[name].mark}")
    table[name] = root


def _gather_sets(sources: Sources, items: dict[str, Node], base: Path) -> None:
    for key in SETS_FILE_KEYS:
        if key not in items:
            continue
        try:
            entries = items[key].map()
        except ConfigError as exc:
            sources.errors.append(exc)
            continue
        for name, value in entries.items():
            try:
                _add_set(sources, key, name, value, base)
            except ConfigError as exc:
                sources.errors.append(exc)


def _add_set(sources: Sources, key: str, name: str, node: Node, base: Path) -> None:
    if key == "rule_groups":
        node.fields(required=["rules"], optional=["description", "capacity"])
        _add(sources.groups, Node(name, node.mark, node.path), node, "rule group")
        return
    table: dict[str, object] = {
        "custom_response_bodies": sources.bodies,
        "ip_sets": sources.ip_sets,
        "regex_pattern_sets": sources.regex_sets,
    }[key]  # type: ignore[assignment]
    if name in table:
        raise node.error(f"{key} entry {name!r} is defined twice")
    if key == "custom_response_bodies":
        sources.bodies[name] = response_body(node)
    elif key == "ip_sets":
        sources.ip_sets[name] = (node, _ip_set(name, node, base, sources))
    else:
        sources.regex_sets[name] = (node, _regex_set(node))


def _ip_set(name: str, node: Node, base: Path, sources: Sources) -> IpSet:
    opts = node.fields(
        optional=["addresses", "file", "description", "ip_address_version", "dynamic"]
    )
    entries = opts["addresses"].str_list() if "addresses" in opts else []
    if "file" in opts:
        path = base / opts["file"].str()
        sources.read_files.append(path)
        try:
            entries += read_ip_list(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise opts["file"].error(f"cannot read IP list {path}: {exc}") from exc
    dynamic = opts["dynamic"].bool() if "dynamic" in opts else False
    if dynamic:
        sources.dynamic_sets.add(name)
    elif "addresses" not in opts and "file" not in opts:
        raise node.error("an IP set needs addresses or file (or dynamic: true)")
    try:
        return build_ip_set(name, entries)
    except ValueError as exc:
        raise node.error(str(exc)) from exc


def _regex_set(node: Node) -> tuple[str, ...]:
    opts = node.fields(required=["regular_expressions"], optional=["description"])
    out: list[str] = []
    for item in opts["regular_expressions"].seq():
        regex = item.str()
        reason = validate_regex(regex)
        if reason:
            raise item.error(_regex_error(reason))
        out.append(regex)
    return tuple(out)


def _unused_set_warnings(sources: Sources) -> list[str]:
    out = []
    for kind, table in (("IP set", sources.ip_sets), ("regex pattern set", sources.regex_sets)):
        for name, (node, _) in table.items():
            if name not in sources.used_sets and name not in sources.shipped_sets:
                out.append(f"{node.mark}: {kind} {name!r} is not used by any rule")
    return out


# -- compiling a web ACL --------------------------------------------------------------------------
class Compiler:
    """Compiles statements of one web ACL and collects its scan plan."""

    def __init__(self, sources: Sources, acl_name: str) -> None:
        self.sources = sources
        self.acl_name = acl_name
        self.geo: GeoResolver | None = None
        self.namespace = ""
        self.max_paranoia = 4
        """The paranoia level of the managed group reference being compiled (4: all rules)."""
        """The label namespace of the rules being compiled (label_match keys resolve in it)."""
        self.group = ""
        """The rule group whose rules are being compiled ("" for the web ACL's own rules)."""
        self.rate_rule: str | None = None
        """The rule whose top-level statement is being compiled, while it is a rate_based one."""
        self._pending: dict[tuple[str, tuple[str, ...]], tuple[Field, Chain, list[Atom]]] = {}
        self._atom_ids: dict[_AtomKey, AtomRef] = {}

    # statements use these
    def statement(self, node: Node) -> Statement:
        from wafproxy.acl.statements import STATEMENTS

        name, options = node.single_key("statement")
        if name not in STATEMENTS:
            raise (node if node.is_scalar else options).error(STATEMENTS.unknown(name))
        return STATEMENTS[name](options, self)

    def field(self, node: Node) -> Field:
        return compile_field(node)

    def chain(self, node: Node | None) -> Chain:
        if node is None:
            return Chain((), ())
        names: list[str] = []
        for item in node.seq() if node.is_seq else [node]:
            name = item.str()
            if name not in TRANSFORMS:
                raise item.error(TRANSFORMS.unknown(name))
            if name != "none":
                names.append(name)
        if len(names) > 10:
            raise node.error("at most 10 text transformations per statement")
        return Chain(tuple(names), tuple(TRANSFORMS[n] for n in names))

    def atom(
        self, fld: Field, chain: Chain, regex: str, node: Node, caseless: bool = False
    ) -> AtomRef:
        reason = validate_regex(regex)
        if reason:
            raise node.error(_regex_error(reason))
        return self._add_atom(fld, chain, regex, caseless, None)

    def detection(self, fld: Field, chain: Chain, detection: Detection) -> AtomRef:
        return self._add_atom(fld, chain, detection.value, False, detection)

    def _add_atom(
        self, fld: Field, chain: Chain, regex: str, caseless: bool, detection: Detection | None
    ) -> AtomRef:
        key = (fld.key, chain.names, regex, caseless, detection)
        if key in self._atom_ids:
            return self._atom_ids[key]
        group_key = (fld.key, chain.names)
        if group_key not in self._pending:
            self._pending[group_key] = (fld, chain, [])
        slot = list(self._pending).index(group_key)
        atoms = self._pending[group_key][2]
        ref = AtomRef(slot, len(atoms))
        atoms.append(Atom(id=len(atoms), regex=regex, caseless=caseless, detection=detection))
        self._atom_ids[key] = ref
        return ref

    def ip_set(self, node: Node) -> IpSet:
        name = node.str()
        if name not in self.sources.ip_sets:
            raise node.error(_missing("IP set", name, self.sources.ip_sets))
        self.sources.used_sets.add(name)
        return self.sources.ip_sets[name][1]

    def is_dynamic_set(self, name: str) -> bool:
        return name in self.sources.dynamic_sets

    def regex_set(self, node: Node) -> tuple[str, ...]:
        name = node.str()
        if name not in self.sources.regex_sets:
            raise node.error(_missing("regex pattern set", name, self.sources.regex_sets))
        self.sources.used_sets.add(name)
        return self.sources.regex_sets[name][1]

    def require_geo(self, node: Node) -> GeoResolver:
        if self.geo is None:
            raise node.error(
                "geo_match / asn_match need geo_database (or asn_database) in the web ACL"
            )
        return self.geo

    def match_groups(self) -> tuple[MatchGroup, ...]:
        return tuple(
            build_group(slot, fld.key, chain.names, atoms)
            for slot, (fld, chain, atoms) in enumerate(self._pending.values())
        )

    def joint_scans(self) -> tuple[JointScan | None, ...]:
        """For each pair of slots of one field whose chains differ by a last step in
        JOINT_STEPS, one JointScan (a slot joins at most one); empty when there is no pair."""
        pending = list(self._pending.values())
        slot_of = {(fld.key, chain.names): slot for slot, (fld, chain, _) in enumerate(pending)}
        joints: list[JointScan | None] = [None] * len(pending)
        for second, (fld, chain, atoms) in enumerate(pending):
            if len(chain.names) < 2 or chain.names[-1] not in JOINT_STEPS:
                continue
            first = slot_of.get((fld.key, chain.names[:-1]))
            if first is None or joints[first] is not None or joints[second] is not None:
                continue
            joint = build_joint_scan(first, second, pending[first][2], atoms)
            if joint is not None:
                joints[first] = joints[second] = joint
        return tuple(joints) if any(joints) else ()

    def scan_inputs(self) -> tuple[ScanInput, ...]:
        return tuple(
            ScanInput(fld, chain.names, chain.fns, tuple(a.detection or a.regex for a in atoms))
            for fld, chain, atoms in self._pending.values()
        )


JOINT_STEPS = frozenset({"replace_comments", "remove_nulls", "replace_nulls"})
"""Last steps that leave ordinary text as it is, so that a chain with and without them usually
gives the same text: the two groups get a JointScan."""


def _regex_error(reason: str) -> str:
    return reason if reason.startswith("invalid regex") else f"invalid regex: {reason}"


def _missing(kind: str, name: str, table: Mapping[str, object]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(table), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"no {kind} named {name!r}{hint}"


def _compile_acl(name: str, root: Node, sources: Sources) -> WebAcl | None:
    from wafproxy.acl.geo import open_geo
    from wafproxy.acl.lint import lint_rules
    from wafproxy.acl.rules import compile_rule_list

    errors_before = len(sources.errors)
    items = root.map()
    c = Compiler(sources, name)
    default_action: RuleAction = RuleAction(ActionKind.ALLOW)
    try:
        default_action = compile_action(items["default_action"], sources.bodies)
        if default_action.kind is ActionKind.COUNT:
            raise items["default_action"].expected("allow or block")
        c.geo = open_geo(items, Path(root.mark.file).parent)
    except ConfigError as exc:
        sources.errors.append(exc)
    namespace = items["label_namespace"].str() if "label_namespace" in items else f"webacl:{name}"
    rules = compile_rule_list(items.get("rules"), c, namespace, in_group=False)
    on_error = ActionKind.BLOCK
    if "on_error" in items:
        try:
            on_error = ActionKind(items["on_error"].one_of(["block", "allow"]))
        except ConfigError as exc:
            sources.errors.append(exc)
    if len(sources.errors) > errors_before:
        return None
    try:
        groups = c.match_groups()
        joints = c.joint_scans()
    except ValueError as exc:  # a pattern both engines refused at build time
        sources.errors.append(root.error(str(exc)))
        return None
    top = build_prefilter(rules)
    return WebAcl(
        name=name,
        default_action=default_action,
        rules=rules,
        match_groups=groups,
        scan_inputs=c.scan_inputs(),
        joint_scans=joints,
        capacity=sum(r.capacity for r in rules),
        warnings=tuple(lint_rules(rules, items.get("rules"))),
        label_namespace=namespace,
        geo=c.geo,
        on_error=on_error,
        prefilter=top,
        quiet=build_quiet_plan(rules, top),
    )


__all__ = [
    "AtomRef",
    "Chain",
    "Compiler",
    "OverrideAction",
    "Rule",
    "RuleGroup",
    "RuleSet",
    "RuleType",
    "default_rule_files",
    "load_rule_files",
]
