"""``wafproxy kms ...``: the argument parser. The commands themselves are in clicommands.py.

Key and crypto commands act on a local keystore (``--store``, root key options) or, with
``--endpoint-url``, on a KMS server (``wafproxy kms serve`` or AWS KMS) through boto3 with the
usual AWS credentials; ``-c wafproxy.yaml`` takes either from the config's ``kms:`` section.
Output is JSON in AWS's member names, as the AWS CLI prints it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from wafproxy.kms.rootkey import DEFAULT_ENV

if TYPE_CHECKING:
    Sub: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

# (command, operation, help, arguments); KEY is the KeyId positional
SIMPLE = [
    ("describe-key", "DescribeKey", "show a key's metadata", ["KEY"]),
    ("enable-key", "EnableKey", "enable a key", ["KEY"]),
    ("disable-key", "DisableKey", "disable a key (crypto operations fail until enabled)", ["KEY"]),
    ("cancel-key-deletion", "CancelKeyDeletion", "cancel a scheduled deletion", ["KEY"]),
    ("disable-key-rotation", "DisableKeyRotation", "turn automatic rotation off", ["KEY"]),
    ("get-key-rotation-status", "GetKeyRotationStatus", "show automatic rotation", ["KEY"]),
    ("rotate-key-on-demand", "RotateKeyOnDemand", "rotate now (old versions kept)", ["KEY"]),
    ("list-key-rotations", "ListKeyRotations", "list a key's rotations", ["KEY"]),
    ("list-resource-tags", "ListResourceTags", "list a key's tags", ["KEY"]),
    ("get-key-policy", "GetKeyPolicy", "print a key's policy", ["KEY"]),
    ("list-keys", "ListKeys", "list keys", []),
    ("delete-alias", "DeleteAlias", "delete an alias", ["ALIAS"]),
    ("create-alias", "CreateAlias", "point a new alias at a key", ["ALIAS", "KEY"]),
    ("update-alias", "UpdateAlias", "point an alias at another key", ["ALIAS", "KEY"]),
]


def add_kms_parser(sub: Sub) -> None:
    p = sub.add_parser(
        "kms",
        help="key management: keystore, KMS server, encrypted TLS keys",
        description="Manage the KMS keystore, serve it with AWS KMS's wire protocol, and "
        "encrypt TLS private keys for the proxy. See docs/kms.md.",
    )
    kms = p.add_subparsers(title="kms commands", metavar="COMMAND")
    _store_commands(kms)
    _key_commands(kms)
    _crypto_commands(kms)
    _migrate_command(kms)
    _principal_commands(kms)
    p.set_defaults(func=_usage(p))


def _usage(parser: argparse.ArgumentParser) -> object:
    def show(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    return show


def _run(name: str) -> object:
    def run(args: argparse.Namespace) -> int:
        from wafproxy.kms import clicommands, cliprincipals

        module = cliprincipals if name.startswith("principal_") else clicommands
        code: int = getattr(module, name)(args)
        return code

    return run


def _root_options(p: argparse.ArgumentParser, prefix: str = "") -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        f"--{prefix}root-key-env",
        metavar="VAR",
        help=f"environment variable holding the root key (default: {DEFAULT_ENV})",
    )
    g.add_argument(
        f"--{prefix}root-key-file",
        type=Path,
        metavar="FILE",
        help="file holding the root key (mode 600)",
    )
    g.add_argument(
        f"--{prefix}passphrase-env",
        metavar="VAR",
        help="environment variable holding a passphrase (scrypt-derived root key)",
    )
    g.add_argument(
        f"--{prefix}passphrase-file",
        type=Path,
        metavar="FILE",
        help="file holding a passphrase (mode 600)",
    )
    g.add_argument(
        f"--{prefix}passphrase-prompt", action="store_true", help="type the passphrase at a prompt"
    )


def _store_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", type=Path, metavar="DIR", help="the keystore directory")
    _root_options(p)


def _client_options(p: argparse.ArgumentParser) -> None:
    _store_options(p)
    p.add_argument(
        "-c",
        "--config",
        type=Path,
        metavar="FILE",
        help="take the KMS backend from this service config's kms: section",
    )
    p.add_argument(
        "--endpoint-url",
        metavar="URL",
        help="use a KMS server (wafproxy kms serve, AWS KMS) instead of a store",
    )
    p.add_argument("--region", help="AWS region with --endpoint-url (default: AWS_DEFAULT_REGION)")


def _store_commands(kms: Sub) -> None:
    p = kms.add_parser(
        "init",
        help="create a keystore",
        description="Create an empty keystore "
        "protected by the root key given (see generate-root-key).",
    )
    _store_options(p)
    p.add_argument(
        "--account", default="111122223333", help="account id in ARNs (default: %(default)s)"
    )
    p.add_argument("--region", default="us-east-1", help="region in ARNs (default: %(default)s)")
    p.set_defaults(func=_run("init"))
    p = kms.add_parser("generate-root-key", help="print (or write) a new random root key")
    p.add_argument("--out", type=Path, metavar="FILE", help="write it to FILE (mode 600)")
    p.set_defaults(func=_run("generate_root_key"))
    p = kms.add_parser(
        "rotate-root-key",
        help="re-encrypt the keystore under a new root key",
        description="Re-seal every key and secret under a new root key.",
    )
    _store_options(p)
    _root_options(p, prefix="new-")
    p.set_defaults(func=_run("rotate_root_key"))
    p = kms.add_parser(
        "serve",
        help="serve the keystore with AWS KMS's JSON protocol",
        description="Serve the keystore over HTTP as AWS KMS does (SigV4-signed "
        "requests from configured principals, X-Amz-Target TrentService.*).",
    )
    _store_options(p)
    p.add_argument(
        "--listen",
        default="127.0.0.1:7000",
        metavar="HOST:PORT",
        help="listen address (default: %(default)s)",
    )
    p.add_argument(
        "--audit-log", type=Path, metavar="FILE", help="audit log (default: STORE/audit.jsonl)"
    )
    p.set_defaults(func=_run("serve"))


def _key_commands(kms: Sub) -> None:
    p = kms.add_parser("create-key", help="create a symmetric key (AES-256-GCM)")
    _client_options(p)
    p.add_argument("--description", default="")
    p.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--policy", type=Path, metavar="FILE", help="key policy JSON")
    p.add_argument("--bypass-policy-lockout-safety-check", action="store_true")
    p.set_defaults(func=_run("create_key"))
    for command, operation, text, positionals in SIMPLE:
        p = kms.add_parser(command, help=text)
        _client_options(p)
        for name in positionals:
            p.add_argument(name.lower(), metavar=name)
        p.set_defaults(func=_run("simple"), operation=operation)
    p = kms.add_parser("schedule-key-deletion", help="delete a key after 7-30 days")
    _client_options(p)
    p.add_argument("key", metavar="KEY")
    p.add_argument("--pending-window-in-days", type=int, default=30)
    p.set_defaults(func=_run("schedule_key_deletion"))
    p = kms.add_parser("enable-key-rotation", help="rotate automatically every N days")
    _client_options(p)
    p.add_argument("key", metavar="KEY")
    p.add_argument("--rotation-period-in-days", type=int, default=365)
    p.set_defaults(func=_run("enable_key_rotation"))
    p = kms.add_parser("list-aliases", help="list aliases")
    _client_options(p)
    p.add_argument("--key-id", metavar="KEY", help="only the aliases of this key")
    p.set_defaults(func=_run("list_aliases"))
    p = kms.add_parser("tag-resource", help="add or change tags")
    _client_options(p)
    p.add_argument("key", metavar="KEY")
    p.add_argument("tags", nargs="+", metavar="KEY=VALUE")
    p.set_defaults(func=_run("tag_resource"))
    p = kms.add_parser("untag-resource", help="remove tags")
    _client_options(p)
    p.add_argument("key", metavar="KEY")
    p.add_argument("tag_keys", nargs="+", metavar="TAGKEY")
    p.set_defaults(func=_run("untag_resource"))
    p = kms.add_parser("put-key-policy", help="replace a key's policy")
    _client_options(p)
    p.add_argument("key", metavar="KEY")
    p.add_argument("--policy", type=Path, required=True, metavar="FILE")
    p.add_argument("--bypass-policy-lockout-safety-check", action="store_true")
    p.set_defaults(func=_run("put_key_policy"))


def _crypto_commands(kms: Sub) -> None:
    p = kms.add_parser("encrypt", help="encrypt up to 4 KiB; prints the base64 ciphertext blob")
    _client_options(p)
    p.add_argument("--key-id", required=True, metavar="KEY")
    p.add_argument(
        "--in", dest="input", type=Path, required=True, metavar="FILE", help="'-': stdin"
    )
    p.add_argument("--context", action="append", default=[], metavar="NAME=VALUE")
    p.set_defaults(func=_run("encrypt"))
    p = kms.add_parser("decrypt", help="decrypt a base64 ciphertext blob to stdout")
    _client_options(p)
    p.add_argument(
        "--in", dest="input", type=Path, required=True, metavar="FILE", help="'-': stdin"
    )
    p.add_argument("--context", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--key-id", metavar="KEY", help="refuse ciphertext made under another key")
    p.set_defaults(func=_run("decrypt"))
    p = kms.add_parser("generate-random", help="print N random bytes (base64)")
    _client_options(p)
    p.add_argument("count", type=int, metavar="N")
    p.set_defaults(func=_run("generate_random"))
    p = kms.add_parser(
        "encrypt-tls-key",
        help="envelope-encrypt a TLS private key for a listener",
        description="Encrypt a PEM private key with a fresh data key from KMS (encryption "
        "context: purpose=tls, listener=NAME) for a listener's tls.certificates[].key. Read the "
        "plaintext from stdin ('-') to keep it off disk.",
    )
    _client_options(p)
    p.add_argument("--key", required=True, metavar="KEY", help="KMS key id, ARN or alias")
    p.add_argument(
        "--in", dest="input", type=Path, required=True, metavar="FILE", help="'-': stdin"
    )
    p.add_argument("--out", type=Path, required=True, metavar="FILE")
    p.add_argument(
        "--listener",
        required=True,
        metavar="NAME",
        help="the listener's tls.name, or its listen address",
    )
    p.set_defaults(func=_run("encrypt_tls_key"))


def _migrate_command(kms: Sub) -> None:
    p = kms.add_parser(
        "rewrap-tls-key",
        help="re-encrypt a TLS key file under another KMS (e.g. the keystore -> AWS KMS)",
        description="Open an envelope-encrypted key file with the source KMS (the usual --store / "
        "-c / --endpoint-url options) and seal it again under --key of the target KMS (--to-config "
        "or --to-region/--to-endpoint-url), in memory only. The encryption context is kept.",
    )
    _client_options(p)
    p.add_argument("--in", dest="input", type=Path, required=True, metavar="FILE")
    p.add_argument("--out", type=Path, required=True, metavar="FILE")
    p.add_argument("--key", required=True, metavar="KEY", help="the target KMS key")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--to-config", type=Path, metavar="FILE", help="the target's kms: section")
    target.add_argument("--to-region", metavar="REGION", help="AWS KMS in this region")
    p.add_argument("--to-endpoint-url", metavar="URL", help="with --to-region: another endpoint")
    p.set_defaults(func=_run("rewrap_tls_key"))


def _principal_commands(kms: Sub) -> None:
    p = kms.add_parser("principals", help="manage the KMS server's callers")
    sub = p.add_subparsers(title="principal commands", metavar="COMMAND")
    p.set_defaults(func=_usage(p))
    c = sub.add_parser("create", help="create a principal; prints its access key pair once")
    _store_options(c)
    c.add_argument("name", metavar="NAME")
    c.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="ACTION",
        help="an action it may call where key policies delegate (kms:Encrypt, "
        "kms:Generate*, kms:*); repeatable",
    )
    c.set_defaults(func=_run("principal_create"))
    for name, text in [
        ("list", "list principals (no secrets)"),
        ("delete", "delete one"),
        ("rotate-credentials", "issue a new access key pair"),
    ]:
        c = sub.add_parser(name, help=text)
        _store_options(c)
        if name != "list":
            c.add_argument("name", metavar="NAME")
        c.set_defaults(func=_run("principal_" + name.replace("-", "_")))
    c = sub.add_parser("set-actions", help="replace a principal's allowed actions")
    _store_options(c)
    c.add_argument("name", metavar="NAME")
    c.add_argument("--allow", action="append", default=[], metavar="ACTION")
    c.set_defaults(func=_run("principal_set_actions"))
