"""atlassian-python-api against the server: the legacy Jira class and JiraCloud (v2 and v3)."""

import pytest
from atlassian import Jira, JiraCloud
from requests import HTTPError

from conftest import ADMIN, BOB, BOB_AUTH


def legacy(url):
    # Without cloud=True the legacy class sends `username`, which Jira Cloud refuses.
    email, token = BOB_AUTH
    return Jira(url=url, username=email, password=token, cloud=True)


def cloud(url, api_version):
    email, token = BOB_AUTH
    return JiraCloud(url, username=email, password=token, api_version=api_version)


def keys_of(listing):
    return [entry["key"] for entry in listing["keys"]]


def test_legacy_jira_methods_round_trip_a_property(url):
    jira = legacy(url)
    assert "my.key" in keys_of(jira.user_properties(account_id=BOB))
    value = {"b": [1, 2.5, None], "a": "ü"}
    jira.user_set_property(account_id=BOB, key_property="py.legacy", value_property=value)
    assert jira.user_property(account_id=BOB, key_property="py.legacy") == {"key": "py.legacy", "value": value}
    assert "py.legacy" in keys_of(jira.user_properties(account_id=BOB))
    jira.user_delete_property(account_id=BOB, key_property="py.legacy")
    assert "py.legacy" not in keys_of(jira.user_properties(account_id=BOB))


@pytest.mark.parametrize("api_version", [2, 3])
def test_jira_cloud_methods_round_trip_a_property(url, api_version):
    jira = cloud(url, api_version)
    key = f"py.cloud.v{api_version}"
    jira.set_user_property(key, account_id=BOB, data={"theme": "dark"})
    response = jira.set_user_property(key, account_id=BOB, data={"theme": "light"}, advanced_mode=True)
    assert response.status_code == 200
    assert jira.get_user_property(key, account_id=BOB) == {"key": key, "value": {"theme": "light"}}
    listing = jira.get_user_property_keys(account_id=BOB)
    entry = next(entry for entry in listing["keys"] if entry["key"] == key)
    assert entry["self"].endswith(f"/rest/api/{api_version}/user/properties/{key}?accountId={BOB}")
    deleted = jira.delete_user_property(key, account_id=BOB, advanced_mode=True)
    assert deleted.status_code == 204


@pytest.mark.parametrize("api_version", [2, 3])
def test_a_missing_property_raises_with_jiras_message(url, api_version):
    jira = cloud(url, api_version)
    with pytest.raises(HTTPError) as raised:
        jira.get_user_property("py.never.set", account_id=BOB)
    assert raised.value.response.status_code == 404
    assert str(raised.value) == "The property py.never.set does not exist."


@pytest.mark.parametrize("api_version", [2, 3])
def test_another_users_properties_raise_403_with_jiras_message(url, api_version):
    jira = cloud(url, api_version)
    with pytest.raises(HTTPError) as raised:
        jira.get_user_property_keys(account_id=ADMIN)
    assert raised.value.response.status_code == 403
    assert str(raised.value) == "You do not have permission to access the properties of this user."


def test_wrong_credentials_raise_401(url):
    jira = JiraCloud(url, username="bob@example.com", password="wrong", api_version=3)
    with pytest.raises(HTTPError) as raised:
        jira.get_user_property_keys(account_id=BOB)
    # Jira's 401 body has no errorMessages, so the client's own message is generic, as with Jira.
    assert raised.value.response.status_code == 401
    assert raised.value.response.json() == {
        "message": "Client must be authenticated to access this resource.",
        "status-code": 401,
    }
