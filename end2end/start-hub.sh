#!/usr/bin/env bash
# Starts the release build of the hub for the browser tests, next to its own
# Azure DevOps emulator (the demo organization "contoso") standing in for
# Entra ID and Azure DevOps: a fresh data directory, one admin and one viewer
# with known test passwords.
#   start-hub.sh PORT EMULATOR_PORT [seed [wide]]
# With "seed", the demo provider is added and two demo repositories are
# replicated before the hub answers (what the viewer tests read): the
# data_pipeline fixture and a generated 600-entry registry, imported into the
# emulator as repositories e2e-shop and e2e-big.
# With "wide", the emulator also holds organization contoso-wide: 100
# projects of 10 repositories each (the repository picker's large case).
# The hub's log goes to end2end/logs/hub-PORT.log, which the tests search for
# secrets.
set -euo pipefail
port="$1"
emu_port="$2"
seed="${3:-}"
wide="${4:-}"
cd "$(dirname "$0")/.."
source scripts/env.sh
bin="$CARGO_TARGET_DIR/release/spicehub"
data=$(mktemp -d -t spicehub-e2e-XXXXXX)
mkdir -p end2end/logs
log="end2end/logs/hub-$port.log"
: > "$log"
export SPICEHUB_DATA_DIR="$data/hub"
unset DATABASE_URL
emu="http://127.0.0.1:$emu_port"
extra=()
if [ "$seed" = seed ]; then
  # Known data for tests/viewer.spec.ts: the data_pipeline fixture, and a
  # registry of 600 entries in 12 modules (shown collapsed by module).
  big="$data/big-src"
  mkdir -p "$big/big"
  : > "$big/big/__init__.py"
  printf 'from spice import Registry\n\nbig = Registry("big")\n' > "$big/big/registry.py"
  for m in $(seq 0 11); do
    {
      printf 'from big.registry import big\n'
      for i in $(seq $((m * 50)) $((m * 50 + 49))); do
        printf '\n\n@big.register\ndef entry_%d():\n    pass\n' "$i"
      done
    } > "$big/big/m$m.py"
  done
  extra=(--seed-repo "contoso/Commerce/e2e-shop=$PWD/crates/spicehub-parser/tests/fixtures/data_pipeline"
         --seed-repo "contoso/Commerce/e2e-big=$big")
fi
if [ "$wide" = wide ]; then
  extra+=(--wide-org contoso-wide=100x10)
fi
"$CARGO_TARGET_DIR/release/ado-emulator" --demo "${extra[@]}" --bind "127.0.0.1:$emu_port" --data-dir "$data/emulator" \
  > "end2end/logs/emulator-$emu_port.log" 2>&1 &
emulator_pid=$!
trap 'kill $emulator_pid 2>/dev/null || true' EXIT
for _ in $(seq 200); do curl -sf "$emu/_emulator/health" >/dev/null && break; sleep 0.1; done

export SPICEHUB_AUTHORITY_URL="$emu/login" SPICEHUB_DEVOPS_URL="$emu/devops"
export SPICEHUB_PUBLIC_URL="http://127.0.0.1:$port"
# The emulator's multi-tenant "hub" app (demo values, not a real secret).
export SPICEHUB_HUB_CLIENT_ID="6b8d0f2a-4c6e-4a8b-9d1f-3e5a7c9b1d74"
export SPICEHUB_HUB_CLIENT_SECRET="Hb56Q~hub.Multitenant-Emulator_Secret.Value3"
export SPICEHUB_SYNC_POLL_MS=100 SPICEHUB_SYNC_RETRY_DELAY=1 SPICEHUB_RECONCILE_INTERVAL=0
# Debug logging, so that the secrets check reads everything the hub says.
export RUST_LOG="${RUST_LOG:-debug,sqlx=warn,hyper=info,hyper_util=info,h2=info,tower_sessions=info}"
echo "admin-password-123" | "$bin" admin create --email admin@example.com --role admin >/dev/null
echo "viewer-password-123" | "$bin" admin create --email viewer@example.com --role viewer >/dev/null

if [ "$seed" = seed ]; then
  out=$(echo 'Xq48Q~demo.Spicehub-Emulator_Secret.Value0' | "$bin" provider add --name "Contoso (demo)" \
        --tenant 3f4e1a52-6c1d-4b8e-9a27-5d0c7e1b2a90 --client-id 0c6f8e2a-4d3b-4f7e-9b1a-2e5d7c9a1b30 \
        --organization contoso --webhook-username e2e-hook)
  hook_password=$(echo "$out" | sed -n 's/^webhook password[^:]*: //p')
  for pr in Commerce/e2e-shop Commerce/e2e-big; do
    "$bin" repository add --provider "Contoso (demo)" --organization contoso \
      --project "${pr%%/*}" --repository "${pr##*/}" >/dev/null
  done
  curl -sf -X POST "$emu/_emulator/webhook" -H 'Content-Type: application/json' \
    -d "{\"url\":\"$SPICEHUB_PUBLIC_URL/gateway/public/sync\",\"username\":\"e2e-hook\",\"password\":\"$hook_password\"}" >/dev/null
  # Replicate first, with a hub on a port of its own, so that the tests
  # start with graphs to look at (Playwright waits for /healthz on $port).
  "$bin" serve --bind 127.0.0.1:0 >> "$log" 2>&1 &
  seed_pid=$!
  for _ in $(seq 900); do
    synced=$("$bin" repository list 2>/dev/null | awk -F'\t' '$3 == "synced"' | wc -l)
    [ "$synced" -ge 2 ] && break
    sleep 0.2
  done
  kill "$seed_pid"; wait "$seed_pid" || true
fi
# Not exec: the trap stops the emulator when the hub stops.
"$bin" serve --bind "127.0.0.1:$port" >> "$log" 2>&1 &
hub_pid=$!
trap 'kill $hub_pid $emulator_pid 2>/dev/null || true' EXIT TERM INT
wait $hub_pid
