"""What the proxy tells the detectors about one finished request.

Built at the edge after the response (or the block) was sent and handed to the detection
queue with ``put_nowait``; detectors never see the request itself. ``time`` is the clock the
detectors judge windows and baselines by, so tests drive them with any clock they like.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Observation:
    time: float
    """Unix seconds when the request finished."""
    request_id: str
    client_ip: str
    method: str
    host: str
    route: str
    path: str
    """The path without the query string, as the client sent it (not decoded)."""
    status: int
    """The status sent to the client (a WAF block's status too; 499: the client went away)."""
    bytes_in: int
    bytes_out: int
    latency: float
    """Seconds from the request's arrival to the end of the response."""
    user_agent: str
    action: str
    """The web ACL's verdict: ``ALLOW``, ``BLOCK``, ``CAPTCHA``, ``CHALLENGE``."""
    terminating_rule: str
    labels: tuple[str, ...] = ()
    username: str | None = None
    """On a configured login route: the submitted username field (None elsewhere)."""
    login_failed: bool | None = None
    """On a configured login route: True/False as judged from the response; None elsewhere."""

    @property
    def blocked(self) -> bool:
        return self.action == "BLOCK"

    @property
    def login_attempt(self) -> bool:
        return self.login_failed is not None
