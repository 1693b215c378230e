"""``wafproxy kms principals ...``: the KMS server's callers (parser in cli.py)."""

from __future__ import annotations

import argparse
import time

from wafproxy.kms.clicommands import _open_store, _print


def principal_create(args: argparse.Namespace) -> int:
    from wafproxy.kms.principals import create_principal

    p = create_principal(_open_store(args), args.name, args.allow, time.time())
    return _print(
        {
            "UserName": p.name,
            "AccessKeyId": p.access_key_id,
            "SecretAccessKey": p.secret_access_key,
            "Actions": list(p.actions),
        }
    )


def principal_list(args: argparse.Namespace) -> int:
    principals = _open_store(args).data().principals.values()
    rows = [
        {"UserName": p.name, "AccessKeyId": p.access_key_id, "Actions": list(p.actions)}
        for p in sorted(principals, key=lambda p: p.name)
    ]
    return _print({"Principals": rows})


def principal_delete(args: argparse.Namespace) -> int:
    from wafproxy.kms.principals import delete_principal

    delete_principal(_open_store(args), args.name)
    return 0


def principal_rotate_credentials(args: argparse.Namespace) -> int:
    from wafproxy.kms.principals import rotate_credentials

    p = rotate_credentials(_open_store(args), args.name)
    return _print(
        {"UserName": p.name, "AccessKeyId": p.access_key_id, "SecretAccessKey": p.secret_access_key}
    )


def principal_set_actions(args: argparse.Namespace) -> int:
    from wafproxy.kms.principals import set_actions

    p = set_actions(_open_store(args), args.name, args.allow)
    return _print({"UserName": p.name, "Actions": list(p.actions)})
