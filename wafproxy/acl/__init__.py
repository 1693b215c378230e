"""The web ACL engine: pure and synchronous (no aiohttp, no asyncio, no I/O at request time)."""
