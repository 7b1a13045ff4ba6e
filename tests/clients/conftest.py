"""Shared settings: the server under test comes from JIRA_USERPROPS_URL (see run.sh)."""

import os

import pytest

BOB = "5b10ac8d82e05b22cc7d4ef5"
ADMIN = "5b10a2844c20165700ede21g"
BOB_AUTH = ("bob@example.com", "bob-token")
ADMIN_AUTH = ("ada@example.com", "ada-token")


@pytest.fixture(scope="session")
def url():
    return os.environ["JIRA_USERPROPS_URL"]
