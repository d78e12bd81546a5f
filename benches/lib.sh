# What the benchmark scripts share (sourced from the repository's root, after `set -euo pipefail`):
# the release binary, a scratch folder, wall-clock timing, medians and the generated runbooks.

RUNS=${RUNS:-3}
BIN=$PWD/target/release/runbook

# Builds the release binary, unless SKIP_BUILD=1 says to reuse it.
build_release() {
    if [[ ${SKIP_BUILD:-0} != 1 ]]; then
        cargo build --release --quiet --bin runbook
    fi
}

# Makes the scratch folder `$work`, removed when the script exits.
make_work_dir() {
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
}

# Wall time of a command in seconds (ms precision, from bash's clock); its output is discarded.
# Exit codes listed after `--ok` (default 0) are expected; any other ends the script.
seconds() {
    local ok=0 start end rc
    if [[ $1 == --ok ]]; then
        ok=$2
        shift 2
    fi
    start=$EPOCHREALTIME
    rc=0
    "$@" >/dev/null 2>"$work/err" || rc=$?
    end=$EPOCHREALTIME
    if [[ " $ok " != *" $rc "* ]]; then
        echo "error: $* exited $rc:" >&2
        head -20 "$work/err" >&2
        exit 1
    fi
    awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f\n", e - s }'
}

# The median of the numbers on stdin (the middle one; the lower middle for an even count).
median() {
    sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# Runs two commands (a function and plain-word arguments) RUNS times, alternately, so that a
# burst of load on a shared machine hits both; prints the median wall time of each: "A B".
compare() {
    local a=$1 b=$2 i
    : >"$work/a"
    : >"$work/b"
    for ((i = 0; i < RUNS; i++)); do
        seconds $a >>"$work/a"
        seconds $b >>"$work/b"
    done
    echo "$(median <"$work/a") $(median <"$work/b")"
}

# "RATIO ok" when A / B is at most LIMIT, else "RATIO MISSED".
ratio_verdict() {
    awk -v a="$1" -v b="$2" -v l="$3" 'BEGIN { r = a / b; printf "%.2f %s", r, (r <= l ? "ok" : "MISSED") }'
}

# What a shell does for N steps `true`: `sh -c true`, N times.
shell_loop() {
    local i
    for i in $(seq "$1"); do sh -c true; done
}

# A runbook of N steps, each depending on the step written before it: `true`, and the last one
# runs LAST (default "true").
chain() {
    local n=$1 last=${2:-'"true"'} i
    echo "name: bench-chain-$n"
    echo "steps:"
    for ((i = 1; i < n; i++)); do
        printf '  - id: s%d\n    run: "true"\n' "$i"
    done
    printf '  - id: last\n    run: %s\n' "$last"
}

# Installs GNU time (/usr/bin/time, whose %M is the peak RSS) when missing (Debian/Ubuntu,
# non-interactive; needs root or passwordless sudo).
ensure_gnu_time() {
    [[ -x /usr/bin/time ]] && return 0
    echo "installing GNU time (/usr/bin/time)…" >&2
    local SUDO
    if [[ $(id -u) -eq 0 ]]; then
        SUDO=()
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        SUDO=(sudo -n)
    else
        echo "error: /usr/bin/time is missing and installing it needs root (apt-get install time)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get install -y -qq time >/dev/null 2>&1 || {
        "${SUDO[@]}" apt-get update -qq >/dev/null
        "${SUDO[@]}" apt-get install -y -qq time >/dev/null
    }
}
