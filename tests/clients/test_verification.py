"""The verification example of docs/verification.md, against the server under test."""

import os

import requests

from conftest import BOB, BOB_AUTH


def save_theme(url, account_id, mode):
    """The code under test: saves a user's theme through the Jira API."""
    answer = requests.put(f"{url}/rest/api/3/user/properties/theme",
                          params={"accountId": account_id}, json={"mode": mode}, auth=BOB_AUTH)
    answer.raise_for_status()


def test_the_integration_saves_bobs_theme_once(url):
    admin = {"Authorization": f"Bearer {os.environ['JIRA_USERPROPS_ADMIN_TOKEN']}"}
    requests.delete(f"{url}/_admin/requests", headers=admin).raise_for_status()

    save_theme(url, BOB, "dark")

    matcher = {"method": "PUT", "key": "theme", "accountId": BOB}
    answer = requests.post(f"{url}/_admin/requests/count", json=matcher, headers=admin)
    assert answer.json() == {"count": 1}
    found = requests.post(f"{url}/_admin/requests/find", json=matcher, headers=admin).json()
    assert [entry["status"] for entry in found] in ([201], [200])
