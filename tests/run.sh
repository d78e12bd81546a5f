#!/usr/bin/env bash
# Every test of the project, from a fresh Debian machine: installs what the tests need, then runs
# formatting, lints and the whole test suite, and ends with one line of totals. `.ci/run` calls
# this same script.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '== %s\n' "$*"; }

need_apt=()
command -v python3 >/dev/null || need_apt+=(python3)
command -v curl >/dev/null || need_apt+=(curl)
# `script` gives a test a pseudo-terminal (prompts are only asked on one).
command -v script >/dev/null || need_apt+=(bsdutils)
# The report test renders the HTML evidence in a real headless browser.
command -v chromium >/dev/null || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ] && [ "$(id -u)" -ne 0 ]; then
  echo "tests/run.sh: missing ${need_apt[*]}; run as root so it can apt-get install them" >&2
  exit 2
fi

# What the tests need is installed while the code compiles (neither needs the other): on a
# fresh machine that saves the minutes apt takes.
install_all() {
  if [ ${#need_apt[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  fi
  # The end-to-end drills (tests/drills/) run real ZooKeeper, PostgreSQL, sshd and an S3 server
  # (moto) on 127.0.0.1; this installs whatever of them is missing (apt-get, pip).
  bash tests/drills/services.sh install
}
installs_log=$(mktemp)
log=$(mktemp)
trap 'rm -f "$installs_log" "$log"' EXIT
say "installing ${need_apt[*]:-}${need_apt[*]:+ and }the services the drills run (apt-get, pip; skipped when present), in the background"
install_all >"$installs_log" 2>&1 &
installs=$!

say "cargo fmt --check"
cargo fmt --check
say "cargo clippy (compiles everything once; the first time takes a few minutes)"
cargo clippy --all-targets --quiet -- -D warnings
say "building the tests"
cargo test --all-targets --no-run --quiet
say "waiting for the installs"
if ! wait "$installs"; then
  cat "$installs_log" >&2
  echo "tests/run.sh: installing what the tests need failed (above)" >&2
  exit 2
fi
say "cargo test"
set +e
cargo test --all-targets --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line: the totals of every test binary.
awk '
  /^test result:/ {
    for (i = 1; i <= NF; i++) {
      if ($(i) ~ /^passed;?$/) passed += $(i - 1)
      if ($(i) ~ /^failed;?$/) failed += $(i - 1)
    }
    binaries++
  }
  /^error: test failed, to rerun pass/ { broken = broken " " $NF }
  END {
    printf "== %d passed, %d failed (%d test binaries)\n", passed, failed, binaries
    if (broken != "") printf "== failing test binaries:%s\n", broken
  }
' "$log"
exit "$status"
