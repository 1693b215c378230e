"""Admin API for scans (admin listener, admin token):

GET  /scan/report?format=json|sarif|html   the last scheduled round's report
POST /scan/run                             run a round now; answers its JSON report
"""

from __future__ import annotations

from aiohttp import web

from wafproxy.findings.api import Authorized, unauthorized
from wafproxy.scan.html import render_html
from wafproxy.scan.osv import AdvisoryDB
from wafproxy.scan.patches import propose_rules
from wafproxy.scan.report import Report, render_json, render_sarif
from wafproxy.scan.scheduler import ScanScheduler

FORMATS = ("json", "sarif", "html")


def render(report: Report, fmt: str, db: AdvisoryDB) -> web.Response:
    if fmt == "sarif":
        return web.Response(text=render_sarif(report), content_type="application/sarif+json")
    if fmt == "html":
        rules = tuple(propose_rules(report.findings, db.virtual_patches()))
        html = render_html(report, rules, report.hardening())
        return web.Response(text=html, content_type="text/html")
    return web.Response(text=render_json(report), content_type="application/json")


class ScanApi:
    def __init__(self, scheduler: ScanScheduler, authorized: Authorized) -> None:
        self.scheduler = scheduler
        self.authorized = authorized

    async def report(self, request: web.Request) -> web.Response:
        if not self.authorized(request):
            return unauthorized()
        fmt = request.query.get("format", "json")
        if fmt not in FORMATS:
            return web.json_response({"error": f"format must be one of {FORMATS}"}, status=400)
        if self.scheduler.last_report is None:
            return web.json_response({"error": "no scan has completed yet"}, status=404)
        return render(self.scheduler.last_report, fmt, self.scheduler.advisories)

    async def run(self, request: web.Request) -> web.Response:
        if not self.authorized(request):
            return unauthorized()
        report = await self.scheduler.run_once()
        return render(report, "json", self.scheduler.advisories)


def add_routes(app: web.Application, scheduler: ScanScheduler, authorized: Authorized) -> None:
    api = ScanApi(scheduler, authorized)
    app.router.add_get("/scan/report", api.report)
    app.router.add_post("/scan/run", api.run)
