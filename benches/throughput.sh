#!/usr/bin/env bash
# Throughput of `runbook run` with its durable journal on, each workload measured against a plain
# shell doing the same work in the same script run (alternately, median of RUNS pairs):
#
#   seq true      1000 steps `true` in a chain           vs  1000 × `sh -c true`        ≤ 1.3×
#   seq /bin/true 1000 steps `/bin/true` in a chain      vs  1000 × `/bin/true`         ≤ 1.5×
#   fan           100 × `sleep 0.2`, 20 at once          vs  the ideal 1.0 s            ≤ 1.03×
#                 and, informative, vs `xargs -P 20` starting the same processes
#   dag           100 steps `true` in layers of 10       vs  the layers as `& … wait`   (informative)
#   wide          2000 × `sleep 0.05`, 200 at once       vs  the ideal 0.5 s            ≤ 1.5 s
#                 and the peak number of commands running at once (from the journal: from each
#                 item's process start to its finish), which must reach 200; and, informative,
#                 vs `xargs -P 200` starting the same processes
#   polls         1000 HTTP steps polling a local server at once (`until: result.status == 200`,
#                 the server answers 503 for 2 s, then 200): peak RSS       ≤ 64 MiB
#   memory        peak RSS of runs of 1k, 10k and 100k sequential steps, next to `validate` of the
#                 same file (the compiled plan alone): what executing adds should stay flat
#
# The script exits 1 when a target is missed.
#
# Usage: bash benches/throughput.sh
# Environment: RUNS (pairs per comparison, default 5), MEM_SIZES (default "1000 10000 100000"),
#              ONLY (a space-separated subset of: seq fan dag wide polls memory),
#              SKIP_BUILD=1 to reuse target/release/runbook.
set -euo pipefail

cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
source benches/lib.sh
MEM_SIZES=${MEM_SIZES:-"1000 10000 100000"}
ONLY=${ONLY:-"seq fan dag wide polls memory"}

wanted() { [[ " $ONLY " == *" $1 "* ]]; }

build_release
ensure_gnu_time
make_work_dir
cd "$work"
export NO_COLOR=1 RUNBOOK_STATE_DIR="$work/state"

status=0
row() { printf '%-44s %9s %9s %7s %10s\n' "$@"; }
judge() { # NAME OURS BASE LIMIT: a row with the ratio and the verdict
    local verdict
    verdict=$(ratio_verdict "$2" "$3" "$4")
    row "$1" "$2" "$3" "${verdict% *}" "≤$4 ${verdict#* }"
    [[ $verdict != *MISSED ]] || status=1
}
row case runbook baseline ratio target

if wanted seq; then
    chain 1000 >seq-true.yaml
    sed 's/run: "true"/run: "\/bin\/true"/' seq-true.yaml >seq-bin-true.yaml
    run_true() { "$BIN" run seq-true.yaml --no-progress; }
    run_bin_true() { "$BIN" run seq-bin-true.yaml --no-progress; }
    bin_true_loop() {
        local i
        for i in $(seq 1000); do /bin/true; done
    }
    read -r ours base < <(compare run_true "shell_loop 1000")
    judge "seq 1000 x true (vs sh -c true)" "$ours" "$base" 1.3
    read -r ours base < <(compare run_bin_true bin_true_loop)
    judge "seq 1000 x /bin/true (vs /bin/true)" "$ours" "$base" 1.5
fi

if wanted fan; then
    cat >fan.yaml <<'EOF'
name: bench-fan
steps:
  - id: nap
    for_each: "{{ range(100) | list }}"
    max_parallel: 20
    run: sleep 0.2
EOF
    run_fan() { "$BIN" run fan.yaml --no-progress --max-parallel 20; }
    ideal_fan() { sleep 1; }
    read -r ours base < <(compare run_fan ideal_fan)
    judge "fan 100 x sleep 0.2, 20 at once (vs 1.0 s)" "$ours" 1.000 1.03
    # What starting 100 processes 20 at a time costs this machine without any engine.
    xargs_fan() { seq 100 | xargs -P 20 -I{} sleep 0.2; }
    read -r ours base < <(compare run_fan xargs_fan)
    row "  the same vs xargs -P 20 (informative)" "$ours" "$base" "$(awk -v a="$ours" -v b="$base" 'BEGIN { printf "%.2f", a / b }')" -
fi

if wanted dag; then
    {
        echo "name: bench-dag"
        echo "steps:"
        for ((l = 0; l < 10; l++)); do
            for ((c = 0; c < 10; c++)); do
                printf '  - id: s%d_%d\n    run: "true"\n' "$l" "$c"
                if ((l == 0)); then
                    echo "    needs: []"
                else
                    printf '    needs: [%s]\n' "$(for ((p = 0; p < 10; p++)); do printf 's%d_%d,' $((l - 1)) "$p"; done | sed 's/,$//')"
                fi
            done
        done
    } >dag.yaml
    run_dag() { "$BIN" run dag.yaml --no-progress --max-parallel 10; }
    shell_layers() {
        local l c
        for ((l = 0; l < 10; l++)); do
            for ((c = 0; c < 10; c++)); do sh -c true & done
            wait
        done
    }
    read -r ours base < <(compare run_dag shell_layers)
    verdict=$(ratio_verdict "$ours" "$base" 99)
    row "dag 100 x true, layers of 10 (vs sh & wait)" "$ours" "$base" "${verdict% *}" "-"
fi

# The peak number of items of fan-out ID running at once in the run RUN_ID, from its journal:
# +1 at an item's `process_started`, -1 at its `step_finished`.
peak_running() {
    python3 - "$RUNBOOK_STATE_DIR/runs/$1/journal.jsonl" "$2" <<'EOF'
import json, sys
path, fanout = sys.argv[1], sys.argv[2]
moves = []
for line in open(path):
    r = json.loads(line)
    if not r.get("id", "").startswith(fanout + "["):
        continue
    if r["type"] == "process_started":
        moves.append((r["at"], 1))
    elif r["type"] == "step_finished":
        moves.append((r["at"], -1))
moves.sort(key=lambda m: (m[0], m[1]))
now = peak = 0
for _, d in moves:
    now += d
    peak = max(peak, now)
print(peak)
EOF
}

if wanted wide; then
    cat >wide.yaml <<'EOF'
name: bench-wide
steps:
  - id: nap
    for_each: "{{ range(2000) | list }}"
    max_parallel: 200
    run: sleep 0.05
EOF
    : >"$work/wide"
    peaks=()
    for ((i = 0; i < RUNS; i++)); do
        seconds "$BIN" run wide.yaml --no-progress --max-parallel 200 --run-id "wide-$i" >>"$work/wide"
        peaks+=("$(peak_running "wide-$i" nap)")
    done
    ours=$(median <"$work/wide")
    # What starting 2000 processes 200 at a time costs this machine without any engine.
    : >"$work/wide-xargs"
    for ((i = 0; i < RUNS; i++)); do
        seconds bash -c 'seq 2000 | xargs -P 200 -I{} sleep 0.05' >>"$work/wide-xargs"
    done
    xargs_wide=$(median <"$work/wide-xargs")
    peak=$(printf '%s\n' "${peaks[@]}" | sort -n | tail -1)
    verdict=$(awk -v a="$ours" 'BEGIN { printf "%s", (a <= 1.5 ? "ok" : "MISSED") }')
    row "wide 2000 x sleep 0.05, 200 at once" "$ours" 0.500 "$(awk -v a="$ours" 'BEGIN { printf "%.2f", a / 0.5 }')" "≤1.5s $verdict"
    [[ $verdict != *MISSED ]] || status=1
    verdict=$( ((peak >= 200)) && echo ok || echo MISSED)
    row "  peak commands running at once" "$peak" 200 - "=200 $verdict"
    row "  the same vs xargs -P 200 (informative)" "$ours" "$xargs_wide" "$(awk -v a="$ours" -v b="$xargs_wide" 'BEGIN { printf "%.2f", a / b }')" -
    [[ $verdict != *MISSED ]] || status=1
fi

if wanted polls; then
    cat >server.py <<'EOF'
import http.server, socketserver, sys, time
ready_at = time.monotonic() + 2.0
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = 200 if time.monotonic() >= ready_at else 503
        body = b'{"status": "green"}' if code == 200 else b'{"status": "red"}'
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 2048
server = Server(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
EOF
    cat >polls.yaml <<'EOF'
name: bench-polls
params:
  port: { type: int }
steps:
  - id: poll
    for_each: "{{ range(1000) | list }}"
    max_parallel: 1000
    http: { url: "http://127.0.0.1:{{ params.port }}/health" }
    until: result.status == 200
    interval: 500ms
    timeout: 60s
EOF
    rss=()
    for ((i = 0; i < RUNS; i++)); do
        coproc SERVER { exec python3 server.py; }
        read -r port <&"${SERVER[0]}"
        /usr/bin/time -f '%M' -o "$work/rss" "$BIN" run polls.yaml --no-progress --max-parallel 1000 --set "port=$port" >/dev/null 2>"$work/err" || {
            echo "error: the polls run failed:" >&2
            tail -20 "$work/err" >&2
            exit 1
        }
        kill "$SERVER_PID"
        wait "$SERVER_PID" 2>/dev/null || true
        rss+=("$(tail -1 "$work/rss")")
    done
    kib=$(printf '%s\n' "${rss[@]}" | median)
    mib=$(awk -v k="$kib" 'BEGIN { printf "%.1f", k / 1024 }')
    verdict=$(awk -v m="$mib" 'BEGIN { printf "%s", (m <= 64 ? "ok" : "MISSED") }')
    row "polls 1000 HTTP at once: peak RSS MiB" "$mib" - - "≤64 $verdict"
    [[ $verdict != *MISSED ]] || status=1
fi

if wanted memory; then
    row "memory: steps in a chain" "run MiB" "plan MiB" "s" "-"
    for n in $MEM_SIZES; do
        chain "$n" >"mem-$n.yaml"
        /usr/bin/time -f '%M' -o "$work/rss" "$BIN" validate "mem-$n.yaml" >/dev/null 2>&1
        plan=$(awk '{ printf "%.1f", $1 / 1024 }' "$work/rss")
        start=$EPOCHREALTIME
        /usr/bin/time -f '%M' -o "$work/rss" "$BIN" run "mem-$n.yaml" --no-progress >/dev/null 2>"$work/err" || {
            echo "error: the $n-step run failed:" >&2
            tail -20 "$work/err" >&2
            exit 1
        }
        secs=$(awk -v s="$start" -v e="$EPOCHREALTIME" 'BEGIN { printf "%.1f", e - s }')
        run=$(awk '{ printf "%.1f", $1 / 1024 }' "$work/rss")
        row "  $n steps" "$run" "$plan" "$secs" "-"
    done
fi
exit "$status"
