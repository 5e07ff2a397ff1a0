#!/usr/bin/env bash
# VERSION is the single source of the version: the workspace (and, once it exists, the Helm
# chart) must carry the same one.
set -euo pipefail
cd "$(dirname "$0")/.."
want="$(tr -d '[:space:]' < VERSION)"
have="$(sed -n '/^\[workspace.package\]/,/^\[/{s/^version *= *"\(.*\)"/\1/p}' Cargo.toml)"
if [ "$want" != "$have" ]; then
    echo "VERSION is $want but the workspace version is $have" >&2
    exit 1
fi
for chart in helm/*/Chart.yaml; do
    [ -e "$chart" ] || continue
    for key in version appVersion; do
        v="$(sed -n "s/^$key: *\"\{0,1\}\([^\"]*\)\"\{0,1\}$/\1/p" "$chart")"
        if [ "$v" != "$want" ]; then
            echo "$chart $key is $v, VERSION is $want" >&2
            exit 1
        fi
    done
done
echo "version $want is consistent" >&2
