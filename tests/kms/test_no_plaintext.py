"""The proxy never writes a plaintext private key anywhere.

A real ``wafproxy run`` process is started with a Python audit hook that logs every file it
opens for writing and every rename; the test also snapshots /tmp, $TMPDIR and its own directory
before start-up and scans every file created or changed afterwards. None may contain the key
(PEM text, any line of its base64, its DER encoding, or the raw private scalar). A control file
holding the key proves the detector finds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .conftest import ROOT_ENV, ROOT_KEY
from .tlsutil import LISTENER, make_setup, peer_serial

LAUNCHER = textwrap.dedent(
    """
    import json, os, sys
    log = open(sys.argv[1], "a", buffering=1)
    WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            writing = isinstance(flags, int) and flags & WRITE
            if writing or (isinstance(mode, str) and any(c in mode for c in "wax+")):
                name = path if isinstance(path, int) else os.fsdecode(path)
                log.write(json.dumps(["open", name]) + "\\n")
        elif event in ("os.rename", "os.replace", "os.link", "shutil.copyfile", "shutil.move"):
            log.write(json.dumps([event, [os.fsdecode(a) for a in args[:2]]]) + "\\n")
    sys.addaudithook(hook)
    from wafproxy.cli import main
    sys.exit(main(sys.argv[2:]))
    """
)


def markers(pem: bytes) -> list[bytes]:
    key = serialization.load_pem_private_key(pem, password=None)
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    out = [pem, der]
    out += [line for line in pem.splitlines() if len(line) >= 40 and not line.startswith(b"-----")]
    if isinstance(key, ec.EllipticCurvePrivateKey):
        value = key.private_numbers().private_value
        out.append(value.to_bytes((value.bit_length() + 7) // 8, "big"))
    elif isinstance(key, rsa.RSAPrivateKey):
        d = key.private_numbers().d
        out.append(d.to_bytes((d.bit_length() + 7) // 8, "big"))
    return out


def leaks(path: Path, needles: list[bytes]) -> bool:
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size > 20_000_000:
            return False
        data = path.read_bytes()
    except OSError:
        return False
    return any(needle in data for needle in needles)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def snapshot(roots: list[Path]) -> dict[str, tuple[int, int, int]]:
    seen = {}
    for root in roots:
        for dirpath, _, filenames in os.walk(root, onerror=lambda _: None):
            for name in filenames:
                path = os.path.join(dirpath, name)
                with contextlib.suppress(OSError):
                    st = os.lstat(path)
                    seen[path] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return seen


async def test_no_plaintext_key_is_ever_written(
    tmp_path: Path, ca: trustme.CA, upstream: Any, rules_dir: Path, root_source: Any
) -> None:
    setup = make_setup(tmp_path / "tls", ca)
    issued = ca.issue_cert("shop.example")
    pem = issued.private_key_pem.bytes()
    needles = markers(pem)
    cert, key, serial = await setup.write_pair("shop", ["shop.example"])  # a different key…
    # …so encrypt *this* key, whose markers we hold, into the configured file, in memory only
    from wafproxy.kms.backends import LocalBackend
    from wafproxy.kms.config import KmsConfig
    from wafproxy.kms.envelope import seal_envelope
    from wafproxy.kms.rootkey import RootKeySource, RootKind
    from wafproxy.kms.tls import tls_context

    backend = LocalBackend(
        KmsConfig(store=setup.directory / "kms", root_key=RootKeySource(RootKind.ENV, ROOT_ENV))
    )
    key.write_bytes((await seal_envelope(backend, "alias/tls", pem, tls_context(LISTENER))).dumps())
    await backend.close()
    cert.write_bytes(b"".join(b.bytes() for b in issued.cert_chain_pems))

    port, admin = free_port(), free_port()
    private_tmp = tmp_path / "tmpdir"
    private_tmp.mkdir()
    config = {
        "listeners": [
            {
                "listen": f"127.0.0.1:{port}",
                "tls": {
                    "name": LISTENER,
                    "kms_key": "alias/tls",
                    "certificates": [{"cert": str(cert), "key": str(key)}],
                },
            }
        ],
        "routes": [{"upstream": "app", "web_acl": "test"}],
        "upstreams": {"app": {"targets": [upstream.url]}},
        "rules": [str(rules_dir / "test.yaml")],
        "admin": {"listen": f"127.0.0.1:{admin}"},
        "decision_log": {"destination": str(tmp_path / "decisions.jsonl")},
        "kms": setup.kms_section,
    }
    config_path = tmp_path / "proxy.yaml"
    config_path.write_text(yaml.safe_dump(config))
    launcher, written_log = tmp_path / "launcher.py", tmp_path / "written.jsonl"
    launcher.write_text(LAUNCHER)
    roots = [Path("/tmp"), private_tmp, tmp_path]
    before = snapshot(roots)
    started = time.time()
    env = {**os.environ, ROOT_ENV: ROOT_KEY, "TMPDIR": str(private_tmp), "PYTHONUNBUFFERED": "1"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(launcher),
        str(written_log),
        "run",
        "-c",
        str(config_path),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await wait_healthy(admin, process)
        context = setup.client_context()
        assert await peer_serial(port, context, "shop.example") != serial  # our key, not the other
        url = f"https://127.0.0.1:{port}/"
        headers = {"Host": "shop.example"}
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, ssl=context, server_hostname="shop.example", headers=headers) as reply,
        ):
            assert reply.status == 200
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)
    after = snapshot(roots)
    changed = [Path(p) for p, sig in after.items() if before.get(p) != sig]
    written = [json.loads(line) for line in written_log.read_text().splitlines()]
    opened = [
        Path(entry[1]) for entry in written if entry[0] == "open" and isinstance(entry[1], str)
    ]
    renamed = [Path(p) for entry in written if entry[0] != "open" for p in entry[1]]
    assert opened, "the audit hook saw no writes at all: it is not working"
    suspects = [p for p in {*changed, *opened, *renamed} if p != written_log]
    assert [p for p in suspects if leaks(p, needles)] == []
    assert all(not str(p).startswith(str(private_tmp)) for p in opened), opened
    assert started > 0
    control = tmp_path / "control.pem"
    control.write_bytes(pem)
    assert leaks(control, needles)  # the detector does find a written key


async def wait_healthy(admin: int, process: asyncio.subprocess.Process) -> None:
    deadline = asyncio.get_running_loop().time() + 30
    async with aiohttp.ClientSession() as session:
        while asyncio.get_running_loop().time() < deadline:
            if process.returncode is not None:
                assert process.stderr is not None
                raise AssertionError((await process.stderr.read()).decode())
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"http://127.0.0.1:{admin}/healthz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise AssertionError("proxy did not start")


pytestmark = pytest.mark.integration
