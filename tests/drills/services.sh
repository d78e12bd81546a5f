#!/usr/bin/env bash
# Real services for the end-to-end drills (tests/drills/), each on 127.0.0.1 in a folder of its
# own. Nothing here touches the machine's own service instances or configuration.
#
#   services.sh install                      apt-get/pip what the drills need (tests/run.sh calls it)
#   services.sh zookeeper-start DIR PORT     ZooKeeper (Debian `zookeeper`), dataDir DIR/data
#   services.sh zookeeper-stop DIR
#   services.sh postgres-init DIR            initdb DIR/data (as the `postgres` user when root)
#   services.sh postgres-start DIR PORT      PostgreSQL (Debian `postgresql`), socket in DIR
#   services.sh postgres-stop DIR
#   services.sh sshd-start DIR PORT          sshd with a throwaway host key; writes DIR/client_key,
#                                            DIR/ssh_config and DIR/bin/ssh (ssh -F DIR/ssh_config)
#   services.sh fleet-start DIR PORT N [distinct|shared]
#                                            one sshd serving N hosts node1…nodeN: with
#                                            `distinct` (the default, N <= 15) nodeI is 127.0.0.(I+1),
#                                            so a per-node service can bind 127.0.0.(I+1):ANY,
#                                            and sessions on it see FLEET_NODE=nodeI (the last
#                                            node, when N > 1, refuses TCP forwarding, so a drill
#                                            can tell a request sent from a host); with
#                                            `shared` every node is 127.0.0.1 (N up to 200).
#                                            Writes DIR/client_key, DIR/known_hosts (every
#                                            address, and every nodeI for HostKeyAlias),
#                                            DIR/ssh_config (a `Host nodeI` entry each:
#                                            `ssh -F DIR/ssh_config node3 …`), DIR/bin/ssh and
#                                            DIR/nodes (`nodeI ADDRESS` lines)
#   services.sh moto-start DIR PORT          moto_server: an S3-protocol server (PyPI `moto[server]`)
#   services.sh fake-start DIR NAME PORT SCRIPT ARGS…
#                                            a python3 fake of tests/drills (SCRIPT --port PORT ARGS…)
#                                            as service NAME, log DIR/NAME.log
#   services.sh stop DIR NAME                stops DIR/NAME.pid's process group
#   services.sh stop-all ROOT                stops every service under ROOT/*/ (PostgreSQL
#                                            with pg_ctl, the others by ROOT/*/*.pid)
#
# Every start waits until the service answers and fails loudly (its log on stderr) when it does
# not: a drill never skips because a service is missing.
set -euo pipefail

die() {
  echo "services.sh: $*" >&2
  exit 1
}

# Prints a log file on stderr (the reason a start failed).
show_log() {
  if [ -f "$1" ]; then
    echo "--- $1 (last 40 lines)" >&2
    tail -n 40 "$1" >&2
  fi
}

# Waits up to $1 seconds for the command after it to succeed.
wait_for() {
  local limit=$1
  shift
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      return 1
    fi
    sleep 0.2
  done
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Starts a daemon in its own session (so a runbook step that starts it can end), recording its pid.
spawn() {
  local pidfile=$1 log=$2
  shift 2
  setsid "$@" >"$log" 2>&1 </dev/null &
  echo $! >"$pidfile"
}

stop_pidfile() {
  local pidfile=$1
  [ -f "$pidfile" ] || return 0
  local pid
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 20))
    while kill -0 "$pid" 2>/dev/null; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        break
      fi
      sleep 0.1
    done
  fi
  rm -f "$pidfile"
}

install() {
  local need=()
  [ -f /usr/share/java/zookeeper.jar ] || need+=(zookeeper)
  command -v java >/dev/null || need+=(default-jre-headless)
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
  [ -x /usr/sbin/sshd ] || need+=(openssh-server)
  command -v ssh >/dev/null || need+=(openssh-client)
  command -v s3cmd >/dev/null || need+=(s3cmd)
  command -v rsync >/dev/null || need+=(rsync)
  command -v python3 >/dev/null || need+=(python3 python3-pip)
  if [ ${#need[@]} -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || die "missing ${need[*]}; run as root so apt-get can install them"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  if ! command -v moto_server >/dev/null; then
    python3 -m pip install -q 'moto[server]' ||
      python3 -m pip install -q --break-system-packages 'moto[server]'
  fi
  command -v moto_server >/dev/null || die "moto_server is not on PATH after installing moto[server]"
}

pg_bin() {
  local initdb
  initdb=$(compgen -G '/usr/lib/postgresql/*/bin/initdb' | sort -V | tail -n 1) ||
    die "PostgreSQL is not installed (run services.sh install)"
  dirname "$initdb"
}

# Runs a command as the PostgreSQL owner: `postgres` when we are root (PostgreSQL refuses to run
# as root), ourselves otherwise.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

zookeeper_start() {
  local dir=$1 port=$2
  # Started already (a step repeated by a resumed run): keep that one, as a deployment would. A
  # second server would fail to bind, while the first answered for it and lost its pid file.
  if [ -f "$dir/zookeeper.pid" ] && kill -0 "$(cat "$dir/zookeeper.pid")" 2>/dev/null; then
    if ! wait_for 60 zk_ok "$port"; then
      show_log "$dir/zookeeper.log"
      die "ZooKeeper (pid $(cat "$dir/zookeeper.pid")) runs but does not answer on 127.0.0.1:$port"
    fi
    echo "ZooKeeper already running on 127.0.0.1:$port (dataDir $dir/data)"
    return 0
  fi
  mkdir -p "$dir/data"
  cat >"$dir/zoo.cfg" <<EOF
tickTime=2000
dataDir=$dir/data
clientPort=$port
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr
EOF
  spawn "$dir/zookeeper.pid" "$dir/zookeeper.log" \
    java -Xmx256m -cp /usr/share/java/zookeeper.jar:/usr/share/java/slf4j-nop.jar \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zoo.cfg"
  if ! wait_for 60 zk_ok "$port"; then
    show_log "$dir/zookeeper.log"
    die "ZooKeeper did not answer on 127.0.0.1:$port within 60 s"
  fi
  echo "ZooKeeper on 127.0.0.1:$port (dataDir $dir/data)"
}

# Serving client sessions: `srvr` reports the server's mode only then (`ruok` answers earlier).
zk_ok() {
  local reply
  reply=$(exec 3<>"/dev/tcp/127.0.0.1/$1" && printf srvr >&3 && timeout 2 cat <&3) || return 1
  case "$reply" in *"Mode: "*) return 0 ;; *) return 1 ;; esac
}

postgres_init() {
  local dir=$1 bin
  bin=$(pg_bin)
  mkdir -p "$dir"
  # The data directory's parent must belong to its owner: initdb creates it, and a drill's wipe
  # step removes it whole.
  [ "$(id -u)" -ne 0 ] || chown postgres: "$dir"
  as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
    { show_log "$dir/initdb.log"; die "initdb failed in $dir/data"; }
  echo "PostgreSQL cluster initialized in $dir/data"
}

postgres_start() {
  local dir=$1 port=$2 bin
  bin=$(pg_bin)
  as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null ||
    { show_log "$dir/postgres.log"; die "PostgreSQL did not start on 127.0.0.1:$port"; }
  echo "PostgreSQL on 127.0.0.1:$port (data $dir/data)"
}

postgres_stop() {
  local dir=$1 bin
  bin=$(pg_bin)
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
  fi
}

# Host and client keys and authorized_keys, for sshd-start and fleet-start.
ssh_keys() {
  local dir=$1
  mkdir -p "$dir/bin"
  [ -f "$dir/host_key" ] || ssh-keygen -q -t ed25519 -N '' -C drill-host -f "$dir/host_key"
  [ -f "$dir/client_key" ] || ssh-keygen -q -t ed25519 -N '' -C drill-client -f "$dir/client_key"
  cp "$dir/client_key.pub" "$dir/authorized_keys"
  chmod 600 "$dir/authorized_keys"
  # Privilege separation directory, which Debian's sshd expects (normally made by its service).
  [ "$(id -u)" -ne 0 ] || mkdir -p /run/sshd
}

fleet_start() {
  local dir=$1 port=$2 n=$3 mode=${4:-distinct} user i addr name
  user=$(id -un)
  case "$mode" in
    # sshd listens on at most 16 sockets.
    distinct) [ "$n" -ge 1 ] && [ "$n" -le 15 ] || die "fleet-start: distinct addresses take 1 to 15 nodes, not $n" ;;
    shared) [ "$n" -ge 1 ] && [ "$n" -le 200 ] || die "fleet-start: shared takes 1 to 200 nodes, not $n" ;;
    *) die "fleet-start: the mode is distinct or shared, not '$mode'" ;;
  esac
  ssh_keys "$dir"
  : >"$dir/nodes"
  for i in $(seq 1 "$n"); do
    if [ "$mode" = distinct ]; then addr=127.0.0.$((i + 1)); else addr=127.0.0.1; fi
    echo "node$i $addr" >>"$dir/nodes"
  done
  {
    echo "Port $port"
    if [ "$mode" = distinct ]; then
      while read -r _ addr; do echo "ListenAddress $addr"; done <"$dir/nodes"
    else
      echo "ListenAddress 127.0.0.1"
    fi
    cat <<EOF
HostKey $dir/host_key
PidFile $dir/sshd.real.pid
AuthorizedKeysFile $dir/authorized_keys
AllowUsers $user
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
# A fleet connects at once: no random refusals of handshakes, room for multiplexed sessions.
MaxStartups 200:100:400
MaxSessions 64
Subsystem sftp internal-sftp
LogLevel ERROR
EOF
    if [ "$mode" = distinct ]; then
      # Which node a command ran on, as the node sees it.
      while read -r name addr; do
        printf 'Match LocalAddress %s\n  SetEnv FLEET_NODE=%s\n' "$addr" "$name"
        if [ "$n" -gt 1 ] && [ "$name" = "node$n" ]; then printf '  AllowTcpForwarding no\n'; fi
      done <"$dir/nodes"
    fi
  } >"$dir/sshd_config"
  # Each address, and each node's name for a client that names it with `HostKeyAlias=nodeI`
  # (distinct connections to one shared address).
  { cut -d' ' -f2 "$dir/nodes" | sort -u; cut -d' ' -f1 "$dir/nodes"; } | while read -r addr; do
    echo "[$addr]:$port $(cat "$dir/host_key.pub")"
  done >"$dir/known_hosts"
  # ssh looks a HostKeyAlias up without the port.
  cut -d' ' -f1 "$dir/nodes" | while read -r name; do
    echo "$name $(cat "$dir/host_key.pub")"
  done >>"$dir/known_hosts"
  {
    while read -r name addr; do
      printf 'Host %s\n  HostName %s\n  Port %s\n  User %s\n' "$name" "$addr" "$port" "$user"
    done <"$dir/nodes"
    cat <<EOF
Host *
  IdentityFile $dir/client_key
  IdentitiesOnly yes
  UserKnownHostsFile $dir/known_hosts
  StrictHostKeyChecking yes
  BatchMode yes
  ConnectTimeout 10
EOF
  } >"$dir/ssh_config"
  printf '#!/bin/sh\nexec /usr/bin/ssh -F %s "$@"\n' "$dir/ssh_config" >"$dir/bin/ssh"
  chmod +x "$dir/bin/ssh"
  /usr/sbin/sshd -t -f "$dir/sshd_config" || die "sshd rejects its generated configuration $dir/sshd_config"
  spawn "$dir/sshd.pid" "$dir/sshd.log" /usr/sbin/sshd -D -e -f "$dir/sshd_config"
  if ! wait_for 20 "$dir/bin/ssh" "node$n" true; then
    show_log "$dir/sshd.log"
    die "sshd did not accept the drill key for node$n within 20 s"
  fi
  echo "fleet of $n nodes ($mode addresses) on port $port for $user (client config $dir/ssh_config)"
}

sshd_start() {
  local dir=$1 port=$2 user
  user=$(id -un)
  ssh_keys "$dir"
  cat >"$dir/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host_key
PidFile $dir/sshd.real.pid
AuthorizedKeysFile $dir/authorized_keys
AllowUsers $user
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
Subsystem sftp internal-sftp
LogLevel ERROR
EOF
  # The client side, as an operator's ~/.ssh/config would have it: this key, this host key.
  echo "[127.0.0.1]:$port $(cat "$dir/host_key.pub")" >"$dir/known_hosts"
  cat >"$dir/ssh_config" <<EOF
Host *
  IdentityFile $dir/client_key
  IdentitiesOnly yes
  UserKnownHostsFile $dir/known_hosts
  StrictHostKeyChecking yes
  BatchMode yes
  ConnectTimeout 10
EOF
  printf '#!/bin/sh\nexec /usr/bin/ssh -F %s "$@"\n' "$dir/ssh_config" >"$dir/bin/ssh"
  chmod +x "$dir/bin/ssh"
  /usr/sbin/sshd -t -f "$dir/sshd_config" || die "sshd rejects its generated configuration $dir/sshd_config"
  spawn "$dir/sshd.pid" "$dir/sshd.log" /usr/sbin/sshd -D -e -f "$dir/sshd_config"
  if ! wait_for 20 "$dir/bin/ssh" -p "$port" "$user@127.0.0.1" true; then
    show_log "$dir/sshd.log"
    die "sshd did not accept the drill key on 127.0.0.1:$port within 20 s"
  fi
  echo "sshd on 127.0.0.1:$port for $user (client config $dir/ssh_config)"
}

moto_start() {
  local dir=$1 port=$2
  mkdir -p "$dir"
  command -v moto_server >/dev/null || die "moto_server is not installed (run services.sh install)"
  spawn "$dir/moto.pid" "$dir/moto.log" moto_server -H 127.0.0.1 -p "$port"
  if ! wait_for 60 curl -fsS -o /dev/null "http://127.0.0.1:$port/moto-api/"; then
    show_log "$dir/moto.log"
    die "moto_server did not answer on 127.0.0.1:$port within 60 s"
  fi
  echo "moto S3 server on 127.0.0.1:$port"
}

fake_start() {
  local dir=$1 name=$2 port=$3 script=$4
  shift 4
  mkdir -p "$dir"
  spawn "$dir/$name.pid" "$dir/$name.log" python3 "$(dirname "$0")/$script" --port "$port" "$@"
  if ! wait_for 20 port_open "$port"; then
    show_log "$dir/$name.log"
    die "$script did not listen on 127.0.0.1:$port within 20 s"
  fi
  echo "$script on 127.0.0.1:$port"
}

cmd=${1:-}
shift || true
case "$cmd" in
  install) install ;;
  zookeeper-start) zookeeper_start "$1" "$2" ;;
  zookeeper-stop) stop_pidfile "$1/zookeeper.pid" ;;
  postgres-init) postgres_init "$1" ;;
  postgres-start) postgres_start "$1" "$2" ;;
  postgres-stop) postgres_stop "$1" ;;
  sshd-start) sshd_start "$1" "$2" ;;
  fleet-start) fleet_start "$@" ;;
  moto-start) moto_start "$1" "$2" ;;
  fake-start) fake_start "$@" ;;
  stop) stop_pidfile "$1/$2.pid" ;;
  stop-all)
    for d in "$1"/*/; do
      [ -f "$d/data/postmaster.pid" ] && { postgres_stop "${d%/}" || true; }
    done
    for f in "$1"/*/*.pid; do
      if [ -f "$f" ]; then stop_pidfile "$f"; fi
    done
    ;;
  *) die "unknown command '${cmd}' (see the header of this script)" ;;
esac
