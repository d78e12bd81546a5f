#!/usr/bin/env bash
# Benchmark of `runbook validate` (YAML → Runbook → Plan) on layered DAGs of 1k, 10k and 100k
# steps: wall time and peak RSS, with the time per 1k steps to show whether growth is linear.
#
# Usage: bash benches/plan.sh
# Environment: RUNS (runs per size for 1k/10k, default 3), BIG_RUNS (runs for 100k, default 1),
#              SIZES (default "1000 10000 100000"), SKIP_BUILD=1 to reuse target/release/runbook.
set -euo pipefail

cd "$(dirname "$0")/.."
source benches/lib.sh
BIG_RUNS=${BIG_RUNS:-1}
SIZES=${SIZES:-"1000 10000 100000"}

ensure_gnu_time
build_release
make_work_dir

# Prints "SECONDS KIB" for one run: wall time (ms precision, from bash's clock around the run)
# and peak RSS (from GNU time's %M). GNU time's own %e (10 ms resolution) is kept in its log.
measure() {
    local file=$1 start end
    start=$EPOCHREALTIME
    if ! /usr/bin/time -f '%e %M' -o "$work/time" "$BIN" validate "$file" >/dev/null 2>"$work/err"; then
        echo "error: runbook validate $file failed:" >&2
        head -20 "$work/err" >&2
        exit 1
    fi
    end=$EPOCHREALTIME
    awk -v s="$start" -v e="$end" '{ printf "%.3f %d\n", e - s, $2 }' "$work/time"
}

printf '%8s %10s %14s %16s %6s\n' steps seconds "peak RSS MiB" "s per 1k steps" runs
results=()
for steps in $SIZES; do
    file="$work/bench-$steps.yaml"
    python3 benches/gen_runbook.py "$steps" "$file"
    runs=$RUNS
    ((steps >= 100000)) && runs=$BIG_RUNS
    : >"$work/samples"
    for ((i = 0; i < runs; i++)); do
        measure "$file" >>"$work/samples"
    done
    secs=$(cut -d' ' -f1 "$work/samples" | median)
    kib=$(cut -d' ' -f2 "$work/samples" | median)
    awk -v n="$steps" -v s="$secs" -v k="$kib" -v r="$runs" \
        'BEGIN { printf "%8d %10.3f %14.1f %16.4f %6d\n", n, s, k / 1024, s / (n / 1000), r }'
    results+=("$steps:$secs")
done

# The targets of the issue: 10k steps ≤ 0.2 s, 100k steps ≤ 2 s.
status=0
for entry in "${results[@]}"; do
    steps=${entry%%:*}
    secs=${entry#*:}
    case $steps in
        10000) limit=0.2 ;;
        100000) limit=2 ;;
        *) continue ;;
    esac
    if awk -v s="$secs" -v l="$limit" 'BEGIN { exit !(s <= l) }'; then
        echo "target met: $steps steps in ${secs}s (≤ ${limit}s)"
    else
        echo "target missed: $steps steps in ${secs}s (> ${limit}s)"
        status=1
    fi
done
exit $status
