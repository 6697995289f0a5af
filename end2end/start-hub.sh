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
# Graphs for tests/viewer.spec.ts. No hub command stores graphs yet (the
# sync engine will), so SPICEHUB_E2E_SEED may name a command that stores
# them into the database at $SPICEHUB_E2E_SEED_DATABASE_URL, for example
# the seeding helper of tests/viewer.rs (`seed_e2e_database`).
if [ -n "${SPICEHUB_E2E_SEED:-}" ]; then
  SPICEHUB_E2E_SEED_DATABASE_URL="sqlite://$data/spicehub.db" bash -c "$SPICEHUB_E2E_SEED" >&2
fi
exec "$bin" serve --bind "127.0.0.1:$port"
