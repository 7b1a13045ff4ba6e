"""The web console in a real browser: headless Chromium, driven by Playwright.

Each test signs in in a fresh tab and checks one thing a developer does with the console; each
page it passes through is saved under target/ui-screenshots/.
"""

import base64
import json
import os
import pathlib
import re
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect, sync_playwright

ADMIN_TOKEN = "console-admin-token"
BOB = "5b10ac8d82e05b22cc7d4ef5"
BOB_AUTH = ("bob@example.com", "bob-token")
ADMIN_AUTH = ("ada@example.com", "ada-token")
SHOTS = pathlib.Path(__file__).resolve().parents[2] / "target" / "ui-screenshots"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def start_server(*options):
    """The binary over a database in memory with the admin token and `options`: (process, URL)."""
    binary = os.environ["JIRA_USERPROPS_BIN"]
    log = tempfile.NamedTemporaryFile("w+", suffix=".log")
    process = subprocess.Popen(
        [binary, "--listen", "127.0.0.1:0", "--database-url", "sqlite::memory:",
         "--admin-token", ADMIN_TOKEN, "--log-format", "json", *options],
        stdout=log, stderr=subprocess.STDOUT)
    for _ in range(100):
        log.seek(0)
        found = re.search(r'"address":"([^"]+)"', log.read())
        if found:
            return process, f"http://{found.group(1)}"
        time.sleep(0.1)
    process.terminate()
    raise AssertionError("the server did not start")


@pytest.fixture(scope="session")
def server():
    root = pathlib.Path(__file__).resolve().parents[2]
    process, url = start_server("--seed", str(root / "examples" / "seed.json"),
                                "--journal-bodies", "--login-failures", "0")
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="session")
def browser():
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        executable = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium") or None
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


class Console:
    """One tab of the console, with what it noticed: dialogs and policy violations."""

    def __init__(self, page, server):
        self.page = page
        self.server = server
        self.dialogs = []
        self.violations = []
        page.on("dialog", self._dialog)
        page.on("console", self._console)

    def _dialog(self, dialog):
        # The console asks before deleting a site; any other dialog is a script that ran.
        if dialog.type == "confirm" and dialog.message.startswith("Delete site "):
            dialog.accept()
        else:
            self.dialogs.append(dialog.message)
            dialog.dismiss()

    def _console(self, message):
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            self.violations.append(message.text)

    def sign_in(self, token=ADMIN_TOKEN):
        self.page.goto(self.server + "/_admin/ui/")
        self.page.get_by_label("Admin token").fill(token)
        self.page.get_by_role("button", name="Sign in").click()

    def go(self, view):
        if self.page.url.endswith("#" + view):
            self.page.reload()
        else:
            self.page.evaluate("view => { location.hash = view; }", "#" + view)

    def shot(self, name):
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def heading(self, text):
        expect(self.page.get_by_role("heading", level=1)).to_have_text(text)


@pytest.fixture
def console(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    console = Console(page, server)
    yield console
    assert console.violations == [], "the page broke its own security policy"
    context.close()


def api(server, method, path, auth=BOB_AUTH, body=None):
    """A Jira REST call as an integration makes it: (status, parsed body or None)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(server + path, data=data, method=method)
    credentials = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    request.add_header("Authorization", "Basic " + credentials)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request) as response:
            text = response.read()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        return error.code, None


def test_signing_in_shows_the_sites_and_a_wrong_token_shows_the_sign_in_form(console):
    page = console.page
    page.goto(console.server + "/_admin/ui/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.locator("#view")).to_be_hidden()
    console.shot("sign-in")

    console.sign_in("not-the-token")
    expect(page.locator("#sign-in-error")).to_have_text("The admin token was not accepted.")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    console.sign_in()
    console.heading("Sites")
    expect(page.get_by_role("link", name="default", exact=True)).to_be_visible()
    console.shot("sites")

    # An address the console has no view for says so, in the page's own shape.
    console.go("/no/such/view")
    console.heading("No such page")
    # An address that walks out of the console's views shows the sites: the admin token goes
    # to no other route.
    console.go("/no/../../../../healthz")
    console.heading("Sites")
    console.go("/no/such/view")
    console.heading("No such page")
    page.get_by_role("link", name="Back to the sites").click()
    console.heading("Sites")
    # Any other refusal says its status and the server's message.
    console.go("/sites/default/requests/clear")
    console.heading("The server answered 405")
    expect(page.get_by_role("alert")).to_contain_text("The method is not allowed for this resource.")
    page.get_by_role("link", name="Back to the sites").click()
    console.heading("Sites")

    # A token that stops working (changed, or typed wrong in another tab) brings the form back.
    page.evaluate("sessionStorage.setItem('jira-userprops.admin-token', 'stale')")
    page.reload()
    expect(page.locator("#sign-in-error")).to_have_text("The admin token was not accepted.")
    expect(page.locator("#view")).to_be_hidden()
    assert ADMIN_TOKEN not in page.url


def test_too_many_failed_sign_ins_say_so_and_keep_the_token(browser):
    """A throttled sign-in is not called a wrong token: the form says to wait."""
    process, url = start_server("--login-failures", "2", "--login-failure-window", "60")
    try:
        context = browser.new_context()
        console = Console(context.new_page(), url)
        for _ in range(2):
            console.sign_in("not-the-token")
            expect(console.page.locator("#sign-in-error")).to_have_text(
                "The admin token was not accepted.")
        console.sign_in()
        expect(console.page.locator("#sign-in-error")).to_contain_text(
            "Too many failed sign-ins from this address: try again in")
        stored = console.page.evaluate("sessionStorage.getItem('jira-userprops.admin-token')")
        assert stored == ADMIN_TOKEN, "the token, not judged, is kept"
        assert console.violations == []
        context.close()
    finally:
        process.terminate()
        process.wait(10)


def test_a_site_is_made_and_deleted(console):
    page = console.page
    console.sign_in()
    page.get_by_label("Name").fill("acme")
    page.get_by_role("button", name="Make site").click()
    expect(page.get_by_role("status")).to_have_text("Site acme made.")
    expect(page.get_by_role("link", name="acme", exact=True)).to_be_visible()

    page.get_by_label("Name").fill("Not A Name!")
    page.get_by_role("button", name="Make site").click()
    expect(page.locator("#site-name-error")).to_be_visible()

    page.get_by_role("button", name="Delete site acme").click()
    expect(page.get_by_role("status")).to_contain_text("Site acme deleted")
    expect(page.get_by_role("link", name="acme", exact=True)).to_have_count(0)


def test_a_user_and_a_token_made_in_the_console_sign_in_to_the_api(console):
    page = console.page
    console.sign_in()
    console.go("/sites/default/users")
    console.heading("Users of default")
    console.shot("users")
    page.get_by_label("Display name").fill("Carol Console")
    page.get_by_label("Email").fill("carol@example.com")
    page.get_by_label("accountId").fill("carol-console-0001")
    page.get_by_role("button", name="Add user").click()
    console.heading("Carol Console")
    assert page.url.endswith("#/sites/default/users/carol-console-0001")

    page.get_by_role("button", name="Create API token").click()
    secret = page.locator("#new-token")
    expect(secret).to_be_visible()
    expect(page.get_by_role("button", name="Copy")).to_be_visible()
    console.shot("user-token")
    token = secret.inner_text()
    status, me = api(console.server, "GET", "/rest/api/3/myself",
                     auth=("carol@example.com", token))
    assert status == 200 and me["accountId"] == "carol-console-0001"

    # Revoked in the console, refused by the API.
    page.get_by_role("button", name=re.compile("^Revoke token ")).click()
    expect(page.get_by_role("status")).to_contain_text("revoked")
    status, _ = api(console.server, "GET", "/rest/api/3/myself",
                    auth=("carol@example.com", token))
    assert status == 401

    # Administer Jira granted in the console lets Carol act on Bob's record.
    page.get_by_role("button", name="Grant Administer Jira for Carol Console").click()
    expect(page.get_by_role("status")).to_contain_text("holds Administer Jira")


def test_a_property_added_and_edited_in_the_console_is_what_the_api_returns(console):
    page = console.page
    console.sign_in()
    console.go(f"/sites/default/users/{BOB}")
    console.heading("Bob")
    form = page.locator("#new-property-key")
    form.fill("console.theme")
    page.locator("#new-property-value").fill('{"mode": "dark"}')
    page.get_by_role("button", name="Add property").click()
    expect(page.get_by_role("status")).to_have_text("Property console.theme created.")

    # The API's own rules, with its messages beside the field; nothing stored.
    page.locator("#new-property-key").fill("console.broken")
    page.locator("#new-property-value").fill("{'single': 'quotes'}")
    page.get_by_role("button", name="Add property").click()
    expect(page.locator("#new-property-value-error")).to_have_text(
        "The property value must be valid JSON.")
    page.locator("#new-property-value").fill("[" + "1," * 17000 + "1]")
    page.get_by_role("button", name="Add property").click()
    expect(page.locator("#new-property-value-error")).to_have_text(
        "The JSON data provided for the property is too long. Maximum length is 32,768 bytes.")
    status, _ = api(console.server, "GET",
                    f"/rest/api/3/user/properties/console.broken?accountId={BOB}")
    assert status == 404

    article = page.locator("article.property", has=page.locator("h3", has_text="console.theme"))
    article.get_by_text("Edit").click()
    article.get_by_label(re.compile("^Value")).fill('{"mode": "light", "size": 3}')
    article.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Property console.theme saved.")
    console.shot("user-properties")

    status, body = api(console.server, "GET",
                       f"/rest/api/3/user/properties/console.theme?accountId={BOB}")
    assert status == 200
    assert body["value"] == {"mode": "light", "size": 3}


def test_a_put_appears_in_the_journal_without_reloading(console):
    page = console.page
    console.sign_in()
    console.go("/sites/default/requests")
    console.heading("Requests to default")
    page.evaluate("window.notReloaded = true")
    status, _ = api(console.server, "PUT",
                    f"/rest/api/3/user/properties/journal.live?accountId={BOB}", body={"n": 1})
    assert status == 201
    row = page.locator("#journal tr", has_text="journal.live")
    expect(row).to_contain_text("PUT", timeout=5000)
    expect(row).to_contain_text("201")
    assert page.evaluate("window.notReloaded") is True
    console.shot("requests")

    row.get_by_role("link").click()
    console.heading(f"PUT /rest/api/3/user/properties/journal.live")
    expect(page.locator("dl.facts")).to_contain_text(BOB)
    expect(page.get_by_text("Basic [hidden]")).to_be_visible()
    assert "bob-token" not in page.content()
    expect(page.locator(".json")).to_contain_text('"n"')
    console.shot("request")


def test_a_rate_limit_turned_on_in_the_console_answers_429_and_is_listed(console):
    page = console.page
    console.sign_in()
    console.go("/sites/default/faults")
    console.heading("Faults and rate limits of default")
    page.get_by_label("Requests per window").fill("1")
    page.get_by_label("Window (seconds)").fill("60")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_role("status")).to_have_text("The rules are in force.")
    expect(page.locator("pre.json")).to_contain_text('"limit": 1')

    path = f"/rest/api/3/user/properties?accountId={BOB}"
    statuses = [api(console.server, "GET", path)[0] for _ in range(2)]
    assert statuses == [200, 429]
    console.go("/sites/default/faults")
    expect(page.locator("td", has_text="0.0 of 1")).to_be_visible()
    console.shot("faults")

    console.go("/sites/default/requests")
    page.get_by_label("Status").fill("429")
    page.get_by_role("button", name="Filter").click()
    assert page.url.endswith("#/sites/default/requests?status=429")
    rows = page.locator("#journal tbody tr")
    expect(rows.first).to_contain_text("429")
    assert all("429" in text for text in rows.all_inner_texts())

    console.go("/sites/default/faults")
    page.get_by_role("button", name="Turn all off").click()
    expect(page.get_by_role("status")).to_contain_text("No faults")
    assert api(console.server, "GET", path)[0] == 200


@pytest.mark.parametrize("value", [
    "<script>alert(1)</script>",
    {"x": "</pre><img src=x onerror=alert(1)>"},
])
def test_markup_in_a_value_is_shown_as_text_and_runs_nothing(console, value):
    key = "xss." + ("string" if isinstance(value, str) else "object")
    status, _ = api(console.server, "PUT",
                    f"/rest/api/3/user/properties/{key}?accountId={BOB}", body=value)
    assert status in (200, 201)
    page = console.page
    console.sign_in()
    console.go(f"/sites/default/users/{BOB}")
    article = page.locator("article.property", has=page.locator("h3", has_text=key))
    literal = value if isinstance(value, str) else value["x"]
    expect(article.locator(".json")).to_contain_text(literal)
    assert page.locator("#view img").count() == 0
    assert page.locator("#view script").count() == 0
    page.wait_for_timeout(300)
    assert console.dialogs == []
    console.shot(f"xss-{key}")


def test_pages_fit_a_phone_and_follow_the_dark_preference(console):
    page = console.page
    console.sign_in()
    page.set_viewport_size({"width": 360, "height": 740})
    for view in ["/sites", "/sites/default/users", f"/sites/default/users/{BOB}",
                 "/sites/default/requests", "/sites/default/faults"]:
        console.go(view)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        page.wait_for_timeout(100)
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= 360, f"{view} is {overflow} px wide"
    console.shot("phone-faults")

    light = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.emulate_media(color_scheme="dark")
    dark = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert light != dark
    console.go(f"/sites/default/users/{BOB}")
    console.heading("Bob")
    console.shot("dark-user")


def test_every_control_has_a_label_and_keyboard_focus_is_visible(console):
    page = console.page
    console.sign_in()
    for view in ["/sites", "/sites/default/users", f"/sites/default/users/{BOB}",
                 "/sites/default/requests", "/sites/default/faults"]:
        console.go(view)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        page.wait_for_timeout(100)
        unlabelled = page.evaluate("""() => [...document.querySelectorAll(
              '#view input:not([type=hidden]), #view select, #view textarea, #view button')]
            .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                         && !e.textContent.trim())
            .map(e => e.outerHTML)""")
        assert unlabelled == [], view
    page.keyboard.press("Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert page.evaluate("document.activeElement !== document.body")
    assert outline != "none"
