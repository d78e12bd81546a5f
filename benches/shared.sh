#!/usr/bin/env bash
# Benchmark of the PostgreSQL store (`--state postgres://…`), on a PostgreSQL started here on
# 127.0.0.1 (tests/drills/services.sh, as the tests start it):
#
#   seq 1000   1000 steps `true`, each depending on the one before, through `runbook run
#              --no-progress` with the PostgreSQL store, with the local run folder, and the shell
#              loop `for i in $(seq 1000); do sh -c true; done`, alternately in one script run.
#              Target: the PostgreSQL store ≤ 3× the shell loop.
#   runs 10k   `runbook runs` over a database holding 10 000 runs. Target: ≤ 0.3 s.
#   crash      CRASH_TRIALS kill -9 trials of tests/shared/shared_crash.rs (40 steps, killed at
#              random moments and resumed until done) against this build's tests; 0 skips them.
#
# Each timing is the median of RUNS runs (default 3). The script exits 1 when a target is missed
# or a crash trial fails.
#
# Usage: bash benches/shared.sh
# Environment: RUNS (default 3), N (default 1000), CRASH_TRIALS (default 100), SKIP_BUILD=1 to
#              reuse target/release/runbook.
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$PWD
source benches/lib.sh
N=${N:-1000}
CRASH_TRIALS=${CRASH_TRIALS:-100}

build_release
work=$(mktemp -d)
chmod 755 "$work"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
trap 'bash "$repo/tests/drills/services.sh" postgres-stop "$work/pg" || true; rm -rf "$work"' EXIT
bash tests/drills/services.sh postgres-init "$work/pg" >/dev/null
bash tests/drills/services.sh postgres-start "$work/pg" "$port" >/dev/null
psql() { "$(dirname "$(compgen -G '/usr/lib/postgresql/*/bin/psql' | sort -V | tail -n 1)")/psql" \
    -h 127.0.0.1 -p "$port" -U postgres -X -q -v ON_ERROR_STOP=1 "$@"; }
psql -d postgres -c 'CREATE DATABASE seq' -c 'CREATE DATABASE many'

cd "$work"
export NO_COLOR=1 RUNBOOK_STATE_DIR="$work/state"
pg="postgres://postgres@127.0.0.1:$port"
chain "$N" >"seq-$N.yaml"

run_pg() { RUNBOOK_STATE="$pg/seq" "$BIN" run "seq-$1.yaml" --no-progress; }
run_local() { "$BIN" run "seq-$1.yaml" --no-progress; }

status=0
: >"$work/t_pg"
: >"$work/t_local"
: >"$work/t_sh"
for ((i = 0; i < RUNS; i++)); do
    seconds run_pg "$N" >>"$work/t_pg"
    seconds run_local "$N" >>"$work/t_local"
    seconds shell_loop "$N" >>"$work/t_sh"
done
t_pg=$(median <"$work/t_pg")
t_local=$(median <"$work/t_local")
t_sh=$(median <"$work/t_sh")
printf '%-40s %9s %9s %7s %8s\n' case runbook baseline ratio target
verdict=$(ratio_verdict "$t_pg" "$t_sh" 3)
printf '%-40s %9s %9s %7s %8s\n' "seq $N x true, postgres (vs sh loop)" "$t_pg" "$t_sh" "${verdict% *}" "≤3 ${verdict#* }"
[[ $verdict == *MISSED ]] && status=1
verdict=$(ratio_verdict "$t_local" "$t_sh" 3)
printf '%-40s %9s %9s %7s %8s\n' "seq $N x true, run folder (vs sh loop)" "$t_local" "$t_sh" "${verdict% *}" "-"
awk -v a="$t_pg" -v b="$t_local" 'BEGIN { printf "%-40s %9s %9s %7.2f %8s\n", "postgres vs run folder", a, b, a / b, "-" }'

# 10 000 runs, as runbook writes them (a row, params, the start and the end in the journal),
# made by SQL so that the setup takes seconds; the tables are made by the first `runbook runs`.
RUNBOOK_STATE="$pg/many" "$BIN" runs >/dev/null
psql -d many <<'SQL'
INSERT INTO runbook.runs (run_id, runbook, source, root, started_at, ended, finished_at, lease_epoch)
SELECT format('run-%s', i), 'bench', 'bench.yaml', 'bench.yaml',
       now() - make_interval(mins => 10001 - i), 'succeeded',
       now() - make_interval(mins => 10001 - i) + interval '3 seconds', 1
FROM generate_series(1, 10000) AS i;
INSERT INTO runbook.params (run, params) SELECT key, '{"size": 3}' FROM runbook.runs;
INSERT INTO runbook.records (run, seq, record)
SELECT key, 0, json_build_object('type', 'run_started', 'v', 1, 'run_id', run_id, 'runbook', 'bench',
       'source', 'bench.yaml', 'hash', 'h', 'steps', '{}'::json, 'fingerprint', 1, 'at', started_at,
       'pid', 1, 'user', 'bench')
FROM runbook.runs;
INSERT INTO runbook.records (run, seq, record)
SELECT key, 1, json_build_object('type', 'run_finished', 'status', 'succeeded', 'at', finished_at)
FROM runbook.runs;
ANALYZE;
SQL
list_runs() { RUNBOOK_STATE="$pg/many" "$BIN" runs; }
: >"$work/t_runs"
for ((i = 0; i < RUNS; i++)); do seconds list_runs >>"$work/t_runs"; done
t_runs=$(median <"$work/t_runs")
listed=$(list_runs | tail -n +2 | wc -l)
[[ $listed -eq 10000 ]] || { echo "error: runs listed $listed runs, not 10000" >&2; exit 1; }
verdict=$(awk -v a="$t_runs" 'BEGIN { printf "%s", (a <= 0.3 ? "ok" : "MISSED") }')
printf '%-40s %9s %9s %7s %8s\n' "runs over 10000 runs" "$t_runs" "-" "-" "≤0.3s $verdict"
[[ $verdict == MISSED ]] && status=1

if [[ $CRASH_TRIALS -gt 0 ]]; then
    cd "$repo"
    echo "crash: $CRASH_TRIALS kill -9 trials (cargo test --test shared shared_crash::)"
    rc=0
    RUNBOOK_PG_CRASH_TRIALS=$CRASH_TRIALS cargo test --quiet --test shared -- shared_crash:: --nocapture \
        >"$work/crash.log" 2>&1 || rc=$?
    grep -E 'kills mid-step|test result' "$work/crash.log" || true
    if [[ $rc -ne 0 ]]; then
        tail -n 60 "$work/crash.log" >&2
        status=1
    fi
fi
exit "$status"
