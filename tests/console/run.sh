#!/usr/bin/env bash
# The console's browser tests: headless Chromium, driven by Playwright, against the release
# binary on a free port; screenshots of each page land in target/ui-screenshots/. The browser is
# /usr/bin/chromium (Debian: apt-get install chromium chromium-driver), or CHROMIUM_PATH; an empty
# CHROMIUM_PATH means Playwright's own (after `playwright install chromium`). Needs PyPI once.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ -z "${CHROMIUM_PATH+set}" ] && [ ! -x /usr/bin/chromium ]; then
    echo "no /usr/bin/chromium: apt-get install chromium chromium-driver" >&2
    exit 1
fi

venv=target/console-venv
[ -x "$venv/bin/pytest" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/console/requirements.txt

binary="${JIRA_USERPROPS_BIN:-}"
if [ -z "$binary" ]; then
    cargo build --release --locked
    binary=target/release/jira-userprops
fi

JIRA_USERPROPS_BIN="$binary" "$venv/bin/pytest" -p no:cacheprovider tests/console "$@"
