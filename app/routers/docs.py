"""`/docs` (Swagger UI) and `/redoc` (ReDoc), served from Liaison itself.

The scripts, styles and favicon come from the pinned `fastapi-offline` package and are
served here, so the docs work where servers have no internet access and no request leaves
the machine (no CDN, no Google Fonts). The pages carry a strict Content-Security-Policy:
scripts only from here plus the hash of each page's own inline script. Styles also allow
'unsafe-inline': Swagger UI sets inline styles (swagger-api/swagger-ui#10655) and ReDoc
injects its styles as `<style>` elements at run time (styled-components).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from importlib import metadata, resources
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse, Response

from app.errors import NotFound

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
ASSETS_URL = "/docs/assets"

_PACKAGE = "fastapi_offline"
_VERSION = metadata.version("fastapi-offline")
_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
# Asset URLs carry the package's version, so a year's caching never serves a stale build.
_ASSET_CACHE = {"Cache-Control": "public, max-age=31536000, immutable"}
# ReDoc's sidebar footer shows Redocly's logo from their CDN whatever its options are; the
# copy served here points that image at an empty data: URL, so the page asks nothing of
# another host and the CSP has nothing to refuse (the image then hides itself; the link and
# its words stay). tests/test_docs.py fails if a new build moves the logo elsewhere.
REDOC_LOGO_URL = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
_REWRITES = {"redoc.standalone.js": (REDOC_LOGO_URL, b"data:,")}

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)

router = APIRouter(include_in_schema=False)


def _asset_url(root: str, name: str) -> str:
    return f"{root}{ASSETS_URL}/{name}?v={_VERSION}"


def content_security_policy(html: str, *, workers: bool = False) -> str:
    """The policy for one docs page: its inline scripts allowed by their hashes only."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(html)
    )
    directives = [
        "default-src 'none'",
        f"script-src 'self' {hashes}".rstrip(),
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
    if workers:
        # ReDoc runs its search index in a worker it builds from a blob.
        directives.append("worker-src blob:")
    return "; ".join(directives)


def _page(response: HTMLResponse, *, workers: bool = False) -> HTMLResponse:
    html = bytes(response.body).decode()
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": content_security_policy(html, workers=workers),
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


def _root(request: Request) -> str:
    root: str = request.scope.get("root_path", "").rstrip("/")
    return root


@router.get(DOCS_URL)
async def swagger_ui(request: Request) -> HTMLResponse:
    app: FastAPI = request.app
    root = _root(request)
    init_oauth: dict[str, Any] | None = app.swagger_ui_init_oauth
    return _page(
        get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=_asset_url(root, "swagger-ui-bundle.js"),
            swagger_css_url=_asset_url(root, "swagger-ui.css"),
            swagger_favicon_url=_asset_url(root, "favicon.png"),
            oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT_URL}",
            init_oauth=init_oauth,
            # No validator badge: it would fetch from validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None},
        )
    )


@router.get(OAUTH2_REDIRECT_URL)
async def swagger_ui_redirect() -> HTMLResponse:
    return _page(get_swagger_ui_oauth2_redirect_html())


@router.get(REDOC_URL)
async def redoc(request: Request) -> HTMLResponse:
    app: FastAPI = request.app
    root = _root(request)
    return _page(
        get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=_asset_url(root, "redoc.standalone.js"),
            redoc_favicon_url=_asset_url(root, "favicon.png"),
            with_google_fonts=False,
        ),
        workers=True,
    )


@functools.cache
def _rewritten(name: str) -> bytes:
    old, new = _REWRITES[name]
    return resources.files(_PACKAGE).joinpath("static", name).read_bytes().replace(old, new)


@router.get(ASSETS_URL + "/{name}")
async def asset(name: str) -> Response:
    media_type = _ASSETS.get(name)
    if media_type is None:
        raise NotFound("No such docs asset.")
    headers = {**_ASSET_CACHE, "X-Content-Type-Options": "nosniff"}
    if name in _REWRITES:
        return Response(_rewritten(name), media_type=media_type, headers=headers)
    path = resources.files(_PACKAGE).joinpath("static", name)
    return FileResponse(str(path), media_type=media_type, headers=headers)
