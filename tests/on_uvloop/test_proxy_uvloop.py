"""The proxy's request path on uvloop, which ``wafproxy run`` serves on: its transports are not
asyncio's (no ``asyncio.Transport`` subclass; TLS and ``set_protocol`` are its own), so the
listener, the WebSocket tunnel and TLS run here again on a uvloop event loop."""

from __future__ import annotations

import asyncio

import pytest
import uvloop
from kms.test_tls import (
    test_a_handshake_never_finished_is_cut_at_the_header_deadline,
    test_a_websocket_over_tls,
    test_aiohttp_client_over_tls_with_an_encrypted_key,
    tls_setup,
)
from test_edge import test_quick_keepalive_requests_each_get_a_fresh_deadline
from test_proxy import (
    test_413_while_streaming_a_chunked_body,
    test_a_stalled_body_is_answered_408_and_logged,
    test_an_open_websocket_ends_when_the_proxy_stops,
    test_body_prefix_is_inspected_and_the_rest_is_not,
    test_chunked_request_body_streams_through,
    test_garbage_never_takes_the_proxy_down,
    test_head_204_304_have_no_body,
    test_malformed_chunked_body_gets_400,
    test_request_body_passes_byte_for_byte_and_is_not_decompressed,
    test_websocket_echo_through_the_proxy,
    test_websocket_frames_sent_with_the_handshake_arrive,
    test_websocket_subprotocol_and_close_codes_propagate,
)

pytestmark = pytest.mark.integration


async def test_the_loop_is_uvloop() -> None:
    assert isinstance(asyncio.get_running_loop(), uvloop.Loop)


__all__ = [
    "test_413_while_streaming_a_chunked_body",
    "test_a_handshake_never_finished_is_cut_at_the_header_deadline",
    "test_a_stalled_body_is_answered_408_and_logged",
    "test_a_websocket_over_tls",
    "test_aiohttp_client_over_tls_with_an_encrypted_key",
    "test_an_open_websocket_ends_when_the_proxy_stops",
    "test_body_prefix_is_inspected_and_the_rest_is_not",
    "test_chunked_request_body_streams_through",
    "test_garbage_never_takes_the_proxy_down",
    "test_head_204_304_have_no_body",
    "test_malformed_chunked_body_gets_400",
    "test_quick_keepalive_requests_each_get_a_fresh_deadline",
    "test_request_body_passes_byte_for_byte_and_is_not_decompressed",
    "test_websocket_echo_through_the_proxy",
    "test_websocket_frames_sent_with_the_handshake_arrive",
    "test_websocket_subprotocol_and_close_codes_propagate",
    "tls_setup",
]
