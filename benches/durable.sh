#!/usr/bin/env bash
# Benchmark of durable runs: what the journal (every record fsynced) costs a run, and how fast a
# resume of a long run gets back to work.
#
#   seq N     N steps `true`, each depending on the one before, through `runbook run
#             --no-progress` (journal, logs, lock: the default), against
#             `for i in $(seq N); do sh -c true; done` in the same script run. Target ≤ 2.0×.
#             Informative: fdatasync calls per step (strace -c -f, a separate run, when strace
#             is installed).
#   resume    a 10 000-step chain whose last step fails (`test -e ok`) is run once (its time is
#             informative); then `runbook resume` of it, which must skip 9 999 settled steps and
#             start the last one. The last step writes a timestamp as it starts: the time from
#             launching `runbook resume` to that timestamp is the figure. Target ≤ 0.1 s.
#
# Each figure is the median of RUNS runs (default 3); the two sides of the comparison run
# alternately. The script exits 1 when a target is missed.
#
# Usage: bash benches/durable.sh
# Environment: RUNS (default 3), N (default 1000), BIG (default 10000), SKIP_BUILD=1 to reuse
#              target/release/runbook.
set -euo pipefail

cd "$(dirname "$0")/.."
source benches/lib.sh
N=${N:-1000}
BIG=${BIG:-10000}

build_release
make_work_dir
cd "$work"
export NO_COLOR=1 RUNBOOK_STATE_DIR="$work/state"

run_seq() { "$BIN" run seq.yaml --no-progress; }

status=0
printf '%-40s %9s %9s %7s %8s\n' case runbook baseline ratio target

# (a) A sequential run with durable checkpoints against a shell loop.
chain "$N" >seq.yaml
read -r ours base < <(compare run_seq "shell_loop $N")
[[ -n $base ]] || exit 1
verdict=$(ratio_verdict "$ours" "$base" 2.0)
printf '%-40s %9s %9s %7s %8s\n' "seq $N x true, durable (vs sh loop)" "$ours" "$base" "${verdict% *}" "≤2.0 ${verdict#* }"
[[ $verdict == *MISSED ]] && status=1
if command -v strace >/dev/null; then
    strace -f -c -e trace=fdatasync,fsync -o "$work/strace" "$BIN" run seq.yaml --no-progress >/dev/null 2>&1 || true
    awk -v n="$N" '$NF == "fdatasync" || $NF == "fsync" { c[$NF] = $4 }
        END { printf "%-40s %s fdatasync + %s fsync = %.2f per step\n", "  syncs (strace, informative)", c["fdatasync"] + 0, c["fsync"] + 0, (c["fdatasync"] + c["fsync"]) / n }' "$work/strace"
else
    echo "  (strace not installed: sync count not measured)"
fi

# (b) Resume of a long run that failed at its last step.
chain "$BIG" '"date +%s.%N > last-start; test -e ok"' >big.yaml
first=$(seconds --ok 1 "$BIN" run big.yaml --run-id big --no-progress)
printf '%-40s %9s %9s %7s %8s\n' "run $BIG steps, last fails (informative)" "$first" - - -
: >"$work/r"
: >"$work/w"
for ((i = 0; i < RUNS; i++)); do
    rm -f last-start
    start=$EPOCHREALTIME
    seconds --ok 1 "$BIN" resume big --no-progress >>"$work/w"
    awk -v s="$start" -v e="$(cat last-start)" 'BEGIN { printf "%.3f\n", e - s }' >>"$work/r"
done
to_last=$(median <"$work/r")
wall=$(median <"$work/w")
verdict=$(awk -v a="$to_last" 'BEGIN { printf "%s", (a <= 0.1 ? "ok" : "MISSED") }')
printf '%-40s %9s %9s %7s %8s\n' "resume $BIG: launch to last step's start" "$to_last" - - "≤0.1 $verdict"
printf '%-40s %9s %9s %7s %8s\n' "resume $BIG: whole resume (informative)" "$wall" - - -
[[ $verdict == *MISSED ]] && status=1
exit "$status"
