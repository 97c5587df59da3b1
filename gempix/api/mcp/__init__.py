"""GemPix as an MCP server (``gempix serve --mcp``), on the official ``mcp`` SDK.

``server.py`` is the transport: streamable HTTP at ``/mcp``, the caller's API key, budgets and
the request log. ``tools.py`` holds the tools, each a thin translation to the ``Studio`` and
the core functions the HTTP API calls (docs/api.md, "MCP").
"""

from .server import MCP_PATH, MCP_PATHS, build_mcp, mount_mcp
from .tools import IMAGE_CONTENT_MAX_BYTES, TOOLS

__all__ = ["IMAGE_CONTENT_MAX_BYTES", "MCP_PATH", "MCP_PATHS", "TOOLS", "build_mcp", "mount_mcp"]
