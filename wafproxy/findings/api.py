"""Admin API for findings (on the admin listener, behind the admin token):

GET  /findings?status=active&severity=high&type=…&source=…&check=…&resource=…&limit=&offset=
GET  /findings/{id}
POST /findings/{id}/archive
POST /findings/{id}/unarchive
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from wafproxy.findings.model import Severity, Status
from wafproxy.findings.service import FindingsService
from wafproxy.findings.store import FindingQuery

Authorized = Callable[[web.Request], bool]
MAX_LIMIT = 1000


def unauthorized() -> web.Response:
    return web.json_response(
        {"error": "unauthorized"},
        status=401,
        headers={"WWW-Authenticate": 'Bearer realm="wafproxy"'},
    )


def query_from(params: dict[str, str]) -> FindingQuery:
    """Raises ValueError with a message fit for a 400."""
    statuses = frozenset(Status(s) for s in params.get("status", "").split(",") if s)
    severity = params.get("severity")
    limit = int(params.get("limit", "100"))
    offset = int(params.get("offset", "0"))
    if not 0 < limit <= MAX_LIMIT or offset < 0:
        raise ValueError(f"limit must be 1..{MAX_LIMIT} and offset >= 0")
    return FindingQuery(
        statuses=statuses,
        type=params.get("type") or None,
        source=params.get("source") or None,
        check=params.get("check") or None,
        resource=params.get("resource") or None,
        min_severity=Severity(severity) if severity else None,
        limit=limit,
        offset=offset,
    )


class FindingsApi:
    def __init__(self, service: FindingsService, authorized: Authorized) -> None:
        self.service = service
        self.authorized = authorized

    async def list(self, request: web.Request) -> web.Response:
        if not self.authorized(request):
            return unauthorized()
        try:
            query = query_from(dict(request.query))
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        findings = await self.service.query(query)
        total = await self.service.count(query)
        return web.json_response({"total": total, "findings": [f.to_dict() for f in findings]})

    async def show(self, request: web.Request) -> web.Response:
        if not self.authorized(request):
            return unauthorized()
        finding = await self.service.get(request.match_info["id"])
        if finding is None:
            return web.json_response({"error": "no such finding"}, status=404)
        return web.json_response(finding.to_dict())

    async def archive(self, request: web.Request) -> web.Response:
        return await self._set(request, Status.ARCHIVED)

    async def unarchive(self, request: web.Request) -> web.Response:
        return await self._set(request, Status.ACTIVE)

    async def _set(self, request: web.Request, status: Status) -> web.Response:
        if not self.authorized(request):
            return unauthorized()
        try:
            finding = await self.service.set_status(request.match_info["id"], status)
        except KeyError:
            return web.json_response({"error": "no such finding"}, status=404)
        return web.json_response(finding.to_dict())


def add_routes(app: web.Application, service: FindingsService, authorized: Authorized) -> None:
    api = FindingsApi(service, authorized)
    app.router.add_get("/findings", api.list)
    app.router.add_get("/findings/{id}", api.show)
    app.router.add_post("/findings/{id}/archive", api.archive)
    app.router.add_post("/findings/{id}/unarchive", api.unarchive)
