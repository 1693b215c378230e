"""TLS of an https upstream: protocol versions, weak ciphers, the certificate."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import warnings

from cryptography import x509

from wafproxy.findings.model import Finding
from wafproxy.scan.client import TlsInfo
from wafproxy.scan.registry import Scope, check
from wafproxy.scan.target import ScanTarget

TLS = "TLS_CONFIGURATION"
OLD_PROTOCOLS = (
    (ssl.TLSVersion.TLSv1, "TLSv1.0", 5.0),
    (ssl.TLSVersion.TLSv1_1, "TLSv1.1", 4.5),
)
WEAK_CIPHERS = "NULL:eNULL:aNULL:EXPORT:LOW:RC4:DES:3DES:MD5:@SECLEVEL=0"
WEAK_NAMES = ("NULL", "EXP", "RC4", "DES", "MD5", "ADH", "AECDH", "ANON")
NO_CHECK_TIME = 0x200000
"""X509_V_FLAG_NO_CHECK_TIME: judge trust apart from expiry (expiry is reported on its own)."""
EXPIRY_WARNING_DAYS = 30


def _insecure_context(
    version: ssl.TLSVersion | None = None, ciphers: str | None = None
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if version is not None:
        with warnings.catch_warnings():  # old versions are what this check looks for
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = version
            context.maximum_version = version
    if ciphers is not None:  # cipher strings only govern TLS 1.2 and below
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    if ciphers is not None or version is not None:
        context.set_ciphers(ciphers or "ALL:@SECLEVEL=0")
    return context


@check("tls", scope=Scope.HOST)
async def tls(target: ScanTarget) -> list[Finding]:
    """TLS protocol versions, cipher suites and the certificate of an https upstream.

    Looks for: TLS 1.0 / 1.1 still accepted, weak cipher suites accepted (NULL, export, RC4,
    DES/3DES, MD5; as far as the local OpenSSL can still offer them), a certificate that has
    expired, expires within 30 days or is not yet valid, a certificate whose names do not
    cover the host, and a certificate not trusted by the system store (or the configured
    ``tls_ca_file``). Only for ``https://`` targets.
    Why it matters: old protocols and weak ciphers allow downgrade and decryption attacks; a
    wrong, expired or untrusted certificate teaches clients to ignore warnings or breaks
    them, and makes interception easy.
    How to fix: accept TLS 1.2 and 1.3 only with modern AEAD cipher suites (Mozilla's
    "intermediate" configuration), renew certificates automatically well before expiry, and
    issue them for every name the service is reached by.
    """
    endpoint = target.endpoint
    if endpoint.scheme != "https":
        return []
    host, port = endpoint.host, endpoint.port
    server_name = None if _is_ip(host) else host
    info = await target.client.tls_handshake(host, port, _insecure_context(), server_name)
    if info is None:
        return []
    found = [f for f in [await _protocol(target, v, n, s) for v, n, s in OLD_PROTOCOLS] if f]
    weak = await target.client.tls_handshake(
        host, port, _insecure_context(ciphers=WEAK_CIPHERS), server_name
    )
    if weak is not None and any(w in weak.cipher.upper() for w in WEAK_NAMES):
        found.append(_weak_cipher(target, weak))
    if info.certificate:
        found.extend(_certificate(target, x509.load_der_x509_certificate(info.certificate)))
    trust = await _trust_problem(target, server_name)
    if trust is not None:
        found.append(trust)
    return found


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def _protocol(
    target: ScanTarget, version: ssl.TLSVersion, name: str, severity: float
) -> Finding | None:
    endpoint = target.endpoint
    try:
        context = _insecure_context(version)
    except (ssl.SSLError, ValueError):  # this OpenSSL cannot speak it at all: untestable
        return None
    host = endpoint.host
    info = await target.client.tls_handshake(host, endpoint.port, context, None)
    if info is None:
        return None
    return target.finding(
        check="tls",
        type=TLS,
        subject=f"tls:protocol:{name}",
        title=f"{name} accepted",
        description=f"{endpoint.base_url} completes a {name} handshake ({info.cipher}).",
        severity=severity,
        remediation="Accept TLS 1.2 and 1.3 only (nginx ssl_protocols TLSv1.2 TLSv1.3; Apache "
        "SSLProtocol -all +TLSv1.2 +TLSv1.3).",
        evidence=[f"handshake {info.version} {info.cipher}"],
        details={"protocol": name, "cipher": info.cipher},
    )


def _weak_cipher(target: ScanTarget, info: TlsInfo) -> Finding:
    return target.finding(
        check="tls",
        type=TLS,
        subject="tls:weak-ciphers",
        title=f"Weak cipher suite accepted ({info.cipher})",
        description=f"{target.endpoint.base_url} accepted a handshake offering only weak "
        f"cipher suites and chose {info.cipher} ({info.version}).",
        severity=7.4,
        remediation="Offer only AEAD suites (AES-GCM, ChaCha20-Poly1305) with forward secrecy; "
        "Mozilla's intermediate configuration is a good default.",
        evidence=[f"handshake {info.version} {info.cipher}"],
        details={"cipher": info.cipher, "protocol": info.version},
    )


def _certificate(target: ScanTarget, cert: x509.Certificate) -> list[Finding]:
    found: list[Finding] = []
    now = datetime.datetime.now(datetime.UTC)
    not_after = cert.not_valid_after_utc
    not_before = cert.not_valid_before_utc
    days = (not_after - now).total_seconds() / 86400
    base: dict[str, object] = {
        "not_before": not_before.isoformat(),
        "not_after": not_after.isoformat(),
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
    }
    if days < 0 or now < not_before:
        state = "has expired" if days < 0 else "is not valid yet"
        found.append(
            _cert_finding(
                target,
                "tls:certificate:validity",
                f"Certificate {state}",
                7.5,
                base,
                "Renew the certificate (automate it, e.g. ACME).",
            )
        )
    elif days < EXPIRY_WARNING_DAYS:
        severity = 7.0 if days < 7 else 4.5
        found.append(
            _cert_finding(
                target,
                "tls:certificate:validity",
                f"Certificate expires in {int(days)} days",
                severity,
                base,
                "Renew now and automate renewal well before expiry.",
            )
        )
    names = _names(cert)
    if not _covers(names, target.endpoint.host):
        found.append(
            _cert_finding(
                target,
                "tls:certificate:name",
                f"Certificate does not cover {target.endpoint.host}",
                7.0,
                {**base, "names": names},
                "Issue the certificate for every name (and address) clients use to reach the "
                "service.",
            )
        )
    return found


def _cert_finding(
    target: ScanTarget,
    subject: str,
    title: str,
    severity: float,
    details: dict[str, object],
    fix: str,
) -> Finding:
    return target.finding(
        check="tls",
        type=TLS,
        subject=subject,
        title=title,
        description=f"{title}: certificate of {target.endpoint.base_url} "
        f"({details['subject']}, valid {details['not_before']} to {details['not_after']}).",
        severity=severity,
        remediation=fix,
        evidence=[f"certificate {details['subject']} issued by {details['issuer']}"],
        details=details,
    )


def _names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        common = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        return [str(c.value) for c in common]
    dns = [str(n) for n in san.get_values_for_type(x509.DNSName)]
    ips = [str(a) for a in san.get_values_for_type(x509.IPAddress)]
    return dns + ips


def _covers(names: list[str], host: str) -> bool:
    host = host.lower().rstrip(".")
    for name in (n.lower().rstrip(".") for n in names):
        if name == host:
            return True
        if name.startswith("*.") and not _is_ip(host):
            label, _, rest = host.partition(".")
            if label and rest == name[2:]:
                return True
    return False


async def _trust_problem(target: ScanTarget, server_name: str | None) -> Finding | None:
    context = ssl.create_default_context()
    ca_file = target.options.get("tls_ca_file")
    if ca_file:
        context.load_verify_locations(cafile=str(ca_file))
    context.check_hostname = False  # the name is judged on its own (above)
    context.verify_flags |= NO_CHECK_TIME
    endpoint = target.endpoint
    try:
        await target.client.tls_handshake(endpoint.host, endpoint.port, context, server_name)
    except ssl.SSLCertVerificationError as exc:
        return target.finding(
            check="tls",
            type=TLS,
            subject="tls:certificate:trust",
            title="Certificate not trusted",
            description=f"The certificate chain of {endpoint.base_url} does not verify: "
            f"{exc.verify_message}.",
            severity=6.0,
            remediation="Use a certificate from a CA the clients trust and send the full "
            "chain (leaf and intermediates).",
            evidence=[f"verify error {exc.verify_code}: {exc.verify_message}"],
            details={"verify_code": exc.verify_code, "verify_message": exc.verify_message},
        )
    return None
