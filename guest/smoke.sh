#!/usr/bin/env bash
# Smoke test of the guest image and of the QEMU invocation the runtime uses.
#
#   guest/smoke.sh [--work DIR] [--boots N] [--no-measure] [--keep]
#
# Builds the image with guest/test-init.sh as /init (guest/build.sh), then
# boots it under TCG on `-M microvm` with the runtime's device set and proves:
#   - the guest boots to init and its serial console is captured to a file;
#   - virtio-fs (virtiofsd, tag kataShared): the guest reads a host file and
#     writes one the host then sees;
#   - virtio-serial port agent.0 on a host unix socket: bytes both ways;
#   - cgroup2 + crun in the guest: run (output, exit code, device eBPF,
#     seccomp), memory/pids/cpu limits, create/start/exec/kill/delete;
#   - QMP answers qmp_capabilities, query-status and quit (QEMU exits).
# Then (unless --no-measure) it boots N times per variant and prints the wall
# time from QEMU start to init's first line, QEMU's RSS, and the time until
# QEMU exits after init powers off. Exits non-zero if any check fails.
# Run as root. Output of the last run: $WORK/console-*.log, $WORK/results.txt.
set -euo pipefail
shopt -s inherit_errexit

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WORK=""
BOOTS=3
MEASURE=1
KEEP=0
QEMU="${QEMU:-qemu-system-x86_64}"
VIRTIOFSD="${VIRTIOFSD:-/usr/lib/qemu/virtiofsd}"
MEM_MB=512

while [ $# -gt 0 ]; do
    case "$1" in
        --work) WORK="$2"; shift 2 ;;
        --boots) BOOTS="$2"; shift 2 ;;
        --no-measure) MEASURE=0; shift ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "smoke.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

log() { printf 'smoke: %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root"
if [ -z "$WORK" ]; then
    WORK="$(mktemp -d /tmp/kata-smoke.XXXXXX)"
else
    mkdir -p "$WORK"
fi
WORK="$(readlink -f "$WORK")"
: > "$WORK/results.txt"
result() { printf '%s\n' "$*" | tee -a "$WORK/results.txt" >&2; }

# Processes this script started; cleanup kills exactly these pids.
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    if [ "$KEEP" = 0 ]; then
        rm -rf "$WORK/shared" "$WORK"/*.sock
    fi
}
trap cleanup EXIT

# Host TSC frequency in kHz for the guest's tsc_early_khz=, computed the way
# the runtime should: the kernel's own calibration from the kernel log
# ("tsc: Refined TSC clocksource calibration: N MHz", else "tsc: Detected N
# MHz processor"), else cpu0's "cpu MHz" from /proc/cpuinfo when the TSC is
# constant. Empty when unknown (then leave the parameter out).
host_tsc_khz() {
    local mhz=""
    if ! grep -m1 '^flags' /proc/cpuinfo | grep -qw constant_tsc; then return 0; fi
    mhz="$(dmesg 2>/dev/null | sed -n 's/.*tsc: Refined TSC clocksource calibration: \([0-9.]*\) MHz.*/\1/p' | tail -n1)"
    [ -n "$mhz" ] || mhz="$(dmesg 2>/dev/null | sed -n 's/.*tsc: Detected \([0-9.]*\) MHz processor.*/\1/p' | tail -n1)"
    [ -n "$mhz" ] || mhz="$(awk -F': *' '/^cpu MHz/ {print $2; exit}' /proc/cpuinfo)"
    [ -n "$mhz" ] || return 0
    awk -v m="$mhz" 'BEGIN { printf "%d\n", m * 1000 + 0.5 }'
}
TSC_KHZ="$(host_tsc_khz)"
log "host TSC: ${TSC_KHZ:-unknown} kHz"

# --- image --------------------------------------------------------------------
IMG="$WORK/img"
IMG_GZ="$WORK/img-gzip"
log "building the image with the test init"
"$SCRIPT_DIR/build.sh" --agent "$SCRIPT_DIR/test-init.sh" --out "$IMG"
if [ "$MEASURE" = 1 ]; then
    "$SCRIPT_DIR/build.sh" --agent "$SCRIPT_DIR/test-init.sh" --out "$IMG_GZ" \
        --initrd-compression gzip --no-deps
fi
KVER="$(cat "$IMG/kernel-version")"

# --- host side of the share: a nonce file and a busybox rootfs -------------
SHARED="$WORK/shared"
rm -rf "$SHARED"
mkdir -p "$SHARED/rootfs"/{bin,dev,proc,sys,tmp,etc,root,run}
cp "$(readlink -f /bin/busybox)" "$SHARED/rootfs/bin/busybox"
for a in $("$SHARED/rootfs/bin/busybox" --list); do
    [ -e "$SHARED/rootfs/bin/$a" ] || ln -s busybox "$SHARED/rootfs/bin/$a"
done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$SHARED/rootfs/etc/passwd"
printf 'root:x:0:\n' > "$SHARED/rootfs/etc/group"
NONCE="$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
printf 'host-nonce-%s\n' "$NONCE" > "$SHARED/host.txt"

# --- QEMU ---------------------------------------------------------------------
# The argv the runtime should build (docs/guest.md explains each line).
# Variants for the measurements come from globals: Q_CPU (empty = QEMU's
# default qemu64), Q_MACHINE_EXTRA (appended to -machine), Q_SMP.
Q_CPU=""
Q_MACHINE_EXTRA=""
Q_SMP=1
# qemu_argv DIR KERNEL INITRD APPEND
qemu_argv() {
    local dir="$1" kernel="$2" initrd="$3" append="$4"
    ARGV=(
        "$QEMU"
        -name kata-smoke
        -nodefaults -no-user-config -nographic -no-reboot
        -accel tcg
        -machine "microvm,acpi=off,memory-backend=mem$Q_MACHINE_EXTRA"
    )
    [ -n "$Q_CPU" ] && ARGV+=(-cpu "$Q_CPU")
    ARGV+=(
        -smp "$Q_SMP"
        -m "${MEM_MB}M"
        -object "memory-backend-memfd,id=mem,size=${MEM_MB}M,share=on"
        -kernel "$kernel"
        -initrd "$initrd"
        -append "$append"
        -chardev "stdio,id=console,signal=off"
        -serial chardev:console
        -global virtio-mmio.force-legacy=false
        -device virtio-serial-device,id=vser0
        -chardev "socket,id=agent,path=$dir/agent.sock,server=on,wait=off"
        -device virtserialport,bus=vser0.0,chardev=agent,name=agent.0
        -chardev "socket,id=vfs,path=$dir/virtiofsd.sock"
        -device vhost-user-fs-device,chardev=vfs,tag=kataShared,queue-size=1024
        -qmp "unix:$dir/qmp.sock,server=on,wait=off"
    )
}

# The kernel command line the runtime should pass; Q_APPEND_BASE overrides
# the fixed part for measurements.
kernel_cmdline() {
    local extra="$1"
    local c="${Q_APPEND_BASE:-console=ttyS0 quiet panic=-1 reboot=t tsc=reliable no_timer_check}"
    [ -n "$TSC_KHZ" ] && c+=" tsc_early_khz=$TSC_KHZ"
    printf '%s %s' "$c" "$extra"
}

start_virtiofsd() {
    local dir="$1"
    rm -f "$dir/virtiofsd.sock"
    "$VIRTIOFSD" --socket-path="$dir/virtiofsd.sock" -o source="$SHARED" -o cache=auto \
        >"$dir/virtiofsd.log" 2>&1 &
    VFS_PID=$!
    PIDS+=("$VFS_PID")
    local i
    for i in $(seq 100); do
        [ -S "$dir/virtiofsd.sock" ] && return 0
        sleep 0.05
    done
    die "virtiofsd did not create its socket (see $dir/virtiofsd.log)"
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# boot_vm NAME IMGDIR MODE EXTRA_APPEND
# Boots once; the console goes to $WORK/console-NAME.log. Sets T_INIT (s from
# QEMU start to init's first line), RSS_INIT (KiB), T_EXIT (s to QEMU exit,
# empty if QEMU had to be killed), QPID. In mode "full" it runs the host side
# of every check. In mode "boot" QEMU gets 10 s after init's first line to
# exit by itself.
boot_vm() {
    local name="$1" img="$2" mode="$3" extra="$4"
    local dir="$WORK/run-$name"
    rm -rf "$dir"; mkdir -p "$dir"
    local console="$WORK/console-$name.log"
    : > "$console"
    start_virtiofsd "$dir"
    qemu_argv "$dir" "$img/vmlinux" "$img/initrd.img" \
        "$(kernel_cmdline "smoke_mode=$mode $extra")"
    printf '%q ' "${ARGV[@]}" > "$dir/argv.txt"
    mkfifo "$dir/console.fifo"
    local t0=$EPOCHREALTIME
    "${ARGV[@]}" </dev/null >"$dir/console.fifo" 2>"$dir/qemu.stderr" &
    QPID=$!
    PIDS+=("$QPID")
    T_INIT="" RSS_INIT="" T_EXIT="" T_DONE="" T_SLEEP="" RSS_DONE=""
    local line now serial_started=0 to=300 t_sleep0=0
    exec 7<"$dir/console.fifo"
    while IFS= read -r -t "$to" line <&7; do
        now=$EPOCHREALTIME
        line="${line%$'\r'}"
        printf '%s\n' "$line" >> "$console"
        case "$line" in
            "SMOKE: init started"*)
                if [ -z "$T_INIT" ]; then
                    T_INIT="$(awk -v a="$t0" -v b="$now" 'BEGIN {printf "%.3f", b - a}')"
                    RSS_INIT="$(rss_kib "$QPID")"
                fi
                [ "$mode" = boot ] && to=10
                if [ "$mode" = full ] && [ "$serial_started" = 0 ]; then
                    serial_started=1
                    host_serial_client "$dir" &
                    PIDS+=("$!")
                fi
                ;;
            "SMOKE: sleep-start"*) t_sleep0=$now ;;
            "SMOKE: sleep-end"*)
                T_SLEEP="$(awk -v a="$t_sleep0" -v b="$now" 'BEGIN {printf "%.3f", b - a}')" ;;
            "SMOKE: done"*)
                T_DONE="$(awk -v a="$t0" -v b="$now" 'BEGIN {printf "%.3f", b - a}')"
                RSS_DONE="$(rss_kib "$QPID")"
                [ "$mode" = full ] && host_qmp_checks "$dir"
                ;;
        esac
    done
    exec 7<&-
    local i
    for i in $(seq 100); do kill -0 "$QPID" 2>/dev/null || break; sleep 0.05; done
    if kill -0 "$QPID" 2>/dev/null; then
        log "$name: QEMU did not exit by itself; killing it (console: $console)"
        kill "$QPID"
        wait "$QPID" 2>/dev/null || true
        T_EXIT=""
    else
        wait "$QPID" || log "$name: QEMU exit status $?"
        T_EXIT="$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.3f", b - a}')"
    fi
    for i in $(seq 40); do kill -0 "$VFS_PID" 2>/dev/null || break; sleep 0.05; done
    if kill -0 "$VFS_PID" 2>/dev/null; then
        log "$name: virtiofsd still running after QEMU exit; killing it"
        kill "$VFS_PID"
    fi
    wait "$VFS_PID" 2>/dev/null || true
    [ -n "$T_INIT" ] || die "$name: init never printed its first line (console: $console, stderr: $dir/qemu.stderr)"
}

# Host end of the agent.0 port: connect, send one line, keep the connection
# open (the guest sees EOF while no client is connected) and record replies.
host_serial_client() {
    local dir="$1" i
    for i in $(seq 100); do [ -S "$dir/agent.sock" ] && break; sleep 0.05; done
    { printf 'ping-%s\n' "$NONCE"; while kill -0 "$QPID" 2>/dev/null; do sleep 0.2; done; } \
        | timeout 300 socat - "UNIX-CONNECT:$dir/agent.sock" > "$dir/serial.out" 2>"$dir/serial.err" || true
}

# qmp_cmd IN OUT ID JSON: send a command, print its reply (events skipped).
qmp_cmd() {
    local in="$1" out="$2" id="$3" cmd="$4" reply
    printf '{"execute":"%s","id":%s}\n' "$cmd" "$id" >&"$out"
    while IFS= read -r -t 10 reply <&"$in"; do
        case "$reply" in
            *'"event"'*) continue ;;
            *"\"id\": $id"*) printf '%s\n' "$reply"; return 0 ;;
            *) die "QMP: unexpected line $reply" ;;
        esac
    done
    die "QMP: no reply to $cmd"
}

# QMP: greeting, qmp_capabilities, query-status, quit; QEMU must then exit.
host_qmp_checks() {
    local dir="$1" reply
    coproc QMP { socat - "UNIX-CONNECT:$dir/qmp.sock"; }
    local in=${QMP[0]} out=${QMP[1]}
    IFS= read -r -t 10 reply <&"$in" || die "QMP: no greeting"
    [[ "$reply" == *'"QMP"'* ]] || die "QMP: bad greeting $reply"
    reply="$(qmp_cmd "$in" "$out" 1 qmp_capabilities)"
    [[ "$reply" == *'"return": {}'* ]] || die "QMP: qmp_capabilities replied $reply"
    echo "SMOKE-OK qmp-capabilities" >> "$WORK/host-checks.txt"
    reply="$(qmp_cmd "$in" "$out" 2 query-status)"
    [[ "$reply" == *'"status": "running"'* ]] || die "QMP: query-status replied $reply"
    echo "SMOKE-OK qmp-query-status" >> "$WORK/host-checks.txt"
    reply="$(qmp_cmd "$in" "$out" 3 quit)"
    [[ "$reply" == *'"return": {}'* ]] || die "QMP: quit replied $reply"
    echo "SMOKE-OK qmp-quit" >> "$WORK/host-checks.txt"
    exec {out}>&-
    wait "$QMP_PID" 2>/dev/null || true
}

# --- 1. functional runs -----------------------------------------------------
FAILS=0
check() { # check NAME COMMAND...
    local name="$1"; shift
    if "$@"; then result "ok   $name"; else result "FAIL $name"; FAILS=$((FAILS + 1)); fi
}
# full_run NAME EXTRA_APPEND: one boot in mode full, then every check.
full_run() {
    local name="$1" extra="$2"
    : > "$WORK/host-checks.txt"
    rm -f "$SHARED/guest.txt"
    log "$name boot (console: $WORK/console-$name.log)"
    boot_vm "$name" "$IMG" full "$extra"
    CONSOLE="$WORK/console-$name.log"
    result "--- $name: $(cat "$WORK/run-$name/argv.txt")"
    if grep -q "SMOKE-FAIL" "$CONSOLE"; then grep "SMOKE-FAIL" "$CONSOLE" >&2; fi
    local c
    for c in ttyS0 virtiofs-mount virtiofs-read virtiofs-write virtio-port-found virtio-serial \
             cgroup2 crun-run-exit-code crun-run-output crun-devices crun-seccomp crun-limits \
             crun-lifecycle; do
        check "$name guest: $c" grep -q "^SMOKE-OK $c\b" "$CONSOLE"
    done
    check "$name guest: no SMOKE-FAIL line" no_fail_lines
    check "$name guest: uname -r = $KVER" grep -q "^SMOKE: kernel $KVER " "$CONSOLE"
    check "$name host: sees the file the guest wrote on virtio-fs" guest_wrote
    check "$name host: got the guest's virtio-serial reply" \
        grep -qx "pong:ping-$NONCE" "$WORK/run-$name/serial.out"
    check "$name host: guest's sleep 2 took ${T_SLEEP}s of wall time (1.8-3.5)" \
        awk -v t="${T_SLEEP:-0}" 'BEGIN { exit !(t >= 1.8 && t <= 3.5) }'
    for c in qmp-capabilities qmp-query-status qmp-quit; do
        check "$name host: $c" grep -qx "SMOKE-OK $c" "$WORK/host-checks.txt"
    done
    result "$name: init after ${T_INIT}s, checks done after ${T_DONE}s, QEMU RSS $((RSS_INIT / 1024)) MiB at init, $((RSS_DONE / 1024)) MiB after crun; QEMU gone ${T_EXIT:-never}s after start"
}
no_fail_lines() { ! grep -q "SMOKE-FAIL" "$CONSOLE"; }
guest_wrote() { [ "$(cat "$SHARED/guest.txt" 2>/dev/null)" = "guest-saw:host-nonce-$NONCE" ]; }

full_run full ""
# The variant the runtime uses under TCG today: -cpu max, no option ROMs,
# plus noapictimer (skips the local APIC timer calibration).
Q_CPU=max Q_MACHINE_EXTRA=",x-option-roms=off"
full_run full-max "noapictimer"
Q_CPU="" Q_MACHINE_EXTRA=""

# Power-off path. With acpi=off, microvm has no power-off device:
# reboot(RB_POWER_OFF) only halts the CPU and QEMU keeps running, while
# reboot(RB_AUTOBOOT) resets and -no-reboot turns the reset into an exit.
boot_vm off-reboot "$IMG" boot "smoke_off=reboot"
check "init's reboot -f (RB_AUTOBOOT) makes QEMU exit (-no-reboot)" test -n "$T_EXIT"
result "exit via reboot -f: QEMU exited ${T_EXIT:-never}s after start (init at ${T_INIT}s)"
boot_vm off-poweroff "$IMG" boot "smoke_off=poweroff"
if [ -n "$T_EXIT" ]; then
    result "note: poweroff -f (RB_POWER_OFF) made QEMU exit after ${T_EXIT}s"
else
    result "note: poweroff -f (RB_POWER_OFF) halts the guest but QEMU keeps running (no ACPI): use reboot"
fi

# --- 2. measurements ----------------------------------------------------------
# Variants are booted round-robin (one boot of each per round) so that load
# from other work on the machine spreads evenly; medians are reported.
# Fields: label | -cpu | machine extra | smp | cmdline base (empty = default)
#         | extra cmdline | image (plain|gzip) | tsc (yes|no)
DEFAULT_BASE="console=ttyS0 quiet panic=-1 reboot=t tsc=reliable no_timer_check"
VARIANTS=(
    "baseline (qemu64 cpu, uncompressed initrd)||||||plain|yes"
    "-cpu max|max|||||plain|yes"
    "gzip initrd||||||gzip|yes"
    "machine x-option-roms=off||,x-option-roms=off||||plain|yes"
    "+ noapictimer|||||noapictimer|plain|yes"
    "-cpu max x-option-roms=off noapictimer|max|,x-option-roms=off|||noapictimer|plain|yes"
    "without quiet||||console=ttyS0 panic=-1 reboot=t tsc=reliable no_timer_check||plain|yes"
    "without tsc=reliable no_timer_check||||console=ttyS0 quiet panic=-1 reboot=t||plain|yes"
    "without reboot=t||||console=ttyS0 quiet panic=-1 tsc=reliable no_timer_check||plain|yes"
    "without tsc_early_khz||||||plain|no"
    "-smp 2|||2|||plain|yes"
)
minimum() { tr ' ' '\n' | grep -v '^$' | sort -n | head -n1; }
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {if (NR==0) print "-"; else if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }
for v in "${VARIANTS[@]}"; do
    p="${v//[^|]/}"
    [ "${#p}" = 7 ] || die "variant needs 8 fields: $v"
done
if [ "$MEASURE" = 1 ]; then
    declare -A M_INIT M_EXIT M_RSS
    TSC_SAVED="$TSC_KHZ"
    for round in $(seq "$BOOTS"); do
        for v in "${VARIANTS[@]}"; do
            IFS='|' read -r label cpu mextra smp base extra image tsc <<<"$v"
            Q_CPU="$cpu" Q_MACHINE_EXTRA="$mextra" Q_SMP="${smp:-1}" Q_APPEND_BASE="${base:-$DEFAULT_BASE}"
            [ "$tsc" = yes ] && TSC_KHZ="$TSC_SAVED" || TSC_KHZ=""
            if [ "$image" = gzip ]; then img="$IMG_GZ"; else img="$IMG"; fi
            boot_vm "m" "$img" boot "$extra"
            M_INIT[$label]+="$T_INIT "
            M_EXIT[$label]+="${T_EXIT:-99} "
            M_RSS[$label]+="$((RSS_INIT / 1024)) "
        done
        log "measurement round $round/$BOOTS done"
    done
    TSC_KHZ="$TSC_SAVED" Q_CPU="" Q_MACHINE_EXTRA="" Q_SMP=1
    unset Q_APPEND_BASE
    result "--- $BOOTS boots per variant, round-robin. init = QEMU start to init's first line, exit = QEMU start to QEMU exit after init's reboot -f (min / median, s); RSS of QEMU at init's first line (median)"
    result "$(printf '%-42s %15s %15s %8s   %s' variant 'init min/med' 'exit min/med' RSS 'all init times')"
    for v in "${VARIANTS[@]}"; do
        label="${v%%|*}"
        result "$(printf '%-42s %6s / %6s %6s / %6s %4s MiB   %s' "$label" \
            "$(minimum <<<"${M_INIT[$label]}")" "$(median <<<"${M_INIT[$label]}")" \
            "$(minimum <<<"${M_EXIT[$label]}")" "$(median <<<"${M_EXIT[$label]}")" \
            "$(median <<<"${M_RSS[$label]}")" "${M_INIT[$label]}")"
    done
    result "initrd sizes: uncompressed $(du -k "$IMG/initrd.img" | cut -f1) KiB, gzip $(du -k "$IMG_GZ/initrd.img" | cut -f1) KiB"
fi

if [ "$FAILS" -gt 0 ]; then
    log "$FAILS check(s) failed; console: $CONSOLE"
    exit 1
fi
log "all checks passed (results: $WORK/results.txt)"
