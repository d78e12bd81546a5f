#!/usr/bin/env bash
# A long run of the mutation test in tests/cli/fuzz.rs: the repository's runbooks, fixtures and
# the corpus in tests/fuzz/corpus/, mutated, read, checked, compiled and rendered, until the time
# is spent. It prints the number of executions; on a failure it prints the failing input.
#
# Usage: bash benches/fuzz.sh
# Environment: SECONDS_TO_RUN (default 600), SEED (the first round's seed, default: from the
#              clock, printed so that a run can be repeated), CASES (cases per round, default
#              1000), PROFILE (cargo profile, default test, unoptimized: its larger stack frames make a stack
#              overflow more likely to show than in release).
set -uo pipefail

cd "$(dirname "$0")/.."
SECONDS_TO_RUN=${SECONDS_TO_RUN:-600}
SEED=${SEED:-$(date +%s)}
CASES=${CASES:-1000}
PROFILE=${PROFILE:-test}
scratch=target/tmp

echo "fuzzing for ${SECONDS_TO_RUN}s from seed $SEED ($CASES cases per round, $PROFILE profile)"
rm -f "$scratch/fuzz-failure"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
RUNBOOK_FUZZ_SECONDS=$SECONDS_TO_RUN RUNBOOK_FUZZ_SEED=$SEED RUNBOOK_FUZZ_CASES=$CASES \
    cargo test --quiet --profile "$PROFILE" --test cli -- fuzz:: --nocapture >"$log" 2>&1
rc=$?
if ((rc == 0)); then
    grep '^fuzz: ' "$log"
    exit 0
fi
grep -E '^fuzz: |panicked|seed [0-9]+:|minimal failing input' -A12 "$log" | head -60
if grep -qE 'signal: (6|11)|overflowed its stack' "$log"; then
    # An abort cannot be caught: the input being run when it happened is the one.
    echo "the process aborted; the input it was running is $scratch/fuzz-current-input"
elif [[ -f $scratch/fuzz-failure ]]; then
    echo "the failing input is $scratch/fuzz-failure"
fi
exit 1
