"""Verifying AWS Signature Version 4 (header form), as AWS's front door does.

The server recomputes the canonical request from what it received -- method, path, query,
the headers the client listed in SignedHeaders, and the SHA-256 of the body it actually read --
derives the signing key from the principal's secret, and compares signatures in constant time.
A timestamp more than five minutes from the server's clock is refused (AWS's window), which is
what stops a captured request from being replayed later. Within the window AWS accepts repeats,
and so does this (SDKs legitimately send identical requests within one second).
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote

from wafproxy.kms.errors import (
    INCOMPLETE_SIGNATURE,
    INVALID_SIGNATURE,
    MISSING_AUTH,
    UNRECOGNIZED_CLIENT,
    KmsError,
)

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW_SECONDS = 300
DATE_FORMAT = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class SignedRequest:
    method: str
    path: str
    """The path as sent, still percent-encoded, without the query."""
    query: str
    headers: Sequence[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]


@dataclass(frozen=True)
class Credential:
    access_key_id: str
    date: str
    region: str
    service: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


@dataclass(frozen=True)
class Authorization:
    credential: Credential
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(value: str) -> Authorization:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise KmsError(INCOMPLETE_SIGNATURE, f"Unsupported authorization algorithm {algorithm!r}")
    parts = {}
    for item in rest.split(","):
        name, eq, text = item.strip().partition("=")
        if eq:
            parts[name] = text
    missing = [n for n in ("Credential", "SignedHeaders", "Signature") if n not in parts]
    if missing:
        raise KmsError(
            INCOMPLETE_SIGNATURE,
            f"Authorization header requires '{missing[0]}' parameter. Authorization={value}",
        )
    fields = parts["Credential"].split("/")
    if len(fields) != 5 or fields[4] != "aws4_request":
        raise KmsError(
            INCOMPLETE_SIGNATURE, "Credential must have exactly five slash-separated parts"
        )
    credential = Credential(fields[0], fields[1], fields[2], fields[3])
    signed = tuple(h.lower() for h in parts["SignedHeaders"].split(";") if h)
    return Authorization(credential, signed, parts["Signature"].lower())


def verify(
    request: SignedRequest,
    secret_for: Callable[[str], str | None],
    *,
    region: str,
    service: str = "kms",
    now: float | None = None,
) -> str:
    """The access key id of a correctly signed request; KmsError (AWS's codes) otherwise."""
    values = request.header("authorization")
    if not values:
        raise KmsError(MISSING_AUTH, "Missing Authentication Token")
    auth = parse_authorization(values[0])
    amz_date = _request_date(request)
    _check_scope(auth.credential, amz_date, region, service)
    _check_clock(amz_date, time.time() if now is None else now)
    if "host" not in auth.signed_headers:
        raise KmsError(
            INVALID_SIGNATURE, "'Host' must be a 'SignedHeader' in the AWS Authorization."
        )
    if request.header("x-amz-security-token"):
        raise KmsError(
            UNRECOGNIZED_CLIENT, "The security token included in the request is invalid."
        )
    secret = secret_for(auth.credential.access_key_id)
    if secret is None:
        raise KmsError(
            UNRECOGNIZED_CLIENT, "The security token included in the request is invalid."
        )
    expected = signature(request, auth, amz_date, secret)
    if not hmac.compare_digest(expected, auth.signature):
        raise KmsError(
            INVALID_SIGNATURE,
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. Consult the service "
            "documentation for details.",
        )
    return auth.credential.access_key_id


def _request_date(request: SignedRequest) -> str:
    values = request.header("x-amz-date")
    if not values:
        raise KmsError(
            INCOMPLETE_SIGNATURE, "Authorization header requires existence of X-Amz-Date header."
        )
    return values[0].strip()


def _check_scope(credential: Credential, amz_date: str, region: str, service: str) -> None:
    if credential.date != amz_date[:8]:
        raise KmsError(
            INVALID_SIGNATURE,
            f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{credential.date}' != '{amz_date[:8]}', from '{amz_date}'.",
        )
    if credential.service != service:
        raise KmsError(
            INVALID_SIGNATURE, f"Credential should be scoped to correct service: '{service}'."
        )
    if credential.region != region:
        raise KmsError(
            INVALID_SIGNATURE,
            f"Credential should be scoped to a valid region, not '{credential.region}'; "
            f"this endpoint serves '{region}'.",
        )


def _check_clock(amz_date: str, now: float) -> None:
    try:
        when = calendar.timegm(time.strptime(amz_date, DATE_FORMAT))
    except ValueError:
        raise KmsError(INCOMPLETE_SIGNATURE, f"Invalid X-Amz-Date {amz_date!r}") from None
    if when < now - MAX_SKEW_SECONDS:
        earliest = time.strftime(DATE_FORMAT, time.gmtime(now - MAX_SKEW_SECONDS))
        current = time.strftime(DATE_FORMAT, time.gmtime(now))
        raise KmsError(
            INVALID_SIGNATURE,
            f"Signature expired: {amz_date} is now earlier than {earliest} ({current} - 5 min.)",
        )
    if when > now + MAX_SKEW_SECONDS:
        latest = time.strftime(DATE_FORMAT, time.gmtime(now + MAX_SKEW_SECONDS))
        current = time.strftime(DATE_FORMAT, time.gmtime(now))
        raise KmsError(
            INVALID_SIGNATURE,
            f"Signature not yet current: {amz_date} is still later than {latest} "
            f"({current} + 5 min.)",
        )


def signature(request: SignedRequest, auth: Authorization, amz_date: str, secret: str) -> str:
    canonical = canonical_request(request, auth.signed_headers)
    to_sign = "\n".join(
        [ALGORITHM, amz_date, auth.credential.scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = signing_key(secret, auth.credential)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def signing_key(secret: str, credential: Credential) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (credential.date, credential.region, credential.service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def canonical_request(request: SignedRequest, signed_headers: Sequence[str]) -> str:
    headers = "".join(f"{name}:{_header_value(request, name)}\n" for name in signed_headers)
    return "\n".join(
        [
            request.method.upper(),
            _canonical_uri(request.path),
            _canonical_query(request.query),
            headers,
            ";".join(signed_headers),
            hashlib.sha256(request.body).hexdigest(),
        ]
    )


def _header_value(request: SignedRequest, name: str) -> str:
    return ",".join(" ".join(v.split()) for v in request.header(name))


def _canonical_uri(path: str) -> str:
    return quote(unquote(path or "/"), safe="/~")


def _canonical_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    encoded = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)
