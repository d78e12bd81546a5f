#!/usr/bin/env bash
# Benchmark of the readers of the journal: how long `runbook report` takes for a run of many
# steps (HTML, Markdown, JSON), and what the estimate adds to a rehearsal when the state folder
# holds many past runs of the runbook (the rehearsal reads every one of their journals).
#
# Usage: bash benches/evidence.sh
# Environment: STEPS (steps of the run reported, default 1000), PAST (past runs for the
#              estimate, default 50), RUNS (runs per figure, default 3), SKIP_BUILD=1 to reuse
#              target/release/runbook, BIN to measure another binary (a debug build).
set -euo pipefail

cd "$(dirname "$0")/.."
source benches/lib.sh
STEPS=${STEPS:-1000}
PAST=${PAST:-50}

if [[ -n ${BIN_OVERRIDE:-} ]]; then
    BIN=$BIN_OVERRIDE
else
    build_release
fi
make_work_dir
cd "$work"
export RUNBOOK_STATE_DIR="$work/state"

# STEPS steps: a chain of `true`, with a fan-out of 20 items in the middle.
{
    echo "name: bench-evidence"
    echo "steps:"
    for ((i = 1; i <= STEPS - 20; i++)); do
        printf '  - id: s%d\n    run: "true"\n' "$i"
        if ((i == (STEPS - 20) / 2)); then
            printf '  - id: fan\n    for_each: "{{ range(20) | list }}"\n    max_parallel: 5\n    run: "true"\n'
        fi
    done
} >book.yaml

"$BIN" run book.yaml --no-progress --run-id reported >/dev/null

printf '%-44s %9s\n' case seconds
for format in html md json; do
    : >"$work/samples"
    for ((r = 0; r < RUNS; r++)); do
        seconds "$BIN" report reported --format "$format" >>"$work/samples"
    done
    printf '%-44s %9s\n' "report of $STEPS steps, $format" "$(median <"$work/samples")"
done
"$BIN" report reported -o "$work/report.html"
printf '%-44s %9s\n' "  (HTML size, KiB)" "$(($(stat -c %s "$work/report.html") / 1024))"

# The rehearsal with one past run (the one reported), then with PAST of them.
rehearse() {
    : >"$work/samples"
    for ((r = 0; r < RUNS; r++)); do
        seconds "$BIN" run book.yaml --dry-run --no-progress >>"$work/samples"
    done
    median <"$work/samples"
}
printf '%-44s %9s\n' "rehearsal + estimate, 1 past run" "$(rehearse)"
for ((p = 2; p <= PAST; p++)); do
    "$BIN" run book.yaml --no-progress >/dev/null
done
printf '%-44s %9s\n' "rehearsal + estimate, $PAST past runs" "$(rehearse)"
"$BIN" run book.yaml --dry-run --no-progress | tail -1
