#!/usr/bin/env bash
# The client suite: real Jira client libraries (Python's, and jira.js where Node.js is), then
# schemathesis against /openapi.json, all talking to the release binary on a free port. Needs
# python3 and network access to PyPI (and npm's registry) once.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=target/client-venv
if [ ! -x "$venv/bin/pytest" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/clients/requirements.txt

# The binary under test: JIRA_USERPROPS_BIN when given (CI passes the image's static build),
# else the release build.
binary="${JIRA_USERPROPS_BIN:-}"
if [ -z "$binary" ]; then
    cargo build --release --locked
    binary=target/release/jira-userprops
fi

log=$(mktemp)
export JIRA_USERPROPS_ADMIN_TOKEN=client-suite-admin-token
# Without the failed-login throttle: schemathesis's ignored_auth check sends wrong credentials
# after every successful request, and would get every client of this address refused.
"$binary" --listen 127.0.0.1:0 --database-url sqlite::memory: \
    --seed examples/seed.json --log-format json --login-failures 0 >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -f "$log"' EXIT

address=""
for _ in $(seq 1 100); do
    address=$(grep -o '"address":"[^"]*"' "$log" | head -n 1 | cut -d '"' -f 4 || true)
    [ -n "$address" ] && break
    sleep 0.1
done
[ -n "$address" ] || { echo "the server did not start:" >&2; cat "$log" >&2; exit 1; }
url="http://$address"

echo "== client libraries against $url"
# JIRA_USERPROPS_BIN too: test_oauth.py starts a server of its own with short-lived tokens.
JIRA_USERPROPS_URL="$url" JIRA_USERPROPS_BIN="$binary" "$venv/bin/pytest" -p no:cacheprovider tests/clients

if command -v node >/dev/null; then
    echo "== examples/verify.test.mjs (docs/verification.md) with Node.js $(node --version)"
    JIRA_USERPROPS_URL="$url" ADMIN_TOKEN="$JIRA_USERPROPS_ADMIN_TOKEN" node --test examples/verify.test.mjs

    echo "== jira.js (pinned in tests/clients/jira-js/package-lock.json)"
    # Installed under target/, beside the test it imports from.
    js=target/jira-js
    mkdir -p "$js"
    cp tests/clients/jira-js/package.json tests/clients/jira-js/package-lock.json \
        tests/clients/jira-js/user-properties.test.mjs "$js/"
    (cd "$js" && npm ci --silent --no-audit --no-fund)
    JIRA_USERPROPS_URL="$url" node --test "$js/user-properties.test.mjs"
fi

echo "== schemathesis against $url/openapi.json"
for credentials in ada@example.com:ada-token bob@example.com:bob-token; do
    "$venv/bin/schemathesis" --config-file tests/clients/schemathesis.toml run "$url/openapi.json" \
        --auth "$credentials" --max-examples 50 --seed 1 --no-color
done
# Last, as it resets and replaces the state: the admin API with the admin token.
"$venv/bin/schemathesis" --config-file tests/clients/schemathesis.toml run "$url/openapi.json" \
    --header "Authorization: Bearer $JIRA_USERPROPS_ADMIN_TOKEN" --max-examples 30 --seed 1 --no-color
