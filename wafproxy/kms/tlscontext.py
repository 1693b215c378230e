"""An ``ssl.SSLContext`` from a certificate chain file and a private key held only in memory.

``SSLContext.load_cert_chain`` reads the key from a path. The plaintext key is never given one:
it is re-encrypted in memory (PKCS#8, AES-256) under a random one-time password, that encrypted
PEM is written to an anonymous in-memory file (``memfd_create``; read through
``/proc/self/fd/N``) and OpenSSL is handed the path and the password. The memfd is closed
straight after. So the plaintext key is never in any file, and the only file-like thing that
ever exists holds ciphertext whose password lived in this process alone. Where ``memfd_create``
does not exist (not Linux) the encrypted PEM goes to a private temporary directory instead and
is removed at once -- still only ciphertext on disk.

TLS settings: TLS 1.2 minimum (1.3 optional), ECDHE with AES-GCM or ChaCha20-Poly1305 for 1.2
(OpenSSL's TLS 1.3 suites are all AEAD), no renegotiation, server cipher preference, ALPN
``http/1.1``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from wafproxy.errors import WafProxyError

TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!DSS:!SHA1"
ALPN = ["http/1.1"]


class TlsKeyError(WafProxyError):
    pass


def server_context(cert_chain: Path, key_pem: bytes, min_version: str = "1.2") -> ssl.SSLContext:
    """A server context for one certificate chain and its key (PEM bytes, unencrypted)."""
    context = base_context(min_version)
    password = secrets.token_bytes(32)
    sealed = _reencrypt(key_pem, password)
    with _memory_file(sealed) as key_path:
        try:
            context.load_cert_chain(str(cert_chain), key_path, password=password)
        except ssl.SSLError as exc:
            raise TlsKeyError(
                f"{cert_chain}: certificate and key do not load together: {exc}"
            ) from None
        except OSError as exc:
            raise TlsKeyError(f"cannot read {cert_chain}: {exc.strerror or exc}") from None
    return context


def base_context(min_version: str = "1.2") -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if min_version == "1.3" else ssl.TLSVersion.TLSv1_2
    )
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    context.set_alpn_protocols(ALPN)
    return context


def _reencrypt(key_pem: bytes, password: bytes) -> bytes:
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise TlsKeyError(
            f"the decrypted key is not an unencrypted PEM private key: {exc}"
        ) from None
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )


@contextlib.contextmanager
def _memory_file(data: bytes) -> Iterator[str]:
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is None:  # pragma: no cover - not Linux
        with _private_temp_file(data) as path:
            yield path
        return
    fd = memfd_create("wafproxy-tls-key", getattr(os, "MFD_CLOEXEC", 0))
    try:
        os.write(fd, data)
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)


@contextlib.contextmanager
def _private_temp_file(data: bytes) -> Iterator[str]:  # pragma: no cover - not Linux
    directory = tempfile.mkdtemp(prefix="wafproxy-tls-")
    try:
        path = os.path.join(directory, "key.pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        yield path
    finally:
        shutil.rmtree(directory, ignore_errors=True)
