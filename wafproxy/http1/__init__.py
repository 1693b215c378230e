"""A lean HTTP/1.1 server: llhttp (httptools) parses, one task per connection
serves its requests in order, a ``Reply`` writes the answer.

Why: behind aiohttp's server the proxy's own edge costs about as much per request as the whole
bare proxy it is measured against. On a plain protocol with llhttp a hello-world answer costs a
quarter of what it costs on aiohttp's low-level server, and a proxy hop with wafproxy's upstream
client half of wafproxy's (bench/RESULTS.md, 2026-11-30 05:50). This package is that protocol with
what a public listener needs: limits on the request head (431), a deadline for the head and an
idle limit between requests (one sweep per server, not a timer per request), 400 for what does
not parse, bodies with bounded buffering (reading pauses above ``body_high_water``), pipelined
requests answered in order, and upgrades handed over with their transport.
"""

from wafproxy.http1.body import Body, BodyTimeout, MalformedBody
from wafproxy.http1.connection import Connection, Request
from wafproxy.http1.reply import Reply, date_header, encode_head
from wafproxy.http1.server import ErrorHook, Handler, Http1Server, ServerLimits

__all__ = [
    "Body", "BodyTimeout", "Connection", "ErrorHook", "Handler", "Http1Server", "MalformedBody",
    "Reply", "Request", "ServerLimits", "date_header", "encode_head",
]  # fmt: skip
