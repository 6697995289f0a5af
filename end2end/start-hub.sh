#!/usr/bin/env bash
# Starts the release build of the hub for the browser tests, next to its own
# Azure DevOps emulator (the demo organization "contoso") standing in for
# Entra ID and Azure DevOps: a fresh data directory, one admin and one viewer
# with known test passwords.
#   start-hub.sh PORT EMULATOR_PORT [seed [wide|shapes]]
# With "seed", the demo provider is added and two demo repositories are
# replicated before the hub answers (what the viewer tests read): the
# data_pipeline fixture and a generated 600-entry registry, imported into the
# emulator as repositories e2e-shop and e2e-big.
# With "wide", the emulator also holds organization contoso-wide: 100
# projects of 10 repositories each (the repository picker's large case).
# With "shapes" (the "shapes" project's hub), four more generated repositories are
# replicated too, the registry shapes of tests/viewer.shapes.spec.ts:
#   e2e-mmdet  registry "model" (mmdet-shaped: MODELS.register_module()
#              classes), 280 entries in 55 modules of 11 nested packages,
#              no edges;
#   e2e-2000   registry "bulk", 2,000 entries in 40 modules, no edges;
#   e2e-mixed  registry "stages", a chain of 30 steps (step_1 depends on
#              step_0, ...) and 150 unconnected entries;
#   e2e-5000   registry "huge", 5,000 entries in 100 modules, each depending
#              on 2 earlier ones (about 10,000 edges).
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
  repos=(Commerce/e2e-shop Commerce/e2e-big)
fi
if [ "$seed" = seed ] && [ "$wide" = shapes ]; then
  # One awk run per repository (no process per file), writing every module.
  # mmdet: MODELS = Registry('model'), classes decorated
  # @MODELS.register_module() in 55 modules of nested packages.
  mm="$data/mmdet-src"
  pkgs="models/backbones:resnet,resnext,regnet,swin,hrnet
models/necks:fpn,pafpn,nasfpn,bfp,yolox_pafpn
models/dense_heads:rpn_head,retina_head,fcos_head,atss_head,yolo_head
models/roi_heads:standard_roi_head,cascade_roi_head,htc_roi_head,mask_heads,bbox_heads
models/losses:focal_loss,iou_loss,smooth_l1_loss,cross_entropy_loss,gfocal_loss
models/detectors:faster_rcnn,mask_rcnn,retinanet,fcos,detr
models/layers:transformer,positional_encoding,conv_upsample,res_layer,se_layer
models/task_modules/assigners:max_iou_assigner,atss_assigner,hungarian_assigner,sim_ota_assigner,point_assigner
models/task_modules/samplers:random_sampler,ohem_sampler,pseudo_sampler,balanced_pos_sampler,score_hlr_sampler
models/task_modules/coders:delta_xywh_coder,tblr_bbox_coder,yolo_bbox_coder,distance_point_coder,legacy_delta_coder
models/data_preprocessors:data_preprocessor,sync_random_resize,fixed_size_pad,multi_branch,box_inst_preprocessor"
  for d in mmdet mmdet/models mmdet/models/task_modules $(echo "$pkgs" | cut -d: -f1 | sed 's|^|mmdet/|'); do
    mkdir -p "$mm/$d"; : > "$mm/$d/__init__.py"
  done
  printf "from spice import Registry\n\nMODELS = Registry('model')\n" > "$mm/mmdet/registry.py"
  # 280 entries: 6 in each of the first 5 modules, 5 in the other 50.
  echo "$pkgs" | awk -F'[:,]' -v root="$mm" '
    function camel(s,  p, n, i, out) { n = split(s, p, "_"); out = ""
      for (i = 1; i <= n; i++) out = out toupper(substr(p[i], 1, 1)) substr(p[i], 2); return out }
    { for (j = 2; j <= NF; j++) {
        f = root "/mmdet/" $1 "/" $j ".py"; per = (m < 5) ? 6 : 5; m++
        printf "from mmdet.registry import MODELS\n" > f
        for (k = 0; k < per; k++)
          printf "\n\n@MODELS.register_module()\nclass %s%s:\n    \"\"\"%s, variant %d.\"\"\"\n", camel($j), (k ? "V" k : ""), camel($j), k > f
        close(f) } }'
  # 2,000 entries, 40 modules, no edges.
  bulk="$data/bulk-src"
  mkdir -p "$bulk/bulk"; : > "$bulk/bulk/__init__.py"
  printf 'from spice import Registry\n\nbulk = Registry("bulk")\n' > "$bulk/bulk/registry.py"
  awk -v root="$bulk" 'BEGIN { for (i = 0; i < 2000; i++) { f = sprintf("%s/bulk/part_%02d.py", root, int(i / 50))
      if (i % 50 == 0) printf "from bulk.registry import bulk\n" > f
      printf "\n\n@bulk.register\ndef item_%d():\n    pass\n", i > f } }'
  # A 30-step chain and 150 unconnected entries in 5 modules.
  mixed="$data/mixed-src"
  mkdir -p "$mixed/mixed"; : > "$mixed/mixed/__init__.py"
  printf 'from spice import Registry\n\nstages = Registry("stages")\n' > "$mixed/mixed/registry.py"
  awk -v root="$mixed" 'BEGIN { f = root "/mixed/chain.py"
      printf "from mixed.registry import stages\n\n\n@stages.register\ndef step_0():\n    pass\n" > f
      for (i = 1; i < 30; i++) printf "\n\n@stages.register(depends_on=[\"step_%d\"])\ndef step_%d():\n    pass\n", i - 1, i > f
      for (i = 0; i < 150; i++) { f = sprintf("%s/mixed/loose_%d.py", root, int(i / 30))
        if (i % 30 == 0) printf "from mixed.registry import stages\n" > f
        printf "\n\n@stages.register\ndef loose_%d():\n    pass\n", i > f } }'
  # 5,000 entries in 100 modules, each on i-1 and i-(1 + i*7919 % 300).
  huge="$data/huge-src"
  mkdir -p "$huge/huge"; : > "$huge/huge/__init__.py"
  printf 'from spice import Registry\n\nhuge = Registry("huge")\n' > "$huge/huge/registry.py"
  awk -v root="$huge" 'BEGIN { for (i = 0; i < 5000; i++) { f = sprintf("%s/huge/mod_%02d.py", root, int(i / 50))
      if (i % 50 == 0) { if (g) close(g); g = f; printf "from huge.registry import huge\n" > f }
      j = i - (1 + (i * 7919) % 300); deps = ""
      if (i >= 1) deps = "\"node_" (i - 1) "\""
      if (j >= 0 && j != i - 1) deps = deps ", \"node_" j "\""
      if (deps == "") printf "\n\n@huge.register\ndef node_%d():\n    pass\n", i > f
      else printf "\n\n@huge.register(depends_on=[%s])\ndef node_%d():\n    pass\n", deps, i > f } }'
  extra+=(--seed-repo "contoso/Commerce/e2e-mmdet=$mm" --seed-repo "contoso/Commerce/e2e-2000=$bulk"
          --seed-repo "contoso/Commerce/e2e-mixed=$mixed" --seed-repo "contoso/Commerce/e2e-5000=$huge")
  repos+=(Commerce/e2e-mmdet Commerce/e2e-2000 Commerce/e2e-mixed Commerce/e2e-5000)
  # dot needs about a minute for e2e-5000's whole registry here, over the
  # default limit of 30 s (the viewer would say it took too long). The
  # seeding below waits for it to be laid out ahead.
  export SPICEHUB_LAYOUT_TIMEOUT_MS="${SPICEHUB_LAYOUT_TIMEOUT_MS:-240000}"
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
  for pr in "${repos[@]}"; do
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
    [ "$synced" -ge "${#repos[@]}" ] && break
    sleep 0.2
  done
  if [ "$wide" = shapes ] && command -v sqlite3 >/dev/null; then
    # And wait for the layouts made ahead (e2e-5000's whole registry is a
    # minute of dot), so that no dot runs behind the tests' backs.
    db="file:$SPICEHUB_DATA_DIR/spicehub.db?mode=ro"
    for _ in $(seq 1200); do
      ready=$(sqlite3 "$db" "SELECT (SELECT COUNT(DISTINCT registry_id) FROM graph_layouts) >= 7
        AND EXISTS (SELECT 1 FROM graph_layouts WHERE registry_id = 'huge.registry.huge' AND view_key LIKE '%:full')" 2>/dev/null || echo 0)
      [ "$ready" = 1 ] && break
      sleep 0.2
    done
  fi
  kill "$seed_pid"; wait "$seed_pid" || true
fi
# Not exec: the trap stops the emulator when the hub stops.
"$bin" serve --bind "127.0.0.1:$port" >> "$log" 2>&1 &
hub_pid=$!
trap 'kill $hub_pid $emulator_pid 2>/dev/null || true' EXIT TERM INT
wait $hub_pid
