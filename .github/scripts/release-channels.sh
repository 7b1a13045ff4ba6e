#!/usr/bin/env bash
# The moving tags a release tag takes, as GITHUB_OUTPUT lines: `latest=true` for the highest
# stable version of all, `series=true` for the highest stable version of its X.Y series (so a
# backport moves `X.Y`, never `latest`). A prerelease (`-rc.1`) takes neither.
# Usage: git tag --list 'v*' | release-channels.sh TAG
set -euo pipefail
tag="$1"
stable=$(grep -E '^v[0-9]+\.[0-9]+\.[0-9]+$' || true)
highest=$(sort -V <<< "$stable" | tail -n 1)
highest_of_series=$(awk -v series="${tag%.*}." 'index($0, series) == 1' <<< "$stable" | sort -V | tail -n 1)
is() { if [ "$tag" = "$1" ]; then echo true; else echo false; fi; }
echo "latest=$(is "$highest")"
echo "series=$(is "$highest_of_series")"
