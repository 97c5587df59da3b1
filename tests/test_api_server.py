"""The one process, really started: API at /api/v1, the web app at /, the MCP tool at /mcp,
over HTTPS with a self-signed certificate made here; the MCP tool list is read with the MCP
client, and the tool generates with the caller's key."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import shutil
import ssl

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gempix.api import API_PREFIX, ApiConfig
from gempix.privacy.identity import LOCAL_USER
from gempix.server import build_server, start_server
from gempix.service import Studio
from gempix.settings import Settings


def self_signed(folder) -> tuple[str, str]:
    """A certificate for 127.0.0.1 and localhost, valid for a day, and its key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gempix test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


@pytest.fixture(scope="module")
def https_server(tmp_path_factory, tiny_folder, tiny_models):
    root = tmp_path_factory.mktemp("server")
    shutil.copytree(tiny_folder, root / "data" / "models" / "tiny")
    settings = Settings.load({}, data_dir=str(root / "data"), model="tiny")
    studio = Studio(settings, models=tiny_models)
    cert, key = self_signed(root)
    config = ApiConfig(rate_web="3/minute")
    server = start_server(
        build_server(studio, config=config, mcp=True), ssl_certfile=cert, ssl_keyfile=key
    )
    verify = ssl.create_default_context(cafile=cert)
    try:
        health = httpx.get(f"{server.url}{API_PREFIX}/health", verify=verify, timeout=10)
        assert health.status_code == 200
        yield server.url, verify, studio
    finally:
        server.stop()
        studio.close()


def test_api_and_web_app_share_one_https_port(https_server):
    url, verify, _ = https_server
    assert url.startswith("https://")
    with httpx.Client(base_url=url, verify=verify, timeout=30) as client:
        assert client.get(f"{API_PREFIX}/health").json()["status"] == "ok"
        page = client.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        config = client.get("/config").json()
        assert config.get("analytics_enabled") is False
        missing = client.get(f"{API_PREFIX}/no-such-route")
        assert missing.status_code == 404 and missing.json()["ok"] is False
        docs = client.get(f"{API_PREFIX}/docs")
        assert docs.status_code == 200 and "/api/v1/generate" in docs.text
        assert "cdn" not in docs.text.lower()
        assert "Example answer (200)" in docs.text and "Example answer (201)" in docs.text
    with pytest.raises(httpx.ConnectError):  # the certificate is checked, not waved through
        httpx.get(f"{url}{API_PREFIX}/health", timeout=10)


def test_web_app_events_are_rate_limited_per_client(https_server):
    url, verify, _ = https_server
    answers = [
        httpx.post(f"{url}/gradio_api/queue/join", json={}, verify=verify, timeout=10)
        for _ in range(4)
    ]
    assert [a.status_code == 429 for a in answers] == [False, False, False, True]
    assert answers[-1].json()["status"] == 429 and "retry-after" in answers[-1].headers


async def _mcp(url, verify, headers, action):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with httpx.AsyncClient(headers=headers, verify=verify, timeout=60) as http:
        async with streamable_http_client(f"{url}/mcp/", http_client=http) as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await action(session)


def test_mcp_over_https_lists_tools_and_generates_with_the_key(https_server):
    """The MCP server shares the HTTPS port (tests/test_mcp.py drives each tool)."""
    url, verify, studio = https_server
    tools = asyncio.run(_mcp(url, verify, None, lambda s: s.list_tools())).tools
    assert [tool.name for tool in tools] == [
        "generate_image",
        "edit_image",
        "list_images",
        "verify_image",
    ]
    assert "authorization" not in tools[0].inputSchema["properties"]  # a header, not an argument
    refused = asyncio.run(
        _mcp(url, verify, None, lambda s: s.call_tool("generate_image", {"prompt": "x"}))
    )
    assert refused.isError and "API key" in refused.content[0].text

    key = studio.keys.create(LOCAL_USER)[0]
    result = asyncio.run(
        _mcp(
            url,
            verify,
            {"Authorization": f"Bearer {key}"},
            lambda s: s.call_tool("generate_image", {"prompt": "a kite", "seed": 5}),
        )
    )
    assert not result.isError, result.content
    image = result.structuredContent["images"][0]
    assert image["seed"] == 5 and image["url"] == f"{url}{API_PREFIX}/images/{image['id']}"
    png = httpx.get(image["url"], headers={"Authorization": f"Bearer {key}"}, verify=verify)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
