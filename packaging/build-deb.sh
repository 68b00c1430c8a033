#!/bin/sh
# Builds the kassa .deb (agent, updater, systemd units, initial trust root) with cargo-deb.
# Usage: packaging/build-deb.sh [--profile release|dev]   (dev: fast CI build for content checks)
# KASSA_ROOT_JSON=path: the real, offline-signed root.json to ship. Without it a throwaway
# development root with fresh keys is made (keys in target/kassa-dev-keys): never ship that one.
set -eu

cd "$(dirname "$0")/.."
profile=release
if [ "${1:-}" = "--profile" ]; then profile="$2"; fi
target_dir="${CARGO_TARGET_DIR:-target}"
case "$profile" in
    dev) out_dir="$target_dir/debug" ;;
    *) out_dir="$target_dir/$profile" ;;
esac

# Terminal builds leave out the embedded Klarna sandbox (the agent's default `sim` feature) and
# keep the cashier's window (`ui`: `kassa run --window`).
cargo build --profile "$profile" -p kassa-agent --no-default-features --features ui --bin kassa
cargo build --profile "$profile" -p kassa-packaging --bin kassa-update

if [ -n "${KASSA_ROOT_JSON:-}" ]; then
    cp "$KASSA_ROOT_JSON" "$out_dir/kassa-root.json"
else
    echo "build-deb: KASSA_ROOT_JSON not set, shipping a DEVELOPMENT trust root" >&2
    keys="$target_dir/kassa-dev-keys"
    rm -rf "$keys" && mkdir -p "$keys"
    for k in root1 root2 release1 release2 channel; do
        "$out_dir/kassa-update" keygen --out-dir "$keys" --name "$k" >/dev/null
    done
    "$out_dir/kassa-update" root-new --version 1 \
        --root-key "$keys/root1.pub" --root-key "$keys/root2.pub" --root-threshold 2 \
        --release-key "$keys/release1.pub" --release-key "$keys/release2.pub" --release-threshold 2 \
        --channel-key "$keys/channel.pub" --out "$out_dir/kassa-root.json"
    for k in root1 root2; do
        "$out_dir/kassa-update" sign --root-doc "$out_dir/kassa-root.json" --key "$keys/$k.key" >/dev/null
    done
fi

cargo deb -p kassa-packaging --no-build --profile "$profile" --no-strip 2>&1 | tail -n 5
