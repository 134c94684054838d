#!/bin/sh
# Test /init for guest/smoke.sh, used in place of the agent
# (guest/build.sh --agent guest/test-init.sh). Runs on the image's busybox.
#
# Mode comes from the kernel command line: an unknown `key=value` parameter
# reaches init as an environment variable, so `smoke_mode=boot` sets
# $smoke_mode. Modes:
#   boot  print the marker line and power off (boot-time measurements)
#   full  prove virtio-fs, virtio-serial, cgroup2 + crun; then wait for the
#         host to stop the VM through QMP
# Every check prints `SMOKE-OK <name>` or `SMOKE-FAIL <name>: <why>`; the host
# (smoke.sh) greps the console log for them.

echo "SMOKE: init started (pid $$)"
export PATH=/usr/sbin:/usr/bin:/sbin:/bin

ok() { echo "SMOKE-OK $1"; }
fail() { echo "SMOKE-FAIL $1: $2"; FAILED=1; }
FAILED=0

power_off() {
    # smoke_off=reboot (default): reboot(RB_AUTOBOOT) via `reboot -f`; QEMU's
    # -no-reboot turns the reset into an exit. smoke_off=poweroff:
    # reboot(RB_POWER_OFF) via `poweroff -f`, which on microvm with acpi=off
    # only halts (no power-off device), so QEMU keeps running.
    sync
    if [ "${smoke_off:-reboot}" = reboot ]; then reboot -f; else poweroff -f; fi
    sleep 5
    echo "SMOKE: still alive after ${smoke_off:-reboot} -f"
    while :; do sleep 60; done
}

if [ "${smoke_mode:-full}" = boot ]; then
    power_off
fi

# pivot_root(2) refuses to run while the caller's root is the initramfs
# (rootfs has no parent mount), and crun pivots. Make / a bind mount of
# rootfs and chroot into it; the agent must do the same (or crun --no-pivot).
# smoke_noreroot=1 skips this (to see crun fail).
if [ "${SMOKE_REROOTED:-}" != 1 ] && [ "${smoke_noreroot:-}" != 1 ]; then
    mkdir -p /.rootfs
    mount --bind / /.rootfs && cd /.rootfs && mount --move . / \
        && export SMOKE_REROOTED=1 && exec chroot . /init "$@"
    echo "SMOKE-FAIL reroot: could not re-root out of rootfs"
fi

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /run/kata/shared /run/kata/bundles
mount -t devpts devpts /dev/pts -o newinstance,ptmxmode=0666,mode=0620
mount -t tmpfs shm /dev/shm -o mode=1777
echo "SMOKE: kernel $(uname -r) cmdline: $(cat /proc/cmdline)"
[ -c /dev/ttyS0 ] && ok ttyS0 || fail ttyS0 "no /dev/ttyS0"

# --- virtio-fs --------------------------------------------------------------
SHARED=/run/kata/shared
if mount -t virtiofs kataShared "$SHARED"; then
    ok virtiofs-mount
    host_text="$(cat "$SHARED/host.txt" 2>&1)"
    echo "SMOKE: host.txt says: $host_text"
    case "$host_text" in
        host-nonce-*) ok virtiofs-read ;;
        *) fail virtiofs-read "unexpected host.txt: $host_text" ;;
    esac
    if echo "guest-saw:$host_text" > "$SHARED/guest.txt" && sync; then
        ok virtiofs-write
    else
        fail virtiofs-write "cannot write $SHARED/guest.txt"
    fi
else
    fail virtiofs-mount "mount -t virtiofs kataShared failed"
fi

# --- virtio-serial ------------------------------------------------------------
PORT=""
for n in /sys/class/virtio-ports/*/name; do
    [ -f "$n" ] || continue
    echo "SMOKE: virtio port $(basename "$(dirname "$n")") name=$(cat "$n")"
    if [ "$(cat "$n")" = agent.0 ]; then
        PORT="/dev/$(basename "$(dirname "$n")")"
    fi
done
if [ -n "$PORT" ] && [ -c "$PORT" ]; then
    ok "virtio-port-found $PORT"
    # One open for both directions: a virtio-serial port can be open only
    # once. read(2) returns 0 (EOF) while no host client is connected, so
    # retry until the host has connected and sent a line.
    exec 3<>"$PORT"
    got=""
    i=0
    while [ $i -lt 600 ]; do
        if IFS= read -r line <&3; then got="$line"; break; fi
        i=$((i + 1))
        sleep 0.1
    done
    echo "SMOKE: serial got after $i EOF retries: $got"
    case "$got" in
        ping-*) echo "pong:$got" >&3 && ok virtio-serial ;;
        *) fail virtio-serial "no ping from host (got '$got')" ;;
    esac
else
    fail virtio-port-found "no virtio port named agent.0"
fi

# --- cgroup2 + crun ------------------------------------------------------------
if mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup; then
    echo "SMOKE: cgroup controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
    for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
        echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control || fail cgroup2 "cannot enable $c"
    done
    echo "SMOKE: subtree_control: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
    for c in cpu cpuset io memory pids; do
        grep -qw "$c" /sys/fs/cgroup/cgroup.subtree_control || fail cgroup2 "controller $c missing"
    done
    ok cgroup2
else
    fail cgroup2 "mount cgroup2 failed"
fi

# write_bundle ID ARGS_JSON RESOURCES_JSON
write_bundle() {
    mkdir -p "/run/kata/bundles/$1"
    cat > "/run/kata/bundles/$1/config.json" <<EOF
{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": false,
    "user": {"uid": 0, "gid": 0},
    "args": $2,
    "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"],
    "cwd": "/",
    "capabilities": {
      "bounding": ["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FSETID","CAP_FOWNER","CAP_MKNOD","CAP_NET_RAW","CAP_SETGID","CAP_SETUID","CAP_SETFCAP","CAP_SETPCAP","CAP_NET_BIND_SERVICE","CAP_SYS_CHROOT","CAP_KILL","CAP_AUDIT_WRITE"],
      "effective": ["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FSETID","CAP_FOWNER","CAP_MKNOD","CAP_NET_RAW","CAP_SETGID","CAP_SETUID","CAP_SETFCAP","CAP_SETPCAP","CAP_NET_BIND_SERVICE","CAP_SYS_CHROOT","CAP_KILL","CAP_AUDIT_WRITE"],
      "permitted": ["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FSETID","CAP_FOWNER","CAP_MKNOD","CAP_NET_RAW","CAP_SETGID","CAP_SETUID","CAP_SETFCAP","CAP_SETPCAP","CAP_NET_BIND_SERVICE","CAP_SYS_CHROOT","CAP_KILL","CAP_AUDIT_WRITE"]
    },
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
    "noNewPrivileges": true
  },
  "root": {"path": "/run/kata/shared/rootfs", "readonly": true},
  "hostname": "$1",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid","strictatime","mode=755","size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid","noexec","newinstance","ptmxmode=0666","mode=0620"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid","noexec","nodev","mode=1777","size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid","noexec","nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid","noexec","nodev","ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid","noexec","nodev","relatime","ro"]}
  ],
  "linux": {
    "cgroupsPath": "/kata-smoke/$1",
    "resources": $3,
    "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}],
    "seccomp": {
      "defaultAction": "SCMP_ACT_ALLOW",
      "architectures": ["SCMP_ARCH_X86_64"],
      "syscalls": [{"names": ["mknod", "mknodat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    },
    "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
    "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
  }
}
EOF
}

if [ -x "$SHARED/rootfs/bin/busybox" ]; then
    DEV_RULES='"devices": [{"allow": false, "access": "rwm"}]'

    # 1. crun run: output, exit code, device rules (eBPF), seccomp.
    write_bundle c1 '["/bin/sh", "-c", "echo container-uname=$(uname -r); echo x > /dev/null && echo devnull-ok; mknod /dev/shm/f p 2>/dev/null && echo seccomp-off || echo seccomp-on; exit 7"]' \
        "{$DEV_RULES}"
    out="$(crun run --bundle /run/kata/bundles/c1 c1 2>&1)"
    rc=$?
    echo "$out" | sed 's/^/SMOKE: c1: /'
    [ "$rc" = 7 ] && ok "crun-run-exit-code" || fail crun-run-exit-code "wanted 7, got $rc"
    echo "$out" | grep -qx "container-uname=$(uname -r)" && ok crun-run-output || fail crun-run-output "no uname line"
    echo "$out" | grep -qx devnull-ok && ok crun-devices || fail crun-devices "/dev/null not writable"
    echo "$out" | grep -qx seccomp-on && ok crun-seccomp || fail crun-seccomp "mknod was allowed"

    # 2. resource limits: memory, pids, cpu quota, visible in the container's
    # own cgroup (cgroup namespace).
    write_bundle c2 '["/bin/sh", "-c", "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max"]' \
        "{$DEV_RULES, \"memory\": {\"limit\": 67108864}, \"pids\": {\"limit\": 32}, \"cpu\": {\"quota\": 50000, \"period\": 100000}}"
    out="$(crun run --bundle /run/kata/bundles/c2 c2 2>&1)"
    rc=$?
    echo "$out" | sed 's/^/SMOKE: c2: /'
    if [ "$rc" = 0 ] && echo "$out" | grep -qx 67108864 && echo "$out" | grep -qx 32 \
        && echo "$out" | grep -qx "50000 100000"; then
        ok crun-limits
    else
        fail crun-limits "rc=$rc"
    fi

    # 3. the agent's flow: create, start, exec, kill, delete.
    write_bundle c3 '["/bin/sleep", "1000"]' "{$DEV_RULES, \"memory\": {\"limit\": 33554432}}"
    st() { crun state "$1" 2>/dev/null | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p'; }
    crun create --bundle /run/kata/bundles/c3 c3 </dev/null >/dev/null 2>&1; rc=$?
    s1="$(st c3)"
    crun start c3; s2="$(st c3)"
    ex="$(crun exec c3 /bin/sh -c 'echo exec-ok; cat /sys/fs/cgroup/memory.max' 2>&1)"
    crun kill c3 KILL
    i=0; while [ "$(st c3)" != stopped ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    s3="$(st c3)"
    crun delete c3; rc2=$?
    echo "SMOKE: c3: create=$rc states=$s1,$s2,$s3 exec=[$ex] delete=$rc2"
    if [ "$rc" = 0 ] && [ "$s1" = created ] && [ "$s2" = running ] && [ "$s3" = stopped ] \
        && [ "$rc2" = 0 ] && echo "$ex" | grep -qx exec-ok && echo "$ex" | grep -qx 33554432; then
        ok crun-lifecycle
    else
        fail crun-lifecycle "see the c3 line above"
    fi
else
    fail crun "no busybox rootfs at $SHARED/rootfs"
fi

# Timer sanity: the host measures the wall time between these two lines.
echo "SMOKE: sleep-start"
sleep 2
echo "SMOKE: sleep-end"

echo "SMOKE: done failed=$FAILED"
if [ "${smoke_end:-wait}" = wait ]; then
    # smoke.sh ends this VM with QMP quit.
    while :; do sleep 60; done
fi
power_off
