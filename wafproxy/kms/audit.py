"""The audit trail: one CloudTrail-like JSON event per KMS call, success or failure, appended to a
JSON-lines file.

Each event is written with a single ``write`` on a descriptor opened ``O_APPEND``, so events from
several processes sharing the file never interleave. Events carry key ids, aliases, the
encryption context (which is not secret: AWS logs it too), the caller and the outcome -- never
plaintext, key material, data keys or ciphertext.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wafproxy.kms.fsutil import PRIVATE_FILE
from wafproxy.kms.policy import Caller

EVENT_VERSION = "1.08"
READ_ONLY = frozenset(
    {
        "DescribeKey",
        "ListKeys",
        "ListAliases",
        "GetKeyRotationStatus",
        "ListKeyRotations",
        "ListResourceTags",
        "GetKeyPolicy",
        "Encrypt",
        "Decrypt",
        "ReEncrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateRandom",
    }
)
"""CloudTrail marks cryptographic operations read-only too (they change no resource)."""


@dataclass
class Call:
    """The call being served, and what its audit event will say (filled in as it proceeds)."""

    operation: str
    caller: Caller
    region: str
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    source_ip: str = "127.0.0.1"
    user_agent: str = "wafproxy"
    key_id: str | None = None
    """As the caller named it (a key id, ARN or alias)."""
    alias: str | None = None
    resources: list[str] = field(default_factory=list)
    """Key ARNs the call used."""
    context: Mapping[str, str] | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    """Other non-secret request parameters worth recording."""

    def event(self, error_code: str | None, error_message: str | None) -> dict[str, Any]:
        params: dict[str, Any] = dict(self.parameters)
        if self.key_id is not None:
            params["keyId"] = self.key_id
        if self.context is not None:
            params["encryptionContext"] = dict(self.context)
        event: dict[str, Any] = {
            "eventVersion": EVENT_VERSION,
            "eventTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "eventSource": "kms.amazonaws.com",
            "eventName": self.operation,
            "awsRegion": self.region,
            "sourceIPAddress": self.source_ip,
            "userAgent": self.user_agent,
            "userIdentity": _identity(self.caller),
            "requestParameters": params,
            "responseElements": None,
            "requestID": self.request_id,
            "eventID": str(uuid.uuid4()),
            "readOnly": self.operation in READ_ONLY,
            "resources": [{"ARN": a, "type": "AWS::KMS::Key"} for a in self.resources],
            "eventType": "AwsApiCall",
            "outcome": "failure" if error_code else "success",
        }
        if self.alias is not None:
            event["alias"] = self.alias
        purpose = (self.context or {}).get("purpose")
        if purpose is not None:
            event["additionalEventData"] = {"purpose": purpose}
        if error_code:
            event["errorCode"] = error_code
            event["errorMessage"] = error_message
        return event


def _identity(caller: Caller) -> dict[str, Any]:
    identity: dict[str, Any] = {
        "type": "Root" if caller.is_root else "IAMUser",
        "principalId": caller.name,
        "arn": caller.arn,
        "accountId": caller.account,
    }
    if not caller.is_root:
        identity["userName"] = caller.name
    if caller.access_key_id:
        identity["accessKeyId"] = caller.access_key_id
    return identity


class AuditLog:
    """Append-only JSON lines; ``None`` path: events are dropped (tests of other parts)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._fd: int | None = None
        self._lock = threading.Lock()

    def write(self, event: Mapping[str, Any]) -> None:
        line = (json.dumps(event, separators=(",", ":"), sort_keys=True) + "\n").encode()
        with self._lock:
            fd = self._open()
            if fd is not None:
                os.write(fd, line)

    def _open(self) -> int | None:
        if self._fd is None and self.path is not None:
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
            self._fd = os.open(self.path, flags, PRIVATE_FILE)
        return self._fd

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]
