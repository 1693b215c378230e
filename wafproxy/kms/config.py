"""The ``kms:`` section of the service config and the ``tls:`` block of a listener.

Kept here, beside the code that uses them, so the config loader only calls two parse functions.
Example::

    kms:
      backend: local                 # or aws
      store: /var/lib/wafproxy/kms   # local: the keystore directory
      root_key: {env: WAFPROXY_KMS_ROOT_KEY}   # or file, passphrase_env, passphrase_file
    listeners:
      - listen: 0.0.0.0:8443
        tls:
          certificates:
            - {cert: shop.pem, key: shop.key.enc, server_names: [shop.example, "*.shop.example"]}
          kms_key: alias/tls
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

from wafproxy.config.source import Node
from wafproxy.kms.rootkey import RootKeySource, RootKind

TLS_VERSIONS = ("1.2", "1.3")


class BackendKind(enum.Enum):
    LOCAL = "local"
    AWS = "aws"


@dataclass(frozen=True)
class AwsCredentials:
    profile: str | None = None
    access_key_id_env: str | None = None
    secret_access_key_env: str | None = None


@dataclass(frozen=True)
class KmsConfig:
    backend: BackendKind = BackendKind.LOCAL
    store: Path | None = None
    root_key: RootKeySource = field(default_factory=RootKeySource.default)
    audit_log: Path | None = None
    """Local backend: where the proxy's KMS calls are audited (default: STORE/audit.jsonl)."""
    principal: str | None = None
    """Local backend: act as this principal (policies apply) instead of the account root."""
    region: str | None = None
    endpoint: str | None = None
    credentials: AwsCredentials = AwsCredentials()


@dataclass(frozen=True)
class CertificateConfig:
    cert: Path
    """The certificate chain (PEM), leaf first."""
    key: Path
    """The private key as an envelope-encrypted file (``wafproxy kms encrypt-tls-key``)."""
    server_names: tuple[str, ...] = ()
    """SNI names this pair answers (exact or ``*.example.com``); the first pair is the default."""


@dataclass(frozen=True)
class TlsConfig:
    listener: str
    """The name in the keys' encryption context (``listener``); default: the listen address."""
    certificates: tuple[CertificateConfig, ...]
    kms_key: str | None = None
    """When set, a key file encrypted under any other KMS key is refused."""
    min_version: str = "1.2"

    def files(self) -> tuple[Path, ...]:
        return tuple(p for c in self.certificates for p in (c.cert, c.key))


def parse_kms(node: Node, base: Path) -> KmsConfig:
    opts = node.fields(
        ["backend"],
        ["store", "root_key", "audit_log", "principal", "region", "endpoint", "credentials"],
    )
    backend = BackendKind(opts["backend"].one_of([b.value for b in BackendKind]))
    if backend is BackendKind.LOCAL:
        for key in ("region", "endpoint", "credentials"):
            if key in opts:
                raise opts[key].error("only for backend: aws")
        if "store" not in opts:
            raise node.error("backend local needs store: (the keystore directory)")
    elif any(k in opts for k in ("store", "root_key", "audit_log", "principal")):
        key = next(k for k in ("store", "root_key", "audit_log", "principal") if k in opts)
        raise opts[key].error("only for backend: local")
    return KmsConfig(
        backend=backend,
        store=base / opts["store"].str() if "store" in opts else None,
        root_key=_root_key(opts["root_key"], base)
        if "root_key" in opts
        else RootKeySource.default(),
        audit_log=base / opts["audit_log"].str() if "audit_log" in opts else None,
        principal=opts["principal"].str() if "principal" in opts else None,
        region=opts["region"].str() if "region" in opts else None,
        endpoint=_endpoint(opts["endpoint"]) if "endpoint" in opts else None,
        credentials=_credentials(opts["credentials"])
        if "credentials" in opts
        else AwsCredentials(),
    )


def _root_key(node: Node, base: Path) -> RootKeySource:
    kinds = [RootKind.ENV, RootKind.FILE, RootKind.PASSPHRASE_ENV, RootKind.PASSPHRASE_FILE]
    name, child = node.single_key("root key source: env, file, passphrase_env or passphrase_file")
    if name not in [k.value for k in kinds]:
        raise node.expected("one of env, file, passphrase_env, passphrase_file")
    kind = RootKind(name)
    value = child.str()
    if kind in (RootKind.FILE, RootKind.PASSPHRASE_FILE):
        value = str(base / value)
    return RootKeySource(kind, value)


def _endpoint(node: Node) -> str:
    text = node.str().strip()
    if not text.startswith(("http://", "https://")):
        raise node.expected("a URL like https://kms.us-east-1.amazonaws.com")
    return text


def _credentials(node: Node) -> AwsCredentials:
    opts = node.fields(optional=["profile", "access_key_id_env", "secret_access_key_env"])
    pair = ("access_key_id_env" in opts, "secret_access_key_env" in opts)
    if pair[0] != pair[1]:
        raise node.error("set both access_key_id_env and secret_access_key_env")
    if "profile" in opts and pair[0]:
        raise node.error("set profile or the *_env pair, not both")
    return AwsCredentials(
        profile=opts["profile"].str() if "profile" in opts else None,
        access_key_id_env=opts["access_key_id_env"].str() if pair[0] else None,
        secret_access_key_env=opts["secret_access_key_env"].str() if pair[1] else None,
    )


def parse_tls(node: Node, base: Path, listen_text: str) -> TlsConfig:
    opts = node.fields(["certificates"], ["kms_key", "name", "min_version"])
    items = opts["certificates"].seq()
    if not items:
        raise opts["certificates"].error("at least one certificate is required")
    return TlsConfig(
        listener=opts["name"].str() if "name" in opts else listen_text,
        certificates=tuple(_certificate(item, base) for item in items),
        kms_key=opts["kms_key"].str() if "kms_key" in opts else None,
        min_version=opts["min_version"].one_of(TLS_VERSIONS) if "min_version" in opts else "1.2",
    )


def _certificate(node: Node, base: Path) -> CertificateConfig:
    opts = node.fields(["cert", "key"], ["server_names"])
    names = (
        tuple(n.lower() for n in opts["server_names"].str_list()) if "server_names" in opts else ()
    )
    for name in names:
        bare = name[2:] if name.startswith("*.") else name
        if not bare or "*" in bare or ":" in bare or "/" in bare:
            raise opts["server_names"].expected("host names like shop.example or *.shop.example")
    return CertificateConfig(base / opts["cert"].str(), base / opts["key"].str(), names)
