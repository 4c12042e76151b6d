"""`/docs` and `/redoc` are served from Liaison itself, with a strict CSP, and the OpenAPI
examples of errors tell the truth."""

from __future__ import annotations

import base64
import hashlib
from html.parser import HTMLParser
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from app.main import create_app
from app.routers.docs import REDOC_LOGO_URL
from tests.conftest import settings_for

ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]
        self._in_script = tag == "script" and "src" not in found

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.inline_scripts.append(data)


def _parse(html: str) -> _References:
    parser = _References()
    parser.feed(html)
    return parser


def _csp(response: httpx.Response) -> dict[str, list[str]]:
    policy = response.headers["content-security-policy"]
    return {d.split()[0]: d.split()[1:] for d in (p.strip() for p in policy.split(";"))}


def _sha256(script: str) -> str:
    return f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"


@pytest.mark.parametrize(
    ("page", "assets"),
    [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}),
        ("/redoc", {"redoc.standalone.js", "favicon.png"}),
        ("/docs/oauth2-redirect", set()),
    ],
)
async def test_docs_pages_reference_only_local_assets(
    client: httpx.AsyncClient, page: str, assets: set[str]
) -> None:
    response = await client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    html = response.text
    refs = _parse(html)
    for url in refs.urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, url
        assert parts.path.startswith("/docs/assets/"), url
    named = {urlsplit(url).path.rsplit("/", 1)[1] for url in refs.urls}
    assert named == assets
    assert "googleapis" not in html and "cdn." not in html and "https://" not in html
    for url in refs.urls:
        asset = await client.get(url)
        name = urlsplit(url).path.rsplit("/", 1)[1]
        assert asset.status_code == 200, url
        assert asset.headers["content-type"] == ASSETS[name]
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert int(asset.headers["content-length"]) > 1000
    # The CSP: nothing by default, scripts from here and the page's own inline scripts only.
    policy = _csp(response)
    hashes = sorted(_sha256(script) for script in refs.inline_scripts)
    expected = {
        "default-src": ["'none'"],
        "script-src": ["'self'", *hashes],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "base-uri": ["'none'"],
        "form-action": ["'none'"],
        "frame-ancestors": ["'none'"],
    }
    if page == "/redoc":
        expected["worker-src"] = ["blob:"]
    assert {k: sorted(v) if k == "script-src" else v for k, v in policy.items()} == {
        k: sorted(v) if k == "script-src" else v for k, v in expected.items()
    }
    assert (page == "/redoc") == (not refs.inline_scripts)


async def test_swagger_ui_loads_the_schema_and_the_redirect_from_here(
    client: httpx.AsyncClient,
) -> None:
    html = (await client.get("/docs")).text
    assert "url: '/openapi.json'" in html
    assert "oauth2RedirectUrl: window.location.origin + '/docs/oauth2-redirect'" in html
    assert '"validatorUrl": null' in html
    redoc = (await client.get("/redoc")).text
    assert 'spec-url="/openapi.json"' in redoc


async def test_redoc_is_served_without_its_cdn_logo(client: httpx.AsyncClient) -> None:
    """ReDoc's bundle loads Redocly's logo from a CDN; the copy served points it at nothing.
    When a new build no longer holds that URL, this fails: look again for outside URLs."""
    shipped = resources.files("fastapi_offline").joinpath("static", "redoc.standalone.js")
    original = shipped.read_bytes()
    assert original.count(REDOC_LOGO_URL) == 1
    served = await client.get("/docs/assets/redoc.standalone.js")
    assert served.status_code == 200
    assert REDOC_LOGO_URL not in served.content and b"cdn.redoc.ly" not in served.content
    assert served.content == original.replace(REDOC_LOGO_URL, b"data:,")
    assert served.headers["content-length"] == str(len(served.content))


async def test_an_unknown_docs_asset_is_a_problem_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs/assets/nothing.js")
    assert response.status_code == 404
    assert response.json()["type"] == "urn:liaison:problem:not-found"


async def test_api_responses_carry_no_docs_policy(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert "content-security-policy" not in response.headers


async def test_docs_are_served_in_production() -> None:
    production = settings_for("sqlite+aiosqlite://", environment="production", signing_key="x" * 40)
    transport = httpx.ASGITransport(app=create_app(production))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        for page in ("/docs", "/redoc", "/docs/oauth2-redirect", "/docs/assets/favicon.png"):
            response = await http.get(page)
            assert response.status_code == 200, page
        assert "default-src 'none'" in (await http.get("/docs")).headers["content-security-policy"]


# --- truthful examples ---------------------------------------------------------------------


def _examples(response: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        media["example"] for media in response.get("content", {}).values() if "example" in media
    ]


# The problem type each status is sent with (a 403 is most often a missing scope).
PROBLEM_SLUGS = {
    400: "bad-request",
    401: "unauthenticated",
    403: "insufficient-scope",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    412: "precondition-failed",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-failed",
    428: "precondition-required",
    500: "internal-error",
    503: "service-unavailable",
}


def test_every_error_example_has_its_own_status_and_type() -> None:
    schema = create_app(settings_for("sqlite+aiosqlite://")).openapi()
    checked = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if not status.startswith(("4", "5")):
                    continue
                examples = _examples(response)
                assert examples, (method, path, status)
                for example in examples:
                    assert example["status"] == int(status), (method, path, status)
                    if path == "/oauth/token" and status in ("400", "401", "429"):
                        error = example["error"]
                        assert (status == "401") == (error == "invalid_client")
                        assert (status == "429") == (error == "slow_down")
                        slug = "oauth-" + error.replace("_", "-")
                    else:
                        slug = PROBLEM_SLUGS[int(status)]
                    assert example["type"] == f"urn:liaison:problem:{slug}", (method, path)
                    checked += 1
    assert checked > 500
    assert "insufficient-scope" in str(schema["paths"]["/v1/schools"]["get"]["responses"]["403"])
    assert "unauthenticated" in str(schema["paths"]["/v1/schools"]["get"]["responses"]["401"])


def test_the_identity_provider_is_offered_to_staff_when_configured() -> None:
    settings = settings_for(
        "sqlite+aiosqlite://",
        external_issuer="https://idp.example.org",
        external_jwks_url="https://idp.example.org/jwks",
    )
    schema = create_app(settings).openapi()
    assert set(schema["components"]["securitySchemes"]) == {"Client", "Staff", "LAIdentityProvider"}
    for operations in schema["paths"].values():
        for operation in operations.values():
            security = operation.get("security")
            if security:
                staff = [need["Staff"] for need in security if "Staff" in need]
                idp = [
                    need["LAIdentityProvider"] for need in security if "LAIdentityProvider" in need
                ]
                assert staff == idp and staff
