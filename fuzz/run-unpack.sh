#!/usr/bin/env bash
# Build and run the unpack fuzz target for a given time.
#
#   fuzz/run-unpack.sh [SECONDS]     default 600
#
# cargo-fuzz needs nightly compiler flags (-Zsanitizer=address and others).
# RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them; the address
# sanitizer runtime ships with stable's rust-std. Install cargo-fuzz with
# `cargo install cargo-fuzz`.
#
# The target runs as root in a mount namespace of its own. There,
# /tmp/layerfs-fuzz is a fresh tmpfs and the corpus and artifact directories
# stay writable. The root file system is read-only, so a bug that escapes the
# layer directory cannot change the host. The target itself detects writes
# into its probe directory (see fuzz_targets/unpack.rs).
set -euo pipefail

fuzz=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
seconds=${1:-600}
if [ "$(id -u)" -ne 0 ]; then
    echo "run-unpack.sh: run as root (the target creates device nodes and mounts a tmpfs)" >&2
    exit 1
fi

cd "$fuzz"
RUSTC_BOOTSTRAP=1 cargo fuzz build --release unpack
binary=$fuzz/target/x86_64-unknown-linux-gnu/release/unpack
corpus=$fuzz/corpus/unpack
artifacts=$fuzz/artifacts/unpack
mkdir -p "$corpus" "$artifacts"
"$fuzz/make-seeds.py" "$corpus"

unshare --mount --propagation private sh -c '
    set -e
    mkdir -p /tmp/layerfs-fuzz
    mount -t tmpfs -o size=1g,mode=0755 tmpfs /tmp/layerfs-fuzz
    mount --bind "$1" "$1"
    mount --bind "$2" "$2"
    mount -o remount,bind,ro /
    exec "$3" "$1" -artifact_prefix="$2/" -max_total_time="$4" \
        -timeout=10 -rss_limit_mb=4096 -print_final_stats=1
' sh "$corpus" "$artifacts" "$binary" "$seconds"
