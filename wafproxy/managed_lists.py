"""``wafproxy managed-lists``: the address lists of the shipped IP reputation and anonymous-IP
rule groups (rules/data/*.txt), replaced from local feed files.

A feed may be plain text, CSV or STIX 2.1 (wafproxy/detect/threatlist.py reads all three);
every entry is checked before anything is written, the new list replaces the old one with one
rename (a reader never sees half a list), and a running proxy reloads its rules when a file an
IP set reads changes.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
import time
from pathlib import Path

from wafproxy.kms.fsutil import atomic_write

LISTS = {
    "ip-reputation": ("ip-reputation.txt", "wafproxy-ip-reputation"),
    "reconnaissance": ("reconnaissance.txt", "wafproxy-ip-reputation"),
    "anonymous-ip": ("anonymous-ip.txt", "wafproxy-anonymous-ip"),
    "hosting-providers": ("hosting-providers.txt", "wafproxy-anonymous-ip"),
}


def data_dir() -> Path:
    from wafproxy.acl.compile import managed_rules_dir  # the CLI builds its parser without it

    return managed_rules_dir() / "data"


def list_path(name: str, directory: Path | None = None) -> Path:
    return (directory or data_dir()) / LISTS[name][0]


def merged_networks(sources: list[Path]) -> list[str]:
    """The feeds' entries as canonical networks, deduplicated, IPv4 first, sorted."""
    from wafproxy.detect.threatlist import read_addresses

    networks = {
        ipaddress.ip_network(address.strip(), strict=False)
        for source in sources
        for address in read_addresses(source)
    }
    return [str(n) for n in sorted(networks, key=lambda n: (n.version, n))]


def write_list(path: Path, networks: list[str], sources: list[Path]) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    header = [
        f"# written by `wafproxy managed-lists update` at {stamp}",
        *(f"# from {source}" for source in sources),
    ]
    text = "\n".join([*header, *networks]) + "\n"
    atomic_write(path, text.encode("utf-8"), mode=0o644)  # the proxy may run as another user


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "managed-lists",
        help="show or replace the address lists of the IP reputation and anonymous-IP groups",
        description="The wafproxy-ip-reputation and wafproxy-anonymous-ip rule groups read "
        "address lists from files (rules/data/). 'update' replaces one from local feed files "
        "(plain text, CSV or STIX 2.1 JSON); a running proxy reloads when the file changes.",
    )
    actions = p.add_subparsers(title="actions", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="each list: its file, group and number of entries")
    show.add_argument("--data-dir", type=Path, help="the lists' directory (default: shipped)")
    show.set_defaults(func=cmd_show)
    update = actions.add_parser("update", help="replace a list with the entries of feed files")
    update.add_argument("name", choices=sorted(LISTS), help="the list")
    update.add_argument("sources", nargs="+", type=Path, metavar="FILE", help="feed files")
    update.add_argument("--data-dir", type=Path, help="the lists' directory (default: shipped)")
    update.add_argument("--dry-run", action="store_true", help="check and count, write nothing")
    update.set_defaults(func=cmd_update)


def cmd_show(args: argparse.Namespace) -> int:
    from wafproxy.acl.ipset import read_ip_list

    for name, (_, group) in LISTS.items():
        path = list_path(name, args.data_dir)
        count = len(read_ip_list(path.read_text(encoding="utf-8"))) if path.exists() else 0
        print(f"{name:<18} {group:<24} {count:>8} entries  {path}")
    return 0


def cmd_update(args: argparse.Namespace) -> int:
    networks = merged_networks(args.sources)
    path = list_path(args.name, args.data_dir)
    if args.dry_run:
        print(f"{args.name}: {len(networks)} entries would replace {path}")
        return 0
    if not networks:
        print(f"wafproxy: no addresses in {', '.join(map(str, args.sources))}", file=sys.stderr)
        return 1
    write_list(path, networks, args.sources)
    print(f"{args.name}: {len(networks)} entries written to {path}")
    return 0
