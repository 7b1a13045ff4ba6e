"""Jira Cloud's rate limiting: a client that honours Retry-After gets through."""

import os

import pytest
import requests
from jira import JIRA

from conftest import BOB, BOB_AUTH


@pytest.fixture
def admin(url):
    headers = {"Authorization": f"Bearer {os.environ['JIRA_USERPROPS_ADMIN_TOKEN']}"}
    rules = {"rateLimit": {"limit": 2, "windowSeconds": 1, "per": "account"}}
    assert requests.put(f"{url}/_admin/faults", json=rules, headers=headers).status_code == 200
    assert requests.delete(f"{url}/_admin/requests", headers=headers).status_code == 204
    yield headers
    assert requests.delete(f"{url}/_admin/faults", headers=headers).status_code == 204


def test_pycontribs_jira_waits_out_429_and_gets_through(url, admin):
    jira = JIRA(server=url, basic_auth=BOB_AUTH, max_retries=5)
    keys_url = jira._get_url("user/properties")
    for _ in range(6):
        listing = jira._session.get(keys_url, params={"accountId": BOB})
        assert listing.status_code == 200
    refused = requests.get(f"{url}/_admin/requests", params={"status": "429"}, headers=admin).json()
    assert refused, "the server never refused: the client's retry was not exercised"
    assert all(entry["accountId"] == BOB for entry in refused)
