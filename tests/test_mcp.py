"""The app as an MCP server: the official ``mcp`` client lists its tools and reads a held-out drawing.

The session's app (``python app.py`` on 127.0.0.1, ``launch(mcp_server=True)``) is reached
over streamable HTTP at ``/gradio_api/mcp/``, as an agent would. Gradio 6.31's MCP server
sends a tool's dict result as its ``str()`` (a Python literal, not JSON), so it is read
with ``ast.literal_eval``.
"""

from __future__ import annotations

import ast
import asyncio
import base64

import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from PIL import Image

from conftest import png_bytes

pytestmark = pytest.mark.slow  # starts the app, a server or a training run: CI runs it, the inner loop does not


async def _session(url, work):
    async with streamable_http_client(url) as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            return await work(session)


def run(app_url, work, timeout=180):
    """Run ``work(session)`` in an MCP session with the app; return its result."""
    return asyncio.run(asyncio.wait_for(_session(app_url + "gradio_api/mcp/", work), timeout))


def payload(result) -> dict:
    """Return the dict the tool answered (its one text content)."""
    texts = [content.text for content in result.content if content.type == "text"]
    assert len(texts) == 1, result.content
    return ast.literal_eval(texts[0])


@pytest.fixture(scope="module")
def tools(app_url):
    async def work(session):
        return (await session.list_tools()).tools

    return {tool.name: tool for tool in run(app_url, work)}


def test_read_digit_tool_is_listed_with_typed_documented_arguments(tools):
    tool = tools["read_digit"]
    assert "handwritten digit" in tool.description
    schema = tool.inputSchema
    assert schema["required"] == ["image"]
    assert schema["properties"]["image"]["type"] == "string"
    assert "base64" in schema["properties"]["image"]["description"]
    assert schema["properties"]["model"]["enum"] == ["cnn", "dense", "numpy"]
    assert schema["properties"]["model"]["default"] == "cnn"
    assert "Keras CNN" in schema["properties"]["model"]["description"]


def test_calling_read_digit_reads_held_out_drawings(app_url, one_per_label):
    """Three held-out digits, one per model: each answer is the digit drawn."""
    cases = [(2, "cnn"), (6, "dense"), (9, "numpy")]

    async def work(session):
        results = []
        for digit, model in cases:
            png = png_bytes(Image.fromarray(one_per_label[digit]))
            image = "data:image/png;base64," + base64.b64encode(png).decode()
            results.append(await session.call_tool("read_digit", {"image": image, "model": model}))
        return results

    for (digit, model), result in zip(cases, run(app_url, work)):
        assert not result.isError, result.content
        answer = payload(result)
        assert (answer["digit"], answer["model"]) == (digit, model)
        assert abs(sum(answer["probabilities"]) - 1) < 1e-6
        assert answer["image"].startswith("data:image/png;base64,")


def test_a_bad_image_is_a_tool_error_with_a_short_message(app_url):
    async def work(session):
        return await session.call_tool("read_digit", {"image": "not base64 at all!"})

    result = run(app_url, work)
    assert result.isError
    text = " ".join(content.text for content in result.content if content.type == "text")
    assert "not valid base64" in text and len(text) < 300
