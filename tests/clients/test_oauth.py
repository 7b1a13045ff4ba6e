"""OAuth 2.0 apps and service accounts: the authorization code flow with requests-oauthlib, then
atlassian-python-api and pycontribs jira on an access token through the gateway form, and a
service account's client credentials. Each test makes a site of its own, and the expiry test a
server of its own; the flow never leaves the server (the callback URL is only read from the
Location header)."""

import json
import os
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from atlassian import Jira, JiraCloud
from bs4 import BeautifulSoup
from jira import JIRA, JIRAError
from oauthlib.oauth2 import BackendApplicationClient, InvalidGrantError, InvalidScopeError
from requests import HTTPError
from requests_oauthlib import OAuth2Session

from conftest import BOB, BOB_AUTH

CALLBACK = "http://127.0.0.1:3000/callback"
SCOPES = ["read:jira-user", "write:jira-work", "read:me", "offline_access"]
CAROL = "5b10ac8d82e05b22cc7d4e01"
SEED = Path(__file__).resolve().parents[2] / "examples" / "seed.json"


@pytest.fixture(autouse=True)
def insecure_transport(monkeypatch):
    # oauthlib refuses plain http unless told otherwise; the server under test is http.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


@pytest.fixture
def admin():
    return {"Authorization": f"Bearer {os.environ['JIRA_USERPROPS_ADMIN_TOKEN']}"}


@dataclass
class Site:
    id: str
    name: str
    gateway: str
    email: str
    api_token: str


@pytest.fixture
def site(url, admin):
    """A site with Carol (an email no other site has, so that login_hint grants this site only)
    and Bob, neither an administrator."""
    name = f"oauth-{uuid.uuid4().hex[:12]}"
    email = f"carol.{name}@example.com"
    seed = {
        "users": [
            {"accountId": CAROL, "email": email, "displayName": "Carol", "apiTokens": [f"{name}-token"]},
            {"accountId": BOB, "email": "bob@example.com", "displayName": "Bob"},
        ],
        "properties": [{"accountId": BOB, "key": "bob.only", "value": "bob's"}],
    }
    created = requests.post(f"{url}/_admin/sites", headers=admin, json={"name": name, "seed": seed})
    assert created.status_code == 201, created.text
    body = created.json()
    yield Site(id=body["id"], name=name, gateway=body["gatewayUrl"], email=email, api_token=f"{name}-token")
    assert requests.delete(f"{url}/_admin/sites/{body['id']}", headers=admin).status_code == 204


def register(url, admin, app):
    created = requests.post(f"{url}/_admin/apps", headers=admin, json=app)
    assert created.status_code == 201, created.text
    return created.json()


@pytest.fixture
def apps(url, admin):
    """Registers apps for one test and deletes them after it."""
    made = []

    def make(**app):
        made.append(register(url, admin, app))
        return made[-1]

    yield make
    for app in made:
        assert requests.delete(f"{url}/_admin/apps/{app['clientId']}", headers=admin).status_code == 204


def oauth2_app(apps, scopes=SCOPES):
    return apps(name="Acme sync", kind="oauth2", callbackUrl=CALLBACK, scopes=scopes, autoConsent=True)


def bearer(access_token):
    return {"Authorization": f"Bearer {access_token}"}


def authorize(url, app, login_hint):
    """The whole flow with plain requests: /authorize with login_hint, then the code for tokens
    in a JSON body, as Atlassian's documentation shows it."""
    query = {
        "audience": "api.atlassian.com",
        "client_id": app["clientId"],
        "scope": " ".join(app["scopes"]),
        "redirect_uri": CALLBACK,
        "state": "s",
        "response_type": "code",
        "prompt": "consent",
        "login_hint": login_hint,
    }
    redirect = requests.get(f"{url}/authorize", params=query, allow_redirects=False)
    assert redirect.status_code == 302, redirect.text
    code = parse_qs(urlsplit(redirect.headers["Location"]).query)["code"][0]
    tokens = requests.post(
        f"{url}/oauth/token",
        json={
            "grant_type": "authorization_code",
            "client_id": app["clientId"],
            "client_secret": app["clientSecret"],
            "code": code,
            "redirect_uri": CALLBACK,
        },
    )
    assert tokens.status_code == 200, tokens.text
    return tokens.json()


def cloud_id(url):
    return requests.get(f"{url}/_edge/tenant_info").json()["cloudId"]


def sign_in(session, url, app, login_hint):
    """requests-oauthlib's authorization URL, followed without a browser: an autoConsent app
    with login_hint is redirected to the callback at once."""
    authorization_url, state = session.authorization_url(
        f"{url}/authorize", audience="api.atlassian.com", prompt="consent", login_hint=login_hint
    )
    redirect = requests.get(authorization_url, allow_redirects=False)
    assert redirect.status_code == 302, redirect.text
    location = redirect.headers["Location"]
    assert location.startswith(f"{CALLBACK}?")
    assert parse_qs(urlsplit(location).query)["state"] == [state]
    # Form body, client id and secret in a Basic header: requests-oauthlib's default.
    return session.fetch_token(f"{url}/oauth/token", authorization_response=location, client_secret=app["clientSecret"])


def test_oauth2_session_signs_in_calls_through_the_gateway_and_refreshes(url, site, apps):
    app = oauth2_app(apps)
    session = OAuth2Session(app["clientId"], redirect_uri=CALLBACK, scope=SCOPES)
    token = sign_in(session, url, app, site.email)
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 3600
    assert sorted(token["scope"]) == sorted(SCOPES)
    assert token["refresh_token"]

    property_url = f"{site.gateway}/rest/api/3/user/properties/oauth.session"
    params = {"accountId": CAROL}
    assert session.put(property_url, params=params, json={"theme": "dark"}).status_code == 201
    read = session.get(property_url, params=params)
    assert read.status_code == 200
    assert read.json() == {"key": "oauth.session", "value": {"theme": "dark"}}

    first = dict(token)
    # Client credentials in the form body this time.
    refreshed = session.refresh_token(
        f"{url}/oauth/token", client_id=app["clientId"], client_secret=app["clientSecret"]
    )
    assert refreshed["access_token"] != first["access_token"]
    assert refreshed["refresh_token"] != first["refresh_token"]
    assert session.put(property_url, params=params, json={"theme": "light"}).status_code == 200
    read = requests.get(property_url, params=params, headers=bearer(refreshed["access_token"]))
    assert read.json() == {"key": "oauth.session", "value": {"theme": "light"}}

    # The app acts for Carol: Jira's own rule still keeps Bob's properties from her.
    refused = session.get(f"{site.gateway}/rest/api/3/user/properties", params={"accountId": BOB})
    assert refused.status_code == 403
    assert refused.json()["errorMessages"] == ["You do not have permission to access the properties of this user."]


def test_accessible_resources_and_me_describe_the_grant(url, site, apps):
    app = oauth2_app(apps)
    session = OAuth2Session(app["clientId"], redirect_uri=CALLBACK, scope=SCOPES)
    sign_in(session, url, app, site.email)
    resources = session.get(f"{url}/oauth/token/accessible-resources")
    assert resources.status_code == 200
    # Carol's email is in this site only, so the grant covers this site only.
    [resource] = resources.json()
    assert resource["id"] == site.id
    assert resource["name"] == site.name
    assert sorted(resource["scopes"]) == sorted(SCOPES)
    me = session.get(f"{url}/me").json()
    assert (me["account_id"], me["email"], me["name"]) == (CAROL, site.email, "Carol")
    # Bob is in this site and in default: login_hint (here his accountId) grants both.
    token = authorize(url, app, BOB)
    resources = requests.get(f"{url}/oauth/token/accessible-resources", headers=bearer(token["access_token"])).json()
    assert {site.id, cloud_id(url)} <= {resource["id"] for resource in resources}


def test_an_access_token_works_only_through_the_gateway_of_a_granted_site(url, site, apps):
    token = authorize(url, oauth2_app(apps), site.email)
    headers = bearer(token["access_token"])
    assert requests.get(f"{site.gateway}/rest/api/3/myself", headers=headers).status_code == 200
    # The same site by its own host, where Carol's API token works: an access token is no API token.
    own_host = {"Host": f"{site.name}.localhost"}
    assert requests.get(f"{url}/rest/api/3/myself", headers=own_host, auth=(site.email, site.api_token)).ok
    assert requests.get(f"{url}/rest/api/3/myself", headers={**headers, **own_host}).status_code == 401
    # The default site, which the grant does not cover.
    other = requests.get(f"{url}/ex/jira/{cloud_id(url)}/rest/api/3/myself", headers=headers)
    assert other.status_code == 401


def recording(statuses):
    """A requests-oauthlib compliance hook that notes each token response's status: oauthlib's
    errors carry the status their RFC gives, not the one received."""

    def hook(response):
        statuses.append(response.status_code)
        return response

    return hook


def test_refresh_with_an_unknown_token_raises_invalid_grant(url, apps):
    app = oauth2_app(apps)
    session = OAuth2Session(app["clientId"], scope=SCOPES)
    statuses = []
    session.register_compliance_hook("refresh_token_response", recording(statuses))
    with pytest.raises(InvalidGrantError) as raised:
        session.refresh_token(
            f"{url}/oauth/token",
            refresh_token="never-issued",
            client_id=app["clientId"],
            client_secret=app["clientSecret"],
        )
    assert statuses == [403]
    assert raised.value.description == "Unknown or invalid refresh token."


def test_the_consent_page_signs_in_with_an_api_token_and_grants_the_ticked_site(url, site, apps):
    # Bob signs in with his token of the default site and ticks only the new site.
    app = apps(name="Acme sync", kind="oauth2", callbackUrl=CALLBACK, scopes=SCOPES, autoConsent=False)
    session = OAuth2Session(app["clientId"], redirect_uri=CALLBACK, scope=SCOPES)
    authorization_url, state = session.authorization_url(f"{url}/authorize", audience="api.atlassian.com")
    page = requests.get(authorization_url, allow_redirects=False)
    assert page.status_code == 200
    form = BeautifulSoup(page.text, "html.parser").find("form")
    fields = [(field["name"], field["value"]) for field in form.find_all("input", type="hidden")]
    sites = [box["value"] for box in form.find_all("input", type="checkbox", attrs={"name": "site"})]
    assert site.name in sites and "default" in sites
    fields += [("email", BOB_AUTH[0]), ("token", BOB_AUTH[1]), ("site", site.name), ("decision", "accept")]
    redirect = requests.post(f"{url}{form['action']}", data=fields, allow_redirects=False)
    assert redirect.status_code == 302, redirect.text
    session.fetch_token(
        f"{url}/oauth/token", authorization_response=redirect.headers["Location"], client_secret=app["clientSecret"]
    )
    assert [resource["id"] for resource in session.get(f"{url}/oauth/token/accessible-resources").json()] == [site.id]
    assert session.get(f"{site.gateway}/rest/api/2/myself").json()["accountId"] == BOB
    assert session.get(f"{url}/ex/jira/{cloud_id(url)}/rest/api/2/myself").status_code == 401


def atlassian_oauth2(app, token):
    return {"client_id": app["clientId"], "token": {"access_token": token["access_token"], "token_type": "Bearer"}}


def test_atlassian_python_api_sets_and_reads_a_property_with_an_access_token(url, site, apps):
    app = oauth2_app(apps)
    token = authorize(url, app, site.email)
    # cloud=True, or the legacy class sends `username`, which Jira Cloud refuses.
    jira = Jira(url=site.gateway, oauth2=atlassian_oauth2(app, token), cloud=True)
    value = {"b": [1, 2.5, None], "a": "ü"}
    jira.user_set_property(account_id=CAROL, key_property="py.oauth", value_property=value)
    assert jira.user_property(account_id=CAROL, key_property="py.oauth") == {"key": "py.oauth", "value": value}

    cloud = JiraCloud(site.gateway, oauth2=atlassian_oauth2(app, token), api_version=3)
    assert cloud.get_user_property("py.oauth", account_id=CAROL) == {"key": "py.oauth", "value": value}
    assert "py.oauth" in [entry["key"] for entry in cloud.get_user_property_keys(account_id=CAROL)["keys"]]
    with pytest.raises(HTTPError) as raised:
        cloud.get_user_property_keys(account_id=BOB)
    assert raised.value.response.status_code == 403


def test_atlassian_python_api_is_refused_a_write_its_scopes_do_not_allow(url, site, apps):
    app = oauth2_app(apps, scopes=["read:jira-user"])
    token = authorize(url, app, site.email)
    assert "refresh_token" not in token  # no offline_access
    jira = JiraCloud(site.gateway, oauth2=atlassian_oauth2(app, token), api_version=3)
    with pytest.raises(HTTPError) as raised:
        jira.set_user_property("py.readonly", account_id=CAROL, data={"n": 1})
    refused = raised.value.response
    assert refused.status_code == 401
    assert refused.headers["X-Failure-Category"] == "FAILURE_CLIENT_SCOPE_CHECK"
    assert refused.json() == {"code": 401, "message": "Unauthorized; scope does not match"}
    # Reading is within read:jira-user, and the refused write left nothing behind.
    keys = jira.get_user_property_keys(account_id=CAROL)
    assert keys == {"keys": []}


def test_pycontribs_jira_with_token_auth_through_the_gateway(url, site, apps):
    token = authorize(url, oauth2_app(apps), site.email)
    # The constructor reads serverInfo, through the gateway like every other call.
    jira = JIRA(server=site.gateway, token_auth=token["access_token"])
    assert jira._is_cloud
    assert jira.server_info()["baseUrl"] == site.gateway
    me = jira.myself()
    assert (me["accountId"], me["emailAddress"]) == (CAROL, site.email)
    property_url = jira._get_url("user/properties/pycontribs.oauth")
    params = {"accountId": CAROL}
    assert jira._session.put(property_url, params=params, data=json.dumps([1, "two"])).status_code == 201
    assert jira._session.get(property_url, params=params).json() == {"key": "pycontribs.oauth", "value": [1, "two"]}
    assert jira._session.delete(property_url, params=params).status_code == 204
    with pytest.raises(JIRAError) as raised:
        JIRA(server=url, token_auth=token["access_token"]).myself()
    assert raised.value.status_code == 401


def test_a_service_account_works_through_the_gateway_with_client_credentials(url, admin, site, apps):
    account = apps(
        name="Nightly sync",
        kind="serviceAccount",
        scopes=["read:jira-user", "write:jira-work"],
        sites=[site.name],
        admin=True,
    )
    assert account["accountId"] == f"712020:{account['clientId']}"
    assert account["email"].endswith("@serviceaccount.atlassian.com")

    session = OAuth2Session(client=BackendApplicationClient(client_id=account["clientId"]))
    # include_client_id: grant_type, client_id and client_secret all in the form body.
    token = session.fetch_token(
        f"{url}/oauth/token",
        client_id=account["clientId"],
        client_secret=account["clientSecret"],
        include_client_id=True,
    )
    assert token["token_type"] == "Bearer"
    assert "refresh_token" not in token
    me = session.get(f"{site.gateway}/rest/api/3/myself").json()
    assert (me["accountId"], me["emailAddress"]) == (account["accountId"], account["email"])

    # An administrator service account writes Carol's property; Carol reads it with her API token.
    property_url = f"{site.gateway}/rest/api/3/user/properties/sync.cursor"
    assert session.put(property_url, params={"accountId": CAROL}, json={"page": 7}).status_code == 201
    read = requests.get(property_url, params={"accountId": CAROL}, auth=(site.email, site.api_token))
    assert read.json() == {"key": "sync.cursor", "value": {"page": 7}}
    # Its sites only.
    assert session.get(f"{url}/ex/jira/{cloud_id(url)}/rest/api/3/myself").status_code == 401


def test_client_credentials_refuse_a_scope_parameter(url, site, apps):
    account = apps(name="Scoped", kind="serviceAccount", scopes=["read:jira-user"], sites=[site.name])
    session = OAuth2Session(client=BackendApplicationClient(client_id=account["clientId"]))
    statuses = []
    session.register_compliance_hook("access_token_response", recording(statuses))
    with pytest.raises(InvalidScopeError):
        session.fetch_token(
            f"{url}/oauth/token",
            client_id=account["clientId"],
            client_secret=account["clientSecret"],
            include_client_id=True,
            scope=["read:jira-user"],
        )
    assert statuses == [400]


def test_deleting_a_service_account_revokes_its_tokens_and_removes_its_user(url, admin, site):
    account = register(
        url,
        admin,
        {"name": "Short lived", "kind": "serviceAccount", "scopes": ["read:jira-user"], "sites": [site.name]},
    )
    token = requests.post(
        f"{url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(account["clientId"], account["clientSecret"]),
    )
    assert token.status_code == 200, token.text
    headers = bearer(token.json()["access_token"])
    assert requests.get(f"{site.gateway}/rest/api/3/myself", headers=headers).status_code == 200
    assert requests.delete(f"{url}/_admin/apps/{account['clientId']}", headers=admin).status_code == 204
    assert requests.get(f"{site.gateway}/rest/api/3/myself", headers=headers).status_code == 401
    user = requests.get(f"{url}/_admin/sites/{site.name}/users/{account['accountId']}", headers=admin)
    assert user.status_code == 404


TTL = 2


@pytest.fixture(scope="module")
def short_ttl():
    """A server of its own whose access tokens live TTL seconds. The binary is run.sh's."""
    binary = os.environ.get("JIRA_USERPROPS_BIN")
    if not binary:
        pytest.skip("JIRA_USERPROPS_BIN names no binary (tests/clients/run.sh sets it)")
    admin_token = os.environ["JIRA_USERPROPS_ADMIN_TOKEN"]
    with tempfile.TemporaryFile() as log:
        args = [binary, "--listen", "127.0.0.1:0", "--database-url", "sqlite::memory:", "--seed", str(SEED)]
        args += ["--log-format", "json", "--admin-token", admin_token, "--oauth-token-ttl", str(TTL)]
        server = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        try:
            address = None
            for _ in range(100):
                log.seek(0)
                for line in log.read().decode().splitlines():
                    if line.startswith("{") and json.loads(line)["fields"].get("message") == "listening":
                        address = json.loads(line)["fields"]["address"]
                if address or server.poll() is not None:
                    break
                time.sleep(0.1)
            log.seek(0)
            assert address, f"the server did not start:\n{log.read().decode()}"
            yield f"http://{address}", {"Authorization": f"Bearer {admin_token}"}
        finally:
            server.terminate()
            server.wait(timeout=15)


def test_an_expired_access_token_is_refused_until_the_session_refreshes_it(short_ttl):
    url, admin = short_ttl
    app = register(
        url, admin, {"name": "Expiry", "kind": "oauth2", "callbackUrl": CALLBACK, "scopes": SCOPES, "autoConsent": True}
    )
    updates = []
    session = OAuth2Session(
        app["clientId"],
        redirect_uri=CALLBACK,
        scope=SCOPES,
        auto_refresh_url=f"{url}/oauth/token",
        auto_refresh_kwargs={"client_id": app["clientId"], "client_secret": app["clientSecret"]},
        token_updater=updates.append,
    )
    token = sign_in(session, url, app, "bob@example.com")
    assert token["expires_in"] == TTL
    gateway = f"{url}/ex/jira/{cloud_id(url)}/rest/api/3"
    assert session.get(f"{gateway}/myself").status_code == 200

    time.sleep(max(0.0, token["expires_at"] - time.time()) + 1)
    stale = bearer(token["access_token"])
    assert requests.get(f"{gateway}/myself", headers=stale).status_code == 401
    me = requests.get(f"{url}/me", headers=stale)
    assert me.status_code == 401
    assert me.json() == {"code": 401, "message": "Unauthorized"}

    # The session sees the token's expiry, refreshes it with the refresh token, and goes on.
    read = session.get(f"{gateway}/myself")
    assert read.status_code == 200
    assert read.json()["accountId"] == BOB
    assert len(updates) == 1
    assert updates[0]["access_token"] != token["access_token"]
    assert requests.get(f"{url}/me", headers=bearer(updates[0]["access_token"])).json()["account_id"] == BOB
