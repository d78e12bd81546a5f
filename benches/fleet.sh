#!/usr/bin/env bash
# Benchmark of a fleet: 3 steps (`true`, `hostname`, `cat /etc/os-release > /dev/null`) on each of
# N SSH hosts (default 50), all served by one throwaway sshd on 127.0.0.1 under N names
# (`services.sh fleet-start DIR PORT N shared`), 20 hosts at a time:
#
#   runbook   a runbook whose 3 steps each fan out over the hosts (`on: "{{ params.hosts }}"`,
#             `defaults: { max_parallel: 20 }`), one multiplexed connection per host;
#   ansible   ansible-playbook, the same 3 tasks (`command`, `command`, `shell`), forks = 20,
#             pipelining, OpenSSH ControlMaster as Ansible sets it by default, no fact gathering;
#   ssh       the cost of one host-step without either: a fresh `ssh` per step, a session over an
#             open master (`ssh -S`), and such a session running the wrapper `Remote::run` sends
#             (`exec sh -s`, `setsid … &`, `wait`) — one step at a time, per host-step.
#
# Every round starts cold: no master survives from the round before (Ansible's ControlPersist
# masters are ended after each round). Each figure is the median of RUNS rounds (default 5); the
# two tools run alternately. `ansible-core` is installed with pip when `ansible-playbook` is
# missing. The runbook side runs once the engine fans `on:` out over a list of hosts; until then
# it is reported as not run, with the engine's reason.
#
# Usage: bash benches/fleet.sh
# Environment: RUNS (default 5), HOSTS (default 50), SKIP_BUILD=1 to reuse target/release/runbook.
set -euo pipefail

cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
source benches/lib.sh
HOSTS=${HOSTS:-50}
services=$PWD/tests/drills/services.sh

build_release
make_work_dir
trap 'bash "$services" stop-all "$work" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
export NO_COLOR=1 RUNBOOK_STATE_DIR="$work/state"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fleet=$work/fleet
bash "$services" fleet-start "$fleet" "$port" "$HOSTS" shared >/dev/null
user=$(id -un)
mapfile -t nodes < <(cut -d' ' -f1 "$fleet/nodes")

if ! command -v ansible-playbook >/dev/null; then
    python3 -m pip install -q ansible-core 2>/dev/null ||
        python3 -m pip install -q --break-system-packages ansible-core
fi
command -v ansible-playbook >/dev/null || { echo "error: ansible-playbook is not on PATH after installing ansible-core" >&2; exit 1; }

# --- The runbook: N declared hosts on one address; HostKeyAlias gives each its own connection
# (and its own known_hosts entry), as N real machines would have.
{
    echo "name: bench-fleet"
    echo "params:"
    printf '  hosts: { type: list, default: [%s] }\n' "$(IFS=,; echo "${nodes[*]}" | sed 's/,/, /g')"
    echo "defaults:"
    echo "  max_parallel: 20"
    echo "  ssh:"
    echo "    port: $port"
    echo "    identity_file: $fleet/client_key"
    echo "    options: [\"UserKnownHostsFile=$fleet/known_hosts\", \"StrictHostKeyChecking=yes\", \"IdentitiesOnly=yes\"]"
    echo "hosts:"
    for n in "${nodes[@]}"; do
        printf '  %s: { ssh: "%s@127.0.0.1", options: ["HostKeyAlias=%s"] }\n' "$n" "$user" "$n"
    done
    echo "steps:"
    echo "  - id: nothing"
    echo "    on: \"{{ params.hosts }}\""
    echo "    run: \"true\""
    echo "  - id: name"
    echo "    on: \"{{ params.hosts }}\""
    echo "    run: hostname"
    echo "  - id: release"
    echo "    on: \"{{ params.hosts }}\""
    echo "    run: cat /etc/os-release > /dev/null"
} >"$work/fleet.yaml"

# Whether the engine plans one node per host (the fan-out of SPEC §6); the reason when not.
runbook_fans_out() {
    local out
    if ! out=$("$BIN" run "$work/fleet.yaml" --dry-run --format json 2>&1); then
        runbook_reason=$(echo "$out" | grep -m1 -i error || echo "$out" | head -1)
        return 1
    fi
    if ! grep -q "nothing\[${nodes[0]}\]" <<<"$out"; then
        runbook_reason="the plan has no node per host (no nothing[${nodes[0]}])"
        return 1
    fi
}
run_runbook() { "$BIN" run "$work/fleet.yaml" --no-progress --yes; }
# The transport alone, from cold (its masters are ended after each round).
run_parallel_wrapped() {
    parallel_wrapped
    end_masters "$work/par"
}

# --- Ansible.
{
    echo "[fleet]"
    for n in "${nodes[@]}"; do
        echo "$n ansible_host=127.0.0.1 ansible_port=$port ansible_user=$user"
    done
    echo "[fleet:vars]"
    echo "ansible_ssh_private_key_file=$fleet/client_key"
    echo "ansible_python_interpreter=/usr/bin/python3"
} >"$work/inventory.ini"
cat >"$work/play.yml" <<'EOF'
- hosts: fleet
  gather_facts: false
  tasks:
    - ansible.builtin.command: "true"
    - ansible.builtin.command: hostname
    - ansible.builtin.shell: cat /etc/os-release > /dev/null
EOF
cat >"$work/ansible.cfg" <<EOF
[defaults]
forks = 20
host_key_checking = True
inventory = $work/inventory.ini
stdout_callback = default
retry_files_enabled = False
[ssh_connection]
pipelining = True
control_path_dir = $work/cp
ssh_args = -C -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=$fleet/known_hosts -o IdentitiesOnly=yes
EOF
export ANSIBLE_CONFIG=$work/ansible.cfg
# One round of Ansible from cold: its ControlPersist masters of the round are ended afterwards.
run_ansible() {
    local rc=0
    ansible-playbook "$work/play.yml" || rc=$?
    end_masters "$work/cp"
    return "$rc"
}
end_masters() {
    local s
    for s in "$1"/*; do
        [ -S "$s" ] && ssh -o ControlPath="$s" -O exit x >/dev/null 2>&1 || true
    done
}

# --- Plain ssh, one host-step at a time over all hosts × 3 commands.
steps=("true" "hostname" "cat /etc/os-release > /dev/null")
ssh_cfg=(-F "$fleet/ssh_config")
fresh_steps() {
    local n c
    for n in "${nodes[@]}"; do
        for c in "${steps[@]}"; do ssh "${ssh_cfg[@]}" "$n" "$c"; done
    done
}
open_masters() {
    local n
    mkdir -p "$work/mux"
    for n in "${nodes[@]}"; do
        ssh "${ssh_cfg[@]}" -o ControlMaster=yes -o ControlPersist=600 -o ControlPath="$work/mux/$n" -f -N "$n"
    done
}
mux_steps() {
    local n c
    for n in "${nodes[@]}"; do
        for c in "${steps[@]}"; do ssh -o ControlPath="$work/mux/$n" -o ControlMaster=no "$n" "$c"; done
    done
}
# What Remote::run sends for a script step, less the marker lines' parsing.
wrapped() {
    printf 'export RUNBOOK_RUN_ID=bench RUNBOOK_STEP=s\nsetsid sh /dev/fd/3 </dev/null 3<<'"'"'END'"'"' &\n%s\nEND\npid=$!\nprintf "m pgid %%s\\n" "$pid" >&2\nwait "$pid"\nprintf "m exit %%s\\n" "$?" >&2\n' "$1"
}
wrapped_steps() {
    local n c
    for n in "${nodes[@]}"; do
        for c in "${steps[@]}"; do
            wrapped "$c" | ssh -o ControlPath="$work/mux/$n" -o ControlMaster=no "$n" 'exec sh -s' 2>/dev/null
        done
    done
}

# The same transport as the runbook side, without the engine: a master per host opened 20 at a
# time, then each step on every host 20 at a time, each a session running the wrapper.
parallel_wrapped() {
    local k
    mkdir -p "$work/par"
    printf '%s\n' "${nodes[@]}" | xargs -P 20 -I{} ssh "${ssh_cfg[@]}" -o ControlMaster=yes \
        -o ControlPersist=600 -o ControlPath="$work/par/{}" -f -N {}
    for k in 0 1 2; do
        wrapped "${steps[$k]}" >"$work/payload-$k"
        printf '%s\n' "${nodes[@]}" | xargs -P 20 -I{} sh -c \
            'exec ssh -o ControlPath="$1/par/$2" -o ControlMaster=no "$2" "exec sh -s" <"$1/payload-$3" 2>/dev/null' \
            sh "$work" {} "$k"
    done
}

per_step() { awk -v t="$1" -v n="$2" 'BEGIN { printf "%.1f", t * 1000 / n }'; }

printf 'fleet: %d hosts (one sshd, 127.0.0.1), 3 steps each, 20 at a time; median of %d rounds\n\n' "$HOSTS" "$RUNS"
printf '%-44s %9s\n' case seconds
if runbook_fans_out; then
    read -r ours theirs < <(compare run_runbook run_ansible)
    printf '%-44s %9s\n' "runbook, max_parallel 20" "$ours" "ansible-playbook, forks 20, pipelining" "$theirs"
    awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "%-44s %9.2f\n", "ratio runbook / ansible", a / b }'
else
    ours="not run"
    read -r floor theirs < <(compare run_parallel_wrapped run_ansible)
    printf '%-44s %9s\n' "runbook, max_parallel 20" "not run" "ansible-playbook, forks 20, pipelining" "$theirs"
    echo "  (runbook: $runbook_reason)"
fi
[[ -n ${floor:-} ]] || read -r floor _ < <(compare run_parallel_wrapped true)
printf '%-44s %9s\n' "runbook's transport alone, 20 at a time" "$floor"
awk -v a="$floor" -v b="$theirs" 'BEGIN { printf "%-44s %9.2f\n", "ratio transport alone / ansible", a / b }'

n=$((HOSTS * 3))
: >"$work/fresh"
: >"$work/mux-t"
: >"$work/wrapped"
: >"$work/open"
for ((i = 0; i < RUNS; i++)); do
    seconds fresh_steps >>"$work/fresh"
    seconds open_masters >>"$work/open"
    seconds mux_steps >>"$work/mux-t"
    seconds wrapped_steps >>"$work/wrapped"
    end_masters "$work/mux"
done
echo
printf '%-44s %9s\n' "one host-step, one at a time" "ms"
printf '%-44s %9s\n' "fresh ssh connection per step" "$(per_step "$(median <"$work/fresh")" "$n")"
printf '%-44s %9s\n' "opening a master (per host, paid once)" "$(per_step "$(median <"$work/open")" "$HOSTS")"
printf '%-44s %9s\n' "session over the master" "$(per_step "$(median <"$work/mux-t")" "$n")"
printf '%-44s %9s\n' "session over the master, runbook's wrapper" "$(per_step "$(median <"$work/wrapped")" "$n")"
