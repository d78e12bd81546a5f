#!/usr/bin/env bash
# Every test of the project, from a fresh Debian machine: installs what the tests need, then runs
# formatting, lints and the whole test suite. `.ci/run` calls this same script.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v python3 >/dev/null || need_apt+=(python3)
command -v curl >/dev/null || need_apt+=(curl)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "tests/run.sh: missing ${need_apt[*]}; run as root so it can apt-get install them" >&2
    exit 2
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# The end-to-end drills (tests/drill_*.rs) run real ZooKeeper, PostgreSQL, sshd and an S3 server
# (moto) on 127.0.0.1; this installs whatever of them is missing (apt-get, pip).
bash tests/drills/services.sh install

cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
cargo test --all-targets --no-fail-fast
