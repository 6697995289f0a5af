#!/usr/bin/env bash
# Starts the release build of the hub for the browser tests: fresh data
# directory, one admin and one viewer with known test passwords.
set -euo pipefail
port="$1"
cd "$(dirname "$0")/.."
source scripts/env.sh
bin="$CARGO_TARGET_DIR/release/spicehub"
data=$(mktemp -d -t spicehub-e2e-XXXXXX)
export SPICEHUB_DATA_DIR="$data"
unset DATABASE_URL
echo "admin-password-123" | "$bin" admin create --email admin@example.com --role admin >/dev/null
echo "viewer-password-123" | "$bin" admin create --email viewer@example.com --role viewer >/dev/null
exec "$bin" serve --bind "127.0.0.1:$port"
