"""Every service config shipped in deploy/ and examples/ loads and compiles with the real loader."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from wafproxy.config.load import load_service_config
from wafproxy.config.runtime import build_runtime

ROOT = Path(__file__).resolve().parent.parent
TOKEN_PATHS = ("/run/secrets/wafproxy_admin_token", "/etc/wafproxy-secrets/admin-token")


def _with_local_token(text: str, tmp_path: Path) -> str:
    token = tmp_path / "admin-token"
    token.write_text("s3cret-token-for-tests\n")
    token.chmod(0o600)
    for path in TOKEN_PATHS:
        text = text.replace(path, str(token))
    return text


@pytest.mark.parametrize("name", ["examples/wafproxy.yaml", "deploy/wafproxy.yaml"])
def test_service_config_loads(name: str, tmp_path: Path) -> None:
    config_path = tmp_path / "wafproxy.yaml"
    config_path.write_text(_with_local_token((ROOT / name).read_text(), tmp_path))
    runtime = build_runtime(load_service_config(config_path))
    assert runtime.routes


def test_kubernetes_configmap_loads(tmp_path: Path) -> None:
    docs = list(yaml.safe_load_all((ROOT / "deploy/kubernetes/configmap.yaml").read_text()))
    (configmap,) = [d for d in docs if d and d.get("kind") == "ConfigMap"]
    for name, text in configmap["data"].items():
        (tmp_path / name).write_text(_with_local_token(text, tmp_path))
    runtime = build_runtime(load_service_config(tmp_path / "wafproxy.yaml"))
    assert [r.acl.name for r in runtime.routes] == ["default"]
