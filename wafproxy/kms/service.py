"""The KMS operations with AWS semantics, over a KeyStore.

``Kms.call(operation, params, call)`` is the one entry point (the server, the local backend and
the CLI all use it): it runs the operation's handler (``ops_*.py``), which resolves the key,
authorizes the caller (``policy.py``), checks the key's state (``states.py``) and does the work;
then it appends the audit event, for a failure too. Parameters and results are dicts with AWS's
member names; blobs are bytes and times are POSIX seconds.

Time-driven changes (automatic rotation, the end of a deletion's waiting period) are applied
lazily, before any call that is made at or after the moment they were due.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from wafproxy.kms import ops
from wafproxy.kms.audit import AuditLog, Call
from wafproxy.kms.errors import (
    ACCESS_DENIED,
    INTERNAL,
    INVALID_ARN,
    NOT_FOUND,
    UNKNOWN_OPERATION,
    KeystoreError,
    KmsError,
)
from wafproxy.kms.keystore import KeyStore
from wafproxy.kms.model import DAY, KeyRecord, KeyState, KeyVersion, RotationType
from wafproxy.kms.params import Params
from wafproxy.kms.policy import Caller, KeyPolicy, Verdict, default_policy
from wafproxy.kms.states import check_state
from wafproxy.kms.storefile import StoreData

Result = dict[str, Any]


@dataclass
class Kms:
    store: KeyStore
    audit: AuditLog = field(default_factory=lambda: AuditLog(None))
    clock: Callable[[], float] = time.time
    _policies: dict[str, KeyPolicy] = field(default_factory=dict, repr=False)
    _due: tuple[int, float, object] = field(default=(-1, 0.0, None), repr=False)
    """(store generation, when the next rotation or deletion is due, the data it was taken of)"""

    # -- identity ------------------------------------------------------------------------------
    @property
    def account(self) -> str:
        return self.store.account

    @property
    def region(self) -> str:
        return self.store.region

    def root_caller(self) -> Caller:
        return Caller.root(self.account)

    def new_call(self, operation: str, caller: Caller | None = None, **kwargs: Any) -> Call:
        return Call(operation, caller or self.root_caller(), self.region, **kwargs)

    def caller_for_access_key(self, access_key_id: str) -> tuple[Caller, str] | None:
        """The principal owning an access key, and its secret (for SigV4)."""
        for p in self.store.data().principals.values():
            if p.access_key_id == access_key_id:
                caller = Caller.principal(self.account, p.name, p.actions, p.access_key_id)
                return caller, p.secret_access_key
        return None

    # -- the entry point -----------------------------------------------------------------------
    def call(self, operation: str, params: Mapping[str, Any], call: Call) -> Result:
        handler = ops.OPERATIONS[operation] if operation in ops.OPERATIONS else None  # noqa: SIM401
        try:
            if handler is None:
                raise KmsError(UNKNOWN_OPERATION, f"Unknown operation {operation}")
            self.housekeeping()
            result = handler(self, call, Params(params))
        except KmsError as exc:
            self.audit.write(call.event(exc.code, exc.message))
            raise
        except KeystoreError as exc:
            self.audit.write(call.event(INTERNAL, str(exc)))
            raise KmsError(INTERNAL, f"keystore: {exc}") from exc
        self.audit.write(call.event(None, None))
        return result

    # -- keys ----------------------------------------------------------------------------------
    def key_arn(self, key_id: str) -> str:
        return f"arn:aws:kms:{self.region}:{self.account}:key/{key_id}"

    def alias_arn(self, name: str) -> str:
        return f"arn:aws:kms:{self.region}:{self.account}:{name}"

    def resolve(self, data: StoreData, text: str, *, allow_alias: bool) -> KeyRecord:
        key_id = self._key_id(data, text, allow_alias)
        record = data.keys.get(key_id)
        if record is None:
            raise KmsError(NOT_FOUND, f"Key '{self.key_arn(key_id)}' does not exist")
        return record

    def _key_id(self, data: StoreData, text: str, allow_alias: bool) -> str:
        name = text
        if text.startswith("arn:"):
            name = self._from_arn(text)
        if name.startswith("alias/"):
            if not allow_alias:
                raise KmsError(NOT_FOUND, f"Invalid keyId '{text}'")
            alias = data.aliases.get(name)
            if alias is None:
                raise KmsError(NOT_FOUND, f"Alias {self.alias_arn(name)} is not found.")
            return alias.target_key_id
        if name.startswith("key/"):
            name = name[4:]
        if not is_key_id(name):
            raise KmsError(NOT_FOUND, f"Invalid keyId '{text}'")
        return name

    def _from_arn(self, arn: str) -> str:
        parts = arn.split(":", 5)
        if len(parts) != 6 or parts[1] != "aws" or parts[2] != "kms" or not parts[5]:
            raise KmsError(INVALID_ARN, f"Invalid arn {arn}")
        if parts[3] != self.region or parts[4] != self.account:
            raise KmsError(NOT_FOUND, f"Invalid arn {arn}: not in this account and region")
        if not parts[5].startswith(("key/", "alias/")):
            raise KmsError(INVALID_ARN, f"Invalid arn {arn}")
        return parts[5]

    def use_key(
        self,
        call: Call,
        text: str,
        action: str,
        *,
        allow_alias: bool,
        context: Mapping[str, str] | None = None,
        data: StoreData | None = None,
        record_key_id: bool = True,
    ) -> KeyRecord:
        """Resolve ``text``, authorize ``action`` on it, check its state for this operation."""
        data = data or self.store.data()
        if record_key_id:
            call.key_id = text
        if text.startswith("alias/") or ":alias/" in text:
            call.alias = text.split(":", 5)[-1]
        record = self.resolve(data, text, allow_alias=allow_alias)
        arn = self.key_arn(record.key_id)
        call.resources.append(arn)
        self.authorize(call, record, action, context or {})
        check_state(call.operation, record, arn)
        return record

    def authorize(
        self, call: Call, record: KeyRecord, action: str, context: Mapping[str, str]
    ) -> None:
        arn = self.key_arn(record.key_id)
        verdict = self.policy(record).evaluate(call.caller, action, arn, context)
        if verdict != Verdict.ALLOW:
            raise KmsError(
                ACCESS_DENIED,
                f"User: {call.caller.arn} is not authorized to perform: {action} on resource: "
                f"{arn} because {_why(verdict)}",
            )

    def authorize_account(self, call: Call, action: str) -> None:
        if not call.caller.identity_allows(action):
            raise KmsError(
                ACCESS_DENIED,
                f"User: {call.caller.arn} is not authorized to perform: {action} because no "
                "identity-based policy allows the action",
            )

    def policy_text(self, record: KeyRecord) -> str:
        return record.policy or default_policy(self.account)

    def policy(self, record: KeyRecord) -> KeyPolicy:
        text = self.policy_text(record)
        cached = self._policies.get(text)
        if cached is None:
            cached = self._policies[text] = KeyPolicy.parse(text, self.account)
        return cached

    # -- time-driven changes -------------------------------------------------------------------
    def housekeeping(self) -> None:
        now = self.clock()
        data = self.store.data()
        if self._due[0] != data.generation or self._due[2] is not data:
            self._due = (data.generation, _next_due(data), data)
        if self._due[1] > now:
            return
        with self.store.transaction() as data:
            for key_id, record in list(data.keys.items()):
                if record.deletion_date is not None and record.deletion_date <= now:
                    delete_key(data, key_id)
                elif record.next_rotation is not None and record.next_rotation <= now:
                    data.keys[key_id] = rotated(record, RotationType.AUTOMATIC, now)


def _why(verdict: str) -> str:
    if verdict == Verdict.EXPLICIT_DENY:
        return "of an explicit deny in a resource-based policy"
    return "no resource-based policy allows the action"


def _next_due(data: StoreData) -> float:
    due = [
        t
        for r in data.keys.values()
        for t in (r.deletion_date, r.next_rotation if r.rotation_enabled else None)
        if t is not None
    ]
    return min(due, default=float("inf"))


def delete_key(data: StoreData, key_id: str) -> None:
    del data.keys[key_id]
    for name in [n for n, a in data.aliases.items() if a.target_key_id == key_id]:
        del data.aliases[name]


def rotated(record: KeyRecord, kind: RotationType, now: float) -> KeyRecord:
    """A new version of the material; automatic rotation's clock restarts from now."""
    from dataclasses import replace

    from wafproxy.kms.crypto import new_key_material

    version = KeyVersion(len(record.versions) + 1, new_key_material(), now, kind)
    next_rotation = record.next_rotation
    if record.rotation_enabled and record.rotation_period_days and kind is RotationType.AUTOMATIC:
        next_rotation = now + record.rotation_period_days * DAY
    return replace(record, versions=(*record.versions, version), next_rotation=next_rotation)


def is_key_id(text: str) -> bool:
    try:
        return len(text) == 36 and str(uuid.UUID(text)) == text
    except ValueError:
        return False


def new_key_id() -> str:
    return str(uuid.uuid4())


def enabled(record: KeyRecord) -> bool:
    return record.state is KeyState.ENABLED


ops.load()
