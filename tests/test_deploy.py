"""The deployment example (deploy/compose.yaml and its nginx.conf), read as files (no Docker
engine needed): every replica shares the one Redis, nginx spreads requests over exactly those
replicas on the port the image binds, and streams pass through it unbuffered."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgspec

from llmgw.config import load_settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def compose() -> dict[str, Any]:
    document: dict[str, Any] = msgspec.yaml.decode((DEPLOY / "compose.yaml").read_bytes())
    return document


def gateways() -> dict[str, Any]:
    return {name: service for name, service in compose()["services"].items() if "build" in service}


def test_two_replicas_are_built_from_the_repository_and_share_one_redis() -> None:
    services = compose()["services"]
    replicas = gateways()
    assert len(replicas) == 2
    for service in replicas.values():
        assert (DEPLOY / service["build"]["context"] / "Dockerfile").is_file()
        url = service["environment"]["STATE_URL"]
        host = re.fullmatch(r"redis://([a-z0-9-]+):6379/0", url)
        assert host is not None
        assert host.group(1) in services
        assert service["depends_on"][host.group(1)] == {"condition": "service_healthy"}
        assert service["environment"]["HOST"] == "0.0.0.0"
        # What the gateway makes of it, with the client keys a public address needs.
        settings = load_settings({**service["environment"], "GATEWAY_API_KEYS": "k"})
        assert settings.state_url == url
    volumes = [service["volumes"][0].split(":")[0] for service in replicas.values()]
    assert len(set(volumes)) == 2, "each replica its own metrics database"


def test_nginx_balances_over_the_replicas_and_passes_streams_through() -> None:
    conf = (DEPLOY / "nginx.conf").read_text()
    upstream = re.search(r"upstream llmgw \{(.*?)\}", conf, re.DOTALL)
    assert upstream is not None
    servers = re.findall(r"server ([a-z0-9-]+):(\d+)", upstream.group(1))
    assert sorted(servers) == sorted((name, "8080") for name in gateways())
    assert "proxy_pass http://llmgw;" in conf
    assert "proxy_buffering off;" in conf
    (retry,) = re.findall(r"^\s*proxy_next_upstream ([^;]*);", conf, re.MULTILINE)
    assert "non_idempotent" not in retry, "a POST that reached a replica is never sent again"
    nginx = compose()["services"]["nginx"]
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in nginx["volumes"]
    assert nginx["ports"] == ["8080:8080"]
