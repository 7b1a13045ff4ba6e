"""pycontribs jira against the server: constructed the normal way, then the four operations."""

import json

import pytest
from jira import JIRA, JIRAError

from conftest import BOB, BOB_AUTH


@pytest.fixture
def jira(url):
    # The constructor reads serverInfo: the deployment type and version decide its behaviour.
    return JIRA(server=url, basic_auth=BOB_AUTH)


def test_the_client_sees_jira_cloud(jira, url):
    info = jira.server_info()
    assert info["deploymentType"] == "Cloud"
    assert jira._is_cloud
    assert info["baseUrl"] == url


def test_myself_and_user_describe_the_caller(jira):
    me = jira.myself()
    assert me["accountId"] == BOB
    assert me["emailAddress"] == "bob@example.com"
    user = jira.user(BOB)
    assert user.accountId == BOB
    assert user.displayName == "Bob"


def test_the_four_operations_through_the_clients_session(jira):
    url = jira._get_url("user/properties/jira/client key")
    params = {"accountId": BOB}
    first = jira._session.put(url, params=params, data=json.dumps({"n": 1}))
    assert first.status_code == 201
    again = jira._session.put(url, params=params, data=json.dumps({"n": 2}))
    assert again.status_code == 200
    read = jira._session.get(url, params=params)
    assert read.status_code == 200
    assert read.json() == {"key": "jira/client key", "value": {"n": 2}}
    listing = jira._session.get(jira._get_url("user/properties"), params=params).json()
    assert "jira/client key" in [entry["key"] for entry in listing["keys"]]
    deleted = jira._session.delete(url, params=params)
    assert deleted.status_code == 204
    with pytest.raises(JIRAError) as raised:
        jira._session.get(url, params=params)
    assert raised.value.status_code == 404
    assert "The property jira/client key does not exist." in raised.value.text
