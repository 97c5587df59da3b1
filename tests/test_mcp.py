"""GemPix's MCP server, really started and driven with the official ``mcp`` client over
streamable HTTP: the session shown in docs/api.md runs as written, tools take every field of
the request model, answer with image content and absolute URLs, bad keys spend the client's
anonymous budget, and the image content is capped."""

from __future__ import annotations

import asyncio
import base64
import io
import random
import re
import shutil
from pathlib import Path

import httpx
import pytest
from conftest import png_bytes
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from PIL import Image

from gempix import __version__
from gempix.api import API_PREFIX, ApiConfig
from gempix.api.mcp import IMAGE_CONTENT_MAX_BYTES
from gempix.api.mcp.tools import PREVIEW_SIDE, image_content
from gempix.privacy.gate import confirm_age
from gempix.privacy.identity import create_user
from gempix.server import build_server, start_server
from gempix.service import Studio
from gempix.settings import Settings

DOCS = Path(__file__).resolve().parents[1] / "docs" / "api.md"
ANONYMOUS_BUDGET = 3


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_folder, tiny_models):
    root = tmp_path_factory.mktemp("mcp")
    shutil.copytree(tiny_folder, root / "data" / "models" / "tiny")
    studio = Studio(
        Settings.load({}, data_dir=str(root / "data"), model="tiny"), models=tiny_models
    )
    _, user_id = create_user(studio)
    confirm_age(studio.store, user_id)
    key = studio.keys.create(user_id)[0]
    config = ApiConfig(rate_anonymous=f"{ANONYMOUS_BUDGET}/minute", max_images=2)
    server = start_server(build_server(studio, config=config, mcp=True, ui=False))
    try:
        yield server.url, key, studio
    finally:
        server.stop()
        studio.close()


async def _session(url: str, key: str | None, action):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx.AsyncClient(headers=headers, timeout=120) as http:
        async with streamable_http_client(f"{url}/mcp/", http_client=http) as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await action(session)


def call(url, key, tool, arguments):
    return asyncio.run(_session(url, key, lambda s: s.call_tool(tool, arguments)))


def test_the_documented_client_session_runs(served, tmp_path, monkeypatch, capsys):
    url, key, _ = served
    block = DOCS.read_text(encoding="utf-8").split("## MCP\n", 1)[1]
    code = re.search(r"```python\n(.*?)```", block, re.S).group(1)
    code = re.sub(r'^URL = ".*"$', f'URL = "{url}/mcp/"', code, flags=re.M)
    code = re.sub(r'^KEY = ".*"$', f'KEY = "{key}"', code, flags=re.M)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "docs/api.md", "exec"), {"__name__": "__docs__"})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"GemPix {__version__}"
    assert lines[1] == "['generate_image', 'edit_image', 'list_images', 'verify_image']"
    assert lines[2].startswith(f"{url}{API_PREFIX}/images/")  # absolute
    inline = (tmp_path / "fox.png").read_bytes()
    fetched = httpx.get(lines[2], headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert fetched.status_code == 200 and fetched.content == inline  # the PNG itself


def test_generate_takes_every_field_of_the_request_model(served):
    url, key, studio = served
    tools = asyncio.run(_session(url, key, lambda s: s.list_tools())).tools
    schema = next(t for t in tools if t.name == "generate_image").inputSchema
    assert {
        "prompt", "negative_prompt", "seed", "steps", "guidance", "width", "height", "aspect",
        "resolution", "num_images", "styles", "character", "character_strength", "init_image",
        "style_image", "references", "upscaler", "strength",
    } <= set(schema["properties"])  # fmt: skip
    assert schema["properties"]["steps"]["anyOf"][0]["maximum"] == 100
    assert schema["required"] == ["prompt"] and schema["additionalProperties"] is False

    made = call(
        url,
        key,
        "generate_image",
        {
            "prompt": "a kite",
            "negative_prompt": "rain",
            "width": 64,
            "height": 96,
            "guidance": 2.5,
            "steps": 2,
            "num_images": 2,
            "seed": 11,
            "styles": ["watercolor"],
        },
    )
    assert not made.isError, made.content
    images = made.structuredContent["images"]
    assert [(i["seed"], i["width"], i["height"]) for i in images] == [(11, 64, 96), (12, 64, 96)]
    assert [c.type for c in made.content] == ["text", "image", "image"]
    picture = Image.open(io.BytesIO(base64.b64decode(made.content[1].data)))
    assert picture.size == (64, 96)
    row = studio.images.get(studio.keys.verify(key).user_id, images[0]["id"])
    assert row["params"]["guidance"] == 2.5 and row["params"]["steps"] == 2
    assert row["params"]["negative_prompt"].startswith("rain")


def test_refusals_name_the_field_and_never_echo_a_prompt(served):
    url, key, _ = served
    bad = call(url, key, "generate_image", {"prompt": "secret words", "steps": 0})
    assert bad.isError and "steps" in bad.content[0].text
    assert "secret" not in bad.content[0].text
    unknown = call(url, key, "generate_image", {"prompt": "x", "character": "nobody"})
    assert unknown.isError and "character" in unknown.content[0].text.lower()
    both = call(url, key, "verify_image", {"image_id": "x", "image": "eA=="})
    assert both.isError and both.content[0].text.startswith("image:")
    nothing = call(url, key, "no_such_tool", {})
    assert nothing.isError and "generate_image" in nothing.content[0].text


def test_edit_inpaints_one_of_my_images(served):
    """The edit tool is the edit route: its body, its checks, the same core call."""
    url, key, studio = served
    made = call(url, key, "generate_image", {"prompt": "a house", "seed": 5})
    source_id = made.structuredContent["images"][0]["id"]
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    body = {"prompt": "a red door", "source_id": source_id, "seed": 2, "steps": 2}
    edited = call(
        url, key, "edit_image", {**body, "mask": base64.b64encode(buffer.getvalue()).decode()}
    )
    assert not edited.isError, edited.content
    (image,) = edited.structuredContent["images"]
    assert (image["width"], image["height"]) == (64, 64)
    row = studio.images.get(studio.keys.verify(key).user_id, image["id"])
    assert row["params"]["edit"]["source"]["generation_id"] == source_id
    assert row["params"]["edit"]["mask_sha256"]
    refused = call(url, key, "edit_image", {**body, "width": 128, "height": 128})
    assert refused.isError and refused.content[0].text.startswith("width")
    tools = asyncio.run(_session(url, key, lambda s: s.list_tools())).tools
    schema = next(t for t in tools if t.name == "edit_image").inputSchema
    assert {"source", "source_id", "mask", "outpaint"} <= set(schema["properties"])
    assert "width" not in schema["properties"]  # the source decides the size


def test_list_and_verify(served):
    url, key, _ = served
    made = call(url, key, "generate_image", {"prompt": "a boat", "seed": 3})
    image_id = made.structuredContent["images"][0]["id"]
    page = call(url, key, "list_images", {"limit": 100})
    assert not page.isError
    listed = {item["id"]: item for item in page.structuredContent["items"]}
    assert listed[image_id]["url"] == f"{url}{API_PREFIX}/images/{image_id}"  # absolute
    assert page.structuredContent["has_more"] is False
    first = call(url, key, "list_images", {"limit": 1}).structuredContent
    assert len(first["items"]) == 1 and first["has_more"] is True

    ours = call(url, key, "verify_image", {"image_id": image_id})
    assert not ours.isError, ours.content
    assert {"iptc", "gempix_params"} <= set(ours.structuredContent["marks"])
    assert ours.structuredContent["ai_disclosed"] is True
    plain = call(url, key, "verify_image", {"image": base64.b64encode(png_bytes()).decode()})
    assert plain.structuredContent["marks"] == []
    missing = call(url, key, "verify_image", {"image_id": "0" * 32})
    assert missing.isError and "no generation with id" in missing.content[0].text.lower()


def test_bad_keys_spend_the_anonymous_budget(served):
    url, key, _ = served
    answers = [
        call(url, "gpx_000000000000_guess", "list_images", {}).content[0].text
        for _ in range(ANONYMOUS_BUDGET + 1)
    ]
    assert all("API key" in text for text in answers[:ANONYMOUS_BUDGET]), answers
    assert answers[-1].startswith("Rate limit reached"), answers
    assert not call(url, key, "list_images", {}).isError  # a real key has its own budget


def test_server_info_and_the_old_address(served):
    url, _, _ = served

    async def hello(address):
        async with httpx.AsyncClient(timeout=30) as http:
            async with streamable_http_client(address, http_client=http) as (read, write, _):
                async with ClientSession(read, write) as session:
                    return await session.initialize()

    for address in (f"{url}/mcp", f"{url}/mcp/gradio_api/mcp/"):
        info = asyncio.run(hello(address)).serverInfo
        assert (info.name, info.version) == ("GemPix", __version__)


def test_image_content_is_capped(tmp_path):
    noise = Image.frombytes("RGB", (1200, 900), random.Random(5).randbytes(1200 * 900 * 3))
    big = tmp_path / "big.png"
    noise.save(big)
    assert big.stat().st_size > IMAGE_CONTENT_MAX_BYTES
    content = image_content(big)
    data = base64.b64decode(content.data)
    assert content.mimeType == "image/jpeg" and len(data) <= IMAGE_CONTENT_MAX_BYTES
    assert max(Image.open(io.BytesIO(data)).size) == PREVIEW_SIDE
    small = tmp_path / "small.png"
    small.write_bytes(png_bytes())
    assert base64.b64decode(image_content(small).data) == small.read_bytes()
