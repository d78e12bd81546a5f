#!/usr/bin/env bash
# What the TLS stack costs a cold build: reqwest as this crate uses it, built from nothing in the
# test profile (dependencies at opt-level 1, as in Cargo.toml), with rustls on aws-lc-rs (the
# default provider) and with rustls on ring. Two throwaway crates pinned by this repository's
# Cargo.lock; CPU time is the figure that matters on a shared machine (wall time is shown too).
#
#   bash benches/tls.sh            # -j2, as the test command runs on 2 cores
#   JOBS=4 bash benches/tls.sh
set -euo pipefail
cd "$(dirname "$0")/.."

JOBS=${JOBS:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

probe() {
    local name=$1 deps=$2
    mkdir -p "$work/$name/src"
    echo 'fn main() { let _ = reqwest::Client::builder(); }' >"$work/$name/src/main.rs"
    cp Cargo.lock "$work/$name/"
    cat >"$work/$name/Cargo.toml" <<EOF
[package]
name = "probe"
version = "0.1.0"
edition = "2024"
[dependencies]
$deps
tokio = { version = "1", features = ["process", "signal", "time", "rt-multi-thread", "macros", "sync", "io-util", "fs"] }
[profile.dev.package."*"]
opt-level = 1
EOF
}

probe aws-lc-rs 'reqwest = { version = "0.13", features = ["json"] }'
probe ring 'reqwest = { version = "0.13", default-features = false, features = ["json", "charset", "http2", "system-proxy", "rustls-no-provider"] }
rustls = { version = "0.23", default-features = false, features = ["ring", "std", "tls12", "logging"] }'

printf '%-10s %8s %8s %8s  %s\n' stack wall user sys "load (1 min) before → after"
for name in aws-lc-rs ring; do
    before=$(cut -d' ' -f1 /proc/loadavg)
    (cd "$work/$name" && CARGO_TARGET_DIR="$work/target-$name" \
        /usr/bin/time -f '%e %U %S' -o "$work/time" cargo build --offline --quiet -j"$JOBS")
    read -r wall user sys <"$work/time"
    printf '%-10s %7ss %7ss %7ss  %s → %s\n' "$name" "$wall" "$user" "$sys" "$before" \
        "$(cut -d' ' -f1 /proc/loadavg)"
done
