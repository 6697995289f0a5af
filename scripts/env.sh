# Sourced by the scripts: one place for tool versions and locations.
export CARGO_LEPTOS_VERSION=0.3.11
export BINARYEN_VERSION=132
export SPICEHUB_TOOLS="${SPICEHUB_TOOLS:-$HOME/.cache/spicehub/tools}"
# Build outputs live outside the clone so CI's fresh clones reuse them.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/spicehub/target}"
# -Zbuild-std for the wasm32 std (rustup cannot fetch that target here).
export RUSTC_BOOTSTRAP=1
export PATH="$SPICEHUB_TOOLS/bin:$SPICEHUB_TOOLS/npm/node_modules/.bin:$HOME/.cargo/bin:$PATH"
# cargo-leptos writes the site under the target dir; the server reads it there.
export LEPTOS_SITE_ROOT="${LEPTOS_SITE_ROOT:-$CARGO_TARGET_DIR/site}"
export CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
