"""The API docs in a real browser: Debian's chromium, headless, driven by Playwright.

Every request the pages make to a host other than this machine is blocked and recorded
(and the browser cannot resolve any other host), so these tests show the docs working with
no internet access: Swagger UI renders, signs in with client credentials and, with its
default settings, with a staff password, and "Try it out" on `GET /v1/schools` answers
200; ReDoc renders and searches. No page may log an error, break its Content-Security-
Policy or try to reach another host.

The browser is never a downloaded build: `/usr/bin/chromium` (`apt-get install chromium`,
which `.ci/run` does when it is missing). Without it the tests skip on a developer's machine
and fail under CI. Screenshots go to $LIAISON_TEST_ARTEFACTS, else to a temporary folder;
their paths are printed (`pytest -s` or `-rA` shows them).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Locator, Page, Route, expect, sync_playwright

from tests.builders.demo import DemoServer

CHROMIUM = Path("/usr/bin/chromium")
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
# Belt and braces: the browser itself resolves no host but this machine.
NO_OTHER_HOSTS = "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1, EXCLUDE localhost"
WAIT_MS = 30_000
# Records every Content-Security-Policy violation, from before the page's own scripts run.
CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
});
"""
PRACTITIONER = "practitioner@demo.liaison"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; under CI the browser test may not skip")
        pytest.skip(reason)
    # Two shared cores: ReDoc parses a 1 MB bundle and the whole schema before it shows.
    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=[NO_OTHER_HOSTS]
        )
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("LIAISON_TEST_ARTEFACTS")
    folder = Path(configured) if configured else tmp_path_factory.mktemp("docs-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class Watched:
    """A page, and what it did that it should not have."""

    page: Page
    artefacts: Path
    outside: list[str] = field(default_factory=list)  # requests to other hosts, blocked
    errors: list[str] = field(default_factory=list)  # console errors and uncaught exceptions

    def screenshot(self, name: str, request: pytest.FixtureRequest) -> Path:
        path = self.artefacts / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=False)
        request.node.user_properties.append(("screenshot", str(path)))
        print(f"screenshot: {path}")  # noqa: T201
        return path

    def assert_clean(self) -> None:
        violations = self.page.evaluate("window.__cspViolations")
        assert (self.outside, violations, self.errors) == ([], [], [])


@pytest.fixture
def watched(browser: Browser, demo: DemoServer, artefacts: Path) -> Iterator[Watched]:
    context = browser.new_context(base_url=demo.url, viewport={"width": 1280, "height": 900})
    context.add_init_script(CSP_LISTENER)
    page = context.new_page()
    seen = Watched(page, artefacts)

    def only_this_machine(route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            seen.outside.append(route.request.url)
            route.abort("blockedbyclient")

    context.route("**/*", only_this_machine)
    page.on("console", lambda message: message.type == "error" and seen.errors.append(message.text))
    page.on("pageerror", lambda error: seen.errors.append(f"uncaught: {error}"))
    page.set_default_timeout(WAIT_MS)
    try:
        yield seen
    finally:
        context.close()


def open_swagger_ui(page: Page) -> None:
    page.goto("/docs")
    expect(page.locator(".swagger-ui .information-container .title")).to_contain_text("Liaison")
    expect(page.locator(".opblock").first).to_be_visible()


def scheme(page: Page, name: str) -> Locator:
    """One security scheme's part of the Authorize dialog."""
    return page.locator(".modal-ux .auth-container").filter(
        has=page.locator("h4", has_text=f"{name} (OAuth2,")
    )


def authorize(page: Page, name: str, fields: dict[str, str]) -> dict[str, str]:
    """Sign in with one scheme from the Authorize dialog; the token request's headers."""
    page.locator(".auth-wrapper button.authorize").click()
    part = scheme(page, name)
    for selector, value in fields.items():
        part.locator(selector).fill(value)
    with page.expect_response("**/oauth/token") as answer:
        part.locator("button.authorize").click()
    assert answer.value.status == 200, answer.value.text()
    expect(part.locator("h6")).to_have_text("Authorized")
    expect(part.get_by_role("button", name="Remove authorization")).to_have_text("Logout")
    return answer.value.request.all_headers()


def close_dialog(page: Page) -> None:
    page.locator(".modal-ux button.close-modal").click()
    expect(page.locator(".modal-ux")).to_have_count(0)


def try_list_schools(page: Page) -> str:
    """'Try it out' and 'Execute' on GET /v1/schools; the response body shown."""
    operation = page.locator(".opblock-get").filter(
        has=page.locator('.opblock-summary-path[data-path="/v1/schools"]')
    )
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    with page.expect_response("**/v1/schools?*") as answer:
        operation.locator("button.execute").click()
    assert answer.value.status == 200, answer.value.text()
    assert answer.value.request.all_headers()["authorization"].startswith("Bearer ")
    shown = operation.locator(".live-responses-table .response")
    expect(shown.locator(".response-col_status")).to_have_text("200")
    body = shown.locator(".response-col_description pre").first
    expect(body).to_contain_text('"items"')
    shown.scroll_into_view_if_needed()
    return body.inner_text()


def test_swagger_ui_renders_with_nothing_from_another_host(
    watched: Watched, request: pytest.FixtureRequest
) -> None:
    page = watched.page
    open_swagger_ui(page)
    assert page.locator(".opblock").count() > 50
    expect(page.locator(".auth-wrapper button.authorize")).to_be_visible()
    watched.screenshot("docs", request)
    watched.assert_clean()


def test_client_credentials_sign_in_and_try_it_out(
    watched: Watched, demo: DemoServer, request: pytest.FixtureRequest
) -> None:
    page = watched.page
    open_swagger_ui(page)
    secret = demo.client_secret("demo-mis")
    authorize(
        page,
        "Client",
        {"#client_id_clientCredentials": "demo-mis", "#client_secret_clientCredentials": secret},
    )
    # The staff scheme is a scheme of its own: signing a client in does not sign staff in.
    expect(scheme(page, "Staff").locator("h6", has_text="Authorized")).to_have_count(0)
    watched.screenshot("docs-client-authorized", request)
    close_dialog(page)
    body = try_list_schools(page)
    # The demo MIS client reaches one school.
    assert '"990001"' in body and '"990003"' not in body
    watched.screenshot("docs-client-try-it-out", request)
    watched.assert_clean()


def test_staff_password_sign_in_with_the_default_settings_and_try_it_out(
    watched: Watched, demo: DemoServer, request: pytest.FixtureRequest
) -> None:
    page = watched.page
    open_swagger_ui(page)
    headers = authorize(
        page,
        "Staff",
        {"#oauth_username": PRACTITIONER, "#oauth_password": demo.password(PRACTITIONER)},
    )
    # client_id and secret left empty, credentials in the header: Swagger UI's defaults.
    assert headers["authorization"] == "Basic Og=="
    expect(scheme(page, "Client").locator("h6", has_text="Authorized")).to_have_count(0)
    watched.screenshot("docs-staff-authorized", request)
    close_dialog(page)
    body = try_list_schools(page)
    # The practitioner's token was used: two schools in reach.
    assert '"990001"' in body and '"990003"' in body
    watched.screenshot("docs-staff-try-it-out", request)
    watched.assert_clean()


def test_redoc_renders_and_searches_with_nothing_from_another_host(
    watched: Watched, request: pytest.FixtureRequest
) -> None:
    page = watched.page
    page.goto("/redoc")
    expect(page.locator("h1").first).to_have_text("Liaison (0.1.0)")
    expect(page.get_by_role("heading", name="Obtain an access token")).to_be_visible()
    # Redocly's logo would come from their CDN: the copy served points it at nothing.
    footer = page.get_by_role("link", name="API docs by Redocly")
    expect(footer).to_be_visible()
    expect(footer.locator("img")).to_have_count(0)
    # Search runs in a worker ReDoc makes from a blob: (the CSP's worker-src).
    page.get_by_placeholder("Search...").fill("referral")
    expect(page.locator('[data-role="search:results"] li').first).to_be_visible()
    assert page.locator('[data-role="search:results"] li').count() > 5
    watched.screenshot("redoc", request)
    watched.assert_clean()


def test_a_request_to_another_host_is_blocked_and_recorded(watched: Watched) -> None:
    """The guard the tests above rely on: what a page asks of another host never leaves,
    and is seen."""
    page = watched.page
    page.goto("/livez")
    failed = page.evaluate(
        "fetch('http://example.org/probe').then(() => 'answered', (e) => 'failed: ' + e.name)"
    )
    assert failed == "failed: TypeError"
    assert watched.outside == ["http://example.org/probe"]
