"""TLS listeners whose private keys exist only as KMS envelope-encrypted files.

At start every listener's key files are decrypted through the key service (one audited KMS
Decrypt each, encryption context ``{"purpose": "tls", "listener": NAME}``) and turned into
``SSLContext`` objects in memory (tlscontext.py). The context a listener's socket was created
with only dispatches: its ``sni_callback`` hands each new handshake the context of the
certificate matching the client's server name (exact, then ``*.`` wildcard, else the first
certificate). Rotating certificates is replacing the files: a poll (or ``reload()``) notices,
loads the new pairs completely, then swaps the table the callback reads -- new handshakes get
the new pair, established connections are untouched. A load that fails (a disabled or deleted
KMS key, a key that does not match its certificate) keeps the previous pairs and logs why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wafproxy.errors import WafProxyError
from wafproxy.kms.backends import KeyService
from wafproxy.kms.config import CertificateConfig, TlsConfig
from wafproxy.kms.envelope import Envelope, EnvelopeError, open_envelope
from wafproxy.kms.errors import KmsError
from wafproxy.kms.tlscontext import TlsKeyError, base_context, server_context

log = logging.getLogger("wafproxy.tls")
POLL_SECONDS = 1.0
PURPOSE = "tls"


class TlsLoadError(WafProxyError):
    pass


def tls_context(listener: str) -> dict[str, str]:
    """The encryption context of a listener's key files."""
    return {"purpose": PURPOSE, "listener": listener}


@dataclass(frozen=True)
class CertificateSet:
    """The contexts of one listener, by server name; ``default`` answers everything else."""

    default: ssl.SSLContext
    exact: Mapping[str, ssl.SSLContext]
    wildcard: Mapping[str, ssl.SSLContext]
    """``example.com`` for ``*.example.com``."""

    def select(self, server_name: str | None) -> ssl.SSLContext:
        if not server_name:
            return self.default
        name = server_name.lower().rstrip(".")
        found = self.exact.get(name)
        if found is None and "." in name:
            found = self.wildcard.get(name.split(".", 1)[1])
        return found or self.default


async def load_key(service: KeyService, config: TlsConfig, path: Path) -> bytes:
    """The plaintext PEM of one key file, checked to be meant for this listener."""
    where = str(path)
    try:
        raw = await asyncio.to_thread(path.read_bytes)
    except OSError as exc:
        raise TlsLoadError(f"cannot read {path}: {exc.strerror or exc}") from None
    envelope = Envelope.loads(raw, where)
    expected = tls_context(config.listener)
    if dict(envelope.context) != expected:
        raise TlsLoadError(
            f"{path} was encrypted for {dict(envelope.context)}, not for {expected} "
            f"(re-run `wafproxy kms encrypt-tls-key --listener {config.listener}`)"
        )
    return await open_envelope(service, envelope, where, config.kms_key)


async def load_certificates(service: KeyService, config: TlsConfig) -> CertificateSet:
    contexts = []
    for cert in config.certificates:
        contexts.append((cert, await _load_pair(service, config, cert)))
    exact: dict[str, ssl.SSLContext] = {}
    wildcard: dict[str, ssl.SSLContext] = {}
    for cert, context in contexts:
        for name in cert.server_names:
            if name.startswith("*."):
                wildcard.setdefault(name[2:], context)
            else:
                exact.setdefault(name, context)
    return CertificateSet(contexts[0][1], exact, wildcard)


async def _load_pair(
    service: KeyService, config: TlsConfig, cert: CertificateConfig
) -> ssl.SSLContext:
    try:
        pem = await load_key(service, config, cert.key)
        return await asyncio.to_thread(server_context, cert.cert, pem, config.min_version)
    except KmsError as exc:
        raise TlsLoadError(
            f"TLS listener {config.listener!r}: KMS refused to decrypt {cert.key}: "
            f"{exc.code}: {exc.message}"
        ) from None
    except (EnvelopeError, TlsKeyError, TlsLoadError) as exc:
        raise TlsLoadError(f"TLS listener {config.listener!r}: {exc}") from None


Signature = tuple[tuple[str, int, int, int], ...]


def files_signature(paths: Sequence[Path]) -> Signature:
    out = []
    for path in paths:
        try:
            st = path.stat()
            out.append((str(path), st.st_ino, st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((str(path), -1, -1, -1))
    return tuple(out)


class TlsListener:
    """One listener: the dispatching context for its socket and the swappable certificates."""

    def __init__(self, config: TlsConfig, service: KeyService) -> None:
        self.config = config
        self.service = service
        self.certificates: CertificateSet | None = None
        self.context = base_context(config.min_version)
        self.context.sni_callback = self._on_sni
        self._seen = files_signature(config.files())
        self.loads = 0
        self.failures = 0
        self.last_error: str | None = None

    def _on_sni(
        self, sslobj: ssl.SSLObject | ssl.SSLSocket, name: str | None, _: ssl.SSLContext
    ) -> None:
        if self.certificates is not None:
            sslobj.context = self.certificates.select(name)

    async def load(self) -> None:
        """Raises TlsLoadError; the previous certificates stay in place when it does."""
        self._seen = files_signature(self.config.files())
        try:
            certificates = await load_certificates(self.service, self.config)
        except TlsLoadError as exc:
            self.failures += 1
            self.last_error = str(exc)
            raise
        if self.certificates is None:  # a client sending no SNI still needs a certificate
            self.context = _with_default(self.config, certificates.default, self._on_sni)
        self.certificates = certificates
        self.loads += 1
        self.last_error = None

    def changed(self) -> bool:
        return files_signature(self.config.files()) != self._seen


def _with_default(config: TlsConfig, default: ssl.SSLContext, callback: object) -> ssl.SSLContext:
    """The dispatching context: the default pair's context itself, with the SNI callback."""
    default.sni_callback = callback  # type: ignore[assignment]
    return default


class TlsManager:
    """All TLS listeners of a proxy: load at start, reload on file change, close at stop."""

    def __init__(self, configs: Mapping[Any, TlsConfig], service: KeyService) -> None:
        self.service = service
        self.listeners = {address: TlsListener(c, service) for address, c in configs.items()}
        self._watch: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def start(self, watch: bool = True, interval: float = POLL_SECONDS) -> None:
        for listener in self.listeners.values():
            await listener.load()
        if watch:
            self._watch = asyncio.ensure_future(self._poll(interval))

    def context_for(self, address: object) -> ssl.SSLContext | None:
        listener = self.listeners.get(address)
        return listener.context if listener is not None else None

    async def reload(self, force: bool = False) -> bool:
        """Reload listeners whose files changed (all with ``force``). True if all went well."""
        ok = True
        async with self._lock:
            for listener in self.listeners.values():
                if not (force or listener.changed()):
                    continue
                try:
                    await listener.load()
                    log.info("TLS listener %r: certificates reloaded", listener.config.listener)
                except TlsLoadError as exc:
                    ok = False
                    log.error("%s; still serving the previous certificates", exc)
        return ok

    async def _poll(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.reload()

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        await self.service.close()


async def start_tls(
    listener_tls: Mapping[Any, TlsConfig], kms: object, *, watch: bool = True
) -> TlsManager | None:
    """The proxy's TLS listeners, loaded (None when it has none). Raises WafProxyError."""
    if not listener_tls:
        return None
    from wafproxy.kms.backends import build_backend
    from wafproxy.kms.config import KmsConfig

    if not isinstance(kms, KmsConfig):
        raise TlsLoadError("TLS listeners need a kms: section")
    service = await asyncio.to_thread(build_backend, kms)
    manager = TlsManager(listener_tls, service)
    try:
        await manager.start(watch=watch)
    except BaseException:
        await manager.close()
        raise
    return manager
