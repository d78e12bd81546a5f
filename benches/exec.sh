#!/usr/bin/env bash
# Benchmark of the executor (`runbook run`), side by side with what a shell does for the same work:
#
#   seq N   N steps `true`, each depending on the one before, through `runbook run --no-progress`,
#           against `for i in $(seq N); do sh -c true; done` (every step is an `sh -c`, too);
#   fan     a for_each of 100 × `sleep 0.2` with `--max-parallel 20`: ideally 5 waves, 1.0 s.
#
# Each figure is the median of RUNS runs (default 3). Targets: seq ≤ 1.5× the shell loop,
# fan ≤ 1.05× the ideal. The fan-out is also shown against `xargs -P 20` running the same
# commands, the floor of this machine. The script exits 1 when a target is missed (a fan-out no
# slower than that floor is reported "floor", not missed).
#
# Usage: bash benches/exec.sh
# Environment: RUNS (default 3), SIZES (default "100 1000"), SKIP_BUILD=1 to reuse
#              target/release/runbook.
set -euo pipefail

cd "$(dirname "$0")/.."
source benches/lib.sh
SIZES=${SIZES:-"100 1000"}

build_release
make_work_dir
cd "$work"
export NO_COLOR=1 RUNBOOK_STATE_DIR="$work/state"

run_seq() { "$BIN" run "seq-$1.yaml" --no-progress; }
run_fan() { "$BIN" run fan.yaml --no-progress --max-parallel 20; }

cat >fan.yaml <<'EOF'
name: bench-fan
steps:
  - id: nap
    for_each: "{{ range(100) | list }}"
    run: sleep 0.2
EOF

status=0
printf '%-32s %9s %9s %7s %8s\n' case runbook baseline ratio target
for n in $SIZES; do
    chain "$n" >"seq-$n.yaml"
    read -r ours base < <(compare "run_seq $n" "shell_loop $n")
    [[ -n $base ]] || exit 1
    verdict=$(ratio_verdict "$ours" "$base" 1.5)
    printf '%-32s %9s %9s %7s %8s\n' "seq $n x true (vs sh loop)" "$ours" "$base" "${verdict% *}" "≤1.5 ${verdict#* }"
    [[ $verdict == *MISSED ]] && status=1
done
# The same 100 `sh -c 'sleep 0.2'`, 20 at a time, without runbook: the floor this machine puts
# under the fan-out (process creation). A fan-out within 2% of it misses 1.05 because of the
# machine, not the scheduler, and is reported as such.
floor() { seq 100 | xargs -P 20 -I{} sh -c 'sleep 0.2'; }
read -r ours base < <(compare run_fan floor)
[[ -n $base ]] || exit 1
verdict=$(awk -v a="$ours" -v f="$base" 'BEGIN {
    r = a / 1.0
    v = r <= 1.05 ? "ok" : (a <= f * 1.02 ? "floor" : "MISSED")
    printf "%.3f %s", r, v }')
printf '%-32s %9s %9s %7s %8s\n' "fan 100 x sleep 0.2, 20 at once" "$ours" "1.000" "${verdict% *}" "≤1.05 ${verdict#* }"
awk -v a="$ours" -v b="$base" 'BEGIN { printf "%-32s %9s %9.3f %7.3f %8s\n", "fan vs xargs -P 20 (floor)", a, b, a / b, "-" }'
[[ $verdict == *MISSED ]] && status=1
[[ $verdict == *floor ]] && echo "note: the fan-out misses 1.05 only as much as xargs does on this machine (loaded or slow process creation)"
exit "$status"
