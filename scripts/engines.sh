#!/usr/bin/env bash
# The container engines that drive kata-runtime in the compatibility suites (test/engines/).
#
#   bash scripts/engines.sh install     apt packages: podman conmon containerd docker.io umoci ...
#   bash scripts/engines.sh start DIR [containerd]
#                                       containerd + dockerd with root, state and sockets under DIR
#                                       (only containerd when asked; dockerd uses that containerd)
#   bash scripts/engines.sh start DIR netns NAME
#                                       the same, but dockerd runs in the existing network
#                                       namespace /run/netns/NAME with iptables, ip-forward and
#                                       ip-masq on (the network suite's daemon)
#   bash scripts/engines.sh stop DIR    stop them; nothing is left: no daemon, no mount under DIR
#   bash scripts/engines.sh env DIR     prints the variables a shell needs to talk to them
#
# Every subcommand is idempotent: `start` on a running DIR only re-checks that both answer, `stop`
# on a stopped (or never started) DIR succeeds. Nothing is written outside DIR except what the
# engines themselves keep under /run (containerd's shim sockets in /run/containerd/s, the runc
# shim's runtime state in /run/containerd/runc/<namespace>), which they remove with their tasks.
#
# Settings that work on these machines (see ../shared/design/callers.md and docs/engines.md):
# no systemd, so the cgroupfs driver; no registry, so images are imported locally; dockerd with
# "iptables": false and "bridge": "none"; dockerd uses OUR containerd (no managed one of its own).
# With `netns NAME` dockerd gets the network settings of a normal install (iptables, ip-forward,
# ip-masq) but inside a network namespace that the caller made: its bridges, iptables chains and
# the ip_forward it turns on stay in that namespace and go with it, and nothing it routes can leave
# the machine (the namespace has no way out). The host's own tables and sysctls are never touched.
# podman needs no daemon: the tests give it --root/--runroot in a fresh temporary folder per run and
# a containers.conf whose default_ulimits fit under this machine's hard nofile limit (root lacks
# CAP_SYS_RESOURCE here, and podman's default of 1048576 cannot be set).
set -euo pipefail

KATA=${KATA_RUNTIME_BIN:-/usr/local/bin/kata-runtime}
APT=(apt-get -o DPkg::Lock::Timeout=900 -y -q)
PKGS=(podman conmon containerd docker.io umoci runc tmux bsdutils util-linux procps iproute2 iptables containernetworking-plugins)

say() { printf '== engines: %s\n' "$*" >&2; }
die() { printf 'engines.sh: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,13p' "$0" >&2
  exit 2
}

cmd_install() {
  [ "$(id -u)" = 0 ] || die "install needs root"
  local missing=() p
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    "${APT[@]}" update
    # --no-install-recommends: recommends would pull in docker's and podman's network stacks and
    # systemd units that these machines do not run.
    DEBIAN_FRONTEND=noninteractive "${APT[@]}" install --no-install-recommends "${missing[@]}"
  fi
  # Debian's docker.io starts nothing here (no systemd); make sure no stray daemon uses the default
  # paths either: the suites only ever talk to the daemons that `start` runs under their own DIR.
  for p in podman conmon containerd ctr dockerd umoci runc tmux script; do
    command -v "$p" >/dev/null || die "$p missing after install"
  done
  [ -x /usr/bin/docker ] || die "/usr/bin/docker (docker.io) missing after install"
  say "installed: $(podman --version), conmon $(conmon --version | sed -n '1s/.*version //p'), $(containerd --version | awk '{print $1, $3}'), $(/usr/bin/docker --version), $(umoci --version)"
}

# --- start / stop -------------------------------------------------------------------------------

paths() {
  [ -n "${1:-}" ] || usage
  mkdir -p "$1"
  DIR=$(cd "$1" && pwd)
  C=$DIR/containerd
  D=$DIR/docker
  CSOCK=$C/containerd.sock
  DSOCK=$D/docker.sock
}

alive() { # pidfile
  [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

wait_for() { # what seconds command...
  local what=$1 secs=$2 i
  shift 2
  for ((i = 0; i < secs * 10; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  return 1
}

write_configs() { # [netns]
  local net=${1:-} fw=false
  [ -n "$net" ] && fw=true
  mkdir -p "$C/root" "$C/state" "$D/root" "$D/exec"
  cat >"$C/config.toml" <<EOF
version = 2
root = "$C/root"
state = "$C/state"
# The CRI plugin is for Kubernetes; these suites drive containerd with ctr only. See
# docs/engines.md for the CRI runtime entry (runc shim v2 with BinaryName) for kata-runtime.
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "$CSOCK"

[ttrpc]
  address = "$CSOCK.ttrpc"

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""
EOF
  cat >"$D/daemon.json" <<EOF
{
  "data-root": "$D/root",
  "exec-root": "$D/exec",
  "pidfile": "$D/dockerd.pid",
  "hosts": ["unix://$DSOCK"],
  "containerd": "$CSOCK",
  "exec-opts": ["native.cgroupdriver=cgroupfs"],
  "iptables": $fw,
  "ip-forward": $fw,
  "ip-masq": $fw,
  "bridge": "none",
  "userland-proxy": false,
  "runtimes": {
    "kata": { "path": "$KATA" }
  }
}
EOF
}

cmd_start() {
  paths "${1:-}"
  local only=${2:-all} netns=''
  local -a inns=()
  case "$only" in
    all | containerd) ;;
    netns)
      netns=${3:-}
      [ -n "$netns" ] || usage
      [ -e "/run/netns/$netns" ] || die "no network namespace /run/netns/$netns (ip netns add $netns)"
      # nsenter, not `ip netns exec`: that would also give dockerd a mount namespace of its own,
      # and the rootfs it mounts must be visible to containerd and the runtime.
      inns=(nsenter "--net=/run/netns/$netns")
      ;;
    *) usage ;;
  esac
  [ "$(id -u)" = 0 ] || die "start needs root"
  for p in containerd ctr dockerd; do command -v "$p" >/dev/null || die "$p not installed: run 'bash scripts/engines.sh install'"; done
  write_configs "$netns"
  # The hard nofile limit here is 20000 and root cannot raise it: let the daemons start from it.
  ulimit -n "$(ulimit -Hn)" || true

  if ! alive "$C/containerd.pid"; then
    say "starting containerd ($CSOCK)"
    setsid containerd --config "$C/config.toml" </dev/null >"$C/containerd.log" 2>&1 &
    echo $! >"$C/containerd.pid"
  fi
  if ! wait_for containerd 60 ctr --address "$CSOCK" version; then
    tail -n 30 "$C/containerd.log" >&2 || true
    die "containerd did not answer on $CSOCK within 60s (log: $C/containerd.log)"
  fi

  if [ "$only" = containerd ]; then
    say "containerd is up under $DIR"
    return 0
  fi

  if ! alive "$D/dockerd.pid"; then
    say "starting dockerd ($DSOCK)"
    rm -f "$D/dockerd.pid"
    setsid "${inns[@]}" dockerd --config-file "$D/daemon.json" </dev/null >"$D/dockerd.log" 2>&1 &
    # dockerd writes its own pidfile once it is up; keep ours for a daemon that dies before that
    echo $! >"$D/dockerd.launch-pid"
  fi
  if ! wait_for dockerd 90 /usr/bin/docker -H "unix://$DSOCK" version; then
    tail -n 30 "$D/dockerd.log" >&2 || true
    die "dockerd did not answer on $DSOCK within 90s (log: $D/dockerd.log)"
  fi
  say "containerd and dockerd are up under $DIR"
}

kill_pidfile() { # pidfile name
  local f=$1 name=$2 pid i
  [ -s "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    say "stopping $name ($pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      say "$name did not stop in 30s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  fi
  rm -f "$f"
}

# Processes whose command line mentions DIR (shims started for this containerd, conmon, QEMU and
# monitors of containers whose state lives there) and all their descendants (a runtime's helper
# may be addressed by a path outside DIR, e.g. /run/containerd/runc/<ns>/<id>), except this script
# and its own subshells.
procs_under() {
  local p pid cmd ppid
  local -A parent=() hit=()
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [ "$pid" = "$$" ] && continue
    ppid=$(awk '{print $4}' 2>/dev/null <"$p/stat") || continue
    [ "$ppid" = "$$" ] && continue
    parent[$pid]=$ppid
    cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
    case "$cmd" in *"$DIR/"* | *"$DIR "* | *"$DIR,"* | *"$DIR:"*) hit[$pid]=1 ;; esac
  done
  local changed=1
  while [ $changed = 1 ]; do
    changed=0
    for pid in "${!parent[@]}"; do
      if [ -z "${hit[$pid]:-}" ] && [ -n "${hit[${parent[$pid]}]:-}" ]; then
        hit[$pid]=1
        changed=1
      fi
    done
  done
  for pid in "${!hit[@]}"; do echo "$pid"; done
}

# The runc shim keeps the runtime's state outside DIR, in /run/containerd/runc/<ns>/<id>. When a
# task could not be deleted through containerd, remove that state with the runtime itself.
orphaned_runtime_state() {
  local t ns id
  for t in "$C"/state/io.containerd.runtime.v2.task/*/*; do
    [ -d "$t" ] || continue
    id=${t##*/}
    ns=${t%/*}
    ns=${ns##*/}
    [ -e "/run/containerd/runc/$ns/$id" ] || continue
    say "removing orphaned runtime state /run/containerd/runc/$ns/$id"
    for rt in "$KATA" /usr/sbin/runc; do
      [ -x "$rt" ] && timeout 60 "$rt" --root "/run/containerd/runc/$ns" delete --force "$id" >/dev/null 2>&1 || true
    done
    [ -e "/run/containerd/runc/$ns/$id" ] && echo "/run/containerd/runc/$ns/$id"
  done
  return 0
}

cmd_stop() {
  paths "${1:-}"
  # dockerd first: it is a client of containerd.
  kill_pidfile "$D/dockerd.pid" dockerd
  kill_pidfile "$D/dockerd.launch-pid" dockerd
  # Tasks still running in our containerd: their shims outlive containerd by design. Remove them
  # through ctr while containerd is still up (bounded: a runtime that hangs must not hang us),
  # then kill whatever is left.
  if alive "$C/containerd.pid"; then
    local ns id
    local -a ctr=(timeout 30 ctr --address "$CSOCK")
    for ns in $("${ctr[@]}" namespaces list -q 2>/dev/null); do
      for id in $("${ctr[@]}" -n "$ns" tasks list -q 2>/dev/null); do
        "${ctr[@]}" -n "$ns" tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
        "${ctr[@]}" -n "$ns" tasks delete -f "$id" >/dev/null 2>&1 || say "could not delete task $ns/$id through containerd"
      done
      for id in $("${ctr[@]}" -n "$ns" containers list -q 2>/dev/null); do
        "${ctr[@]}" -n "$ns" containers delete "$id" >/dev/null 2>&1 || true
      done
    done
  fi
  kill_pidfile "$C/containerd.pid" containerd
  local left
  left=$(procs_under)
  if [ -n "$left" ]; then
    say "killing leftover processes: $(echo $left)"
    kill -KILL $left 2>/dev/null || true
    sleep 1
  fi
  local orphans
  orphans=$(orphaned_runtime_state)
  # Mounts under DIR (overlay snapshots, shm, netns bind mounts), deepest first.
  local m i mp
  for ((i = 0; i < 5; i++)); do
    m=$(awk -v d="$DIR" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r)
    [ -z "$m" ] && break
    for mp in $m; do umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || true; done
  done
  m=$(awk -v d="$DIR" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo)
  left=$(procs_under)
  [ -z "$m" ] || die "mounts left under $DIR: $m"
  [ -z "$left" ] || die "processes left that mention $DIR: $left"
  [ -z "$orphans" ] || die "runtime state left: $orphans"
  say "stopped; nothing runs or is mounted under $DIR"
}

cmd_env() {
  paths "${1:-}"
  echo "CONTAINERD_ADDRESS=$CSOCK"
  echo "DOCKER_HOST=unix://$DSOCK"
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start "${2:-}" "${3:-}" "${4:-}" ;;
  stop) cmd_stop "${2:-}" ;;
  env) cmd_env "${2:-}" ;;
  *) usage ;;
esac
