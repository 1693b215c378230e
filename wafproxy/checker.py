"""``wafproxy check``: every error at once, each rule's capacity, and warnings."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from wafproxy.acl.compile import RuleSet, default_rule_files, load_rule_files
from wafproxy.acl.model import Rule, WebAcl
from wafproxy.errors import ConfigError, ConfigErrors


def check(config_path: Path | None, rule_paths: Sequence[Path], *, quiet: bool = False) -> int:
    errors: list[ConfigError] = []
    files = list(rule_paths)
    if config_path is not None:
        files += _config_rule_files(config_path, errors)
    if not files and not errors:
        files = default_rule_files()
    rule_set: RuleSet | None = None
    if files:
        try:
            rule_set = load_rule_files(files)
        except ConfigErrors as exc:
            errors.extend(exc.errors)
    if rule_set is not None and config_path is not None and not errors:
        errors.extend(_cross_check(config_path))
    if rule_set is not None and not quiet:
        for acl in rule_set.acls.values():
            print_capacity(acl)
    for warning in rule_set.warnings if rule_set else ():
        print(f"warning: {warning}", file=sys.stderr)
    for error in errors:
        print(error, file=sys.stderr)
    if errors:
        print(f"{len(errors)} error{'s' if len(errors) != 1 else ''}", file=sys.stderr)
        return 1
    if not quiet:
        print("ok")
    return 0


def _config_rule_files(config_path: Path, errors: list[ConfigError]) -> list[Path]:
    from wafproxy.config.load import load_service_config

    try:
        config = load_service_config(config_path)
    except ConfigErrors as exc:
        errors.extend(exc.errors)
        return []
    except ConfigError as exc:
        errors.append(exc)
        return []
    return list(config.rules) or default_rule_files()


def _cross_check(config_path: Path) -> list[ConfigError]:
    """Routes naming web ACLs that don't exist, and the like: the runtime build checks them."""
    from wafproxy.config.load import load_service_config
    from wafproxy.config.runtime import build_runtime

    try:
        build_runtime(load_service_config(config_path))
    except ConfigErrors as exc:
        return list(exc.errors)
    except ConfigError as exc:
        return [exc]
    return []


def print_capacity(acl: WebAcl) -> None:
    print(f"web ACL {acl.name}: capacity {acl.capacity}, {len(acl.match_groups)} scan groups")
    for rule in acl.rules:
        _print_rule(rule, "  ")


def _print_rule(rule: Rule, indent: str) -> None:
    action = rule.action.kind.value if rule.action else f"override {rule.override_action}"
    if rule.override_action is not None:
        action = f"override_action {rule.override_action.value}"
    print(f"{indent}{rule.priority:>5} {rule.name} ({action}): capacity {rule.capacity}")
    if rule.group is not None:
        for inner in rule.group.rules:
            _print_rule(inner, indent + "      ")
