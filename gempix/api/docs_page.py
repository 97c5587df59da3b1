"""``/api/v1/docs``: the OpenAPI schema as one self-contained HTML page.

FastAPI's Swagger UI and ReDoc load scripts from a CDN; this page loads nothing from anywhere,
so reading the docs tells no third party about the reader.
"""

from __future__ import annotations

import html
import json
from typing import Any

STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
  color: #1f2937; }
code, pre { font-family: ui-monospace, monospace; font-size: 0.9em; }
pre { background: #f3f4f6; padding: 0.6rem; overflow-x: auto; }
section { border-top: 1px solid #e5e7eb; padding: 0.5rem 0; }
.method { font-weight: bold; display: inline-block; min-width: 4.5rem; }
.auth { color: #92400e; font-size: 0.85em; }
"""


def _escape(value: Any) -> str:
    return html.escape(str(value))


def _schema_name(schema: dict[str, Any]) -> str:
    ref = schema.get("$ref", "")
    return ref.rsplit("/", 1)[-1] if ref else schema.get("type", "object")


def _example(openapi: dict[str, Any], content: dict[str, Any]) -> str:
    """The first example of a body or an answer (from its schema), as a <pre> block."""
    for media in content.values():
        schema = media.get("schema", {})
        ref = schema.get("$ref", "")
        if ref:
            schema = (
                openapi.get("components", {}).get("schemas", {}).get(ref.rsplit("/", 1)[-1], {})
            )
        examples = media.get("examples") or schema.get("examples") or []
        if examples:
            first = examples[0] if isinstance(examples, list) else next(iter(examples.values()))
            return f"<pre>{_escape(json.dumps(first, indent=2))}</pre>"
    return ""


def render_docs(openapi: dict[str, Any]) -> str:
    """Every operation: method, path, summary, description, key needed, parameters, body
    and an example of it, responses and an example answer; then the schemas as JSON."""
    info = openapi.get("info", {})
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{_escape(info.get('title', 'API'))}</title><style>{STYLE}</style></head><body>",
        f"<h1>{_escape(info.get('title', 'API'))} {_escape(info.get('version', ''))}</h1>",
        f"<p>{_escape(info.get('description', ''))}</p>",
        "<p>Machine-readable: <a href='openapi.json'>openapi.json</a>.</p>",
    ]
    for path, item in openapi.get("paths", {}).items():
        for method, operation in item.items():
            secured = bool(operation.get("security"))
            parts.append("<section>")
            parts.append(
                f"<h3><span class='method'>{_escape(method.upper())}</span>"
                f"<code>{_escape(path)}</code></h3>"
            )
            parts.append(f"<p><b>{_escape(operation.get('summary', ''))}</b></p>")
            if operation.get("description"):
                parts.append(f"<p>{_escape(operation['description'])}</p>")
            parts.append(
                "<p class='auth'>"
                + ("Needs an API key (Authorization: Bearer gpx_...)." if secured else "No key.")
                + "</p>"
            )
            params = operation.get("parameters", [])
            if params:
                rows = "".join(
                    f"<li><code>{_escape(p['name'])}</code> ({_escape(p['in'])}): "
                    f"{_escape(p.get('description', ''))}</li>"
                    for p in params
                )
                parts.append(f"<p>Parameters:</p><ul>{rows}</ul>")
            body = operation.get("requestBody", {}).get("content", {})
            for media, content in body.items():
                parts.append(
                    f"<p>Body ({_escape(media)}): "
                    f"<code>{_escape(_schema_name(content.get('schema', {})))}</code></p>"
                )
            parts.append(_example(openapi, body))
            statuses = ", ".join(
                f"{_escape(code)} {_escape(response.get('description', ''))}"
                for code, response in operation.get("responses", {}).items()
            )
            parts.append(f"<p>Responses: {statuses}</p>")
            for code in ("200", "201"):
                answer = operation.get("responses", {}).get(code, {}).get("content", {})
                example = _example(openapi, {k: v for k, v in answer.items() if "json" in k})
                if example:
                    parts.append(f"<p>Example answer ({code}):</p>{example}")
            parts.append("</section>")
    schemas = openapi.get("components", {}).get("schemas", {})
    parts.append("<h2>Schemas</h2>")
    for name, schema in schemas.items():
        parts.append(
            f"<h4 id='{_escape(name)}'>{_escape(name)}</h4>"
            f"<pre>{_escape(json.dumps(schema, indent=2))}</pre>"
        )
    parts.append("</body></html>")
    return "".join(parts)
