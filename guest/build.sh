#!/usr/bin/env bash
# Build the kata-runtime guest image: a kernel and an initramfs.
#
#   guest/build.sh --agent PATH --out DIR [--kernel minimal|cloud]
#                  [--initrd-compression none|gzip] [--no-deps]
#
# Writes DIR/vmlinux (PVH ELF for `-M microvm`; for --kernel cloud a bzImage),
# DIR/initrd.img (cpio newc), DIR/kernel-version (the guest's `uname -r`) and
# DIR/kernel-flavor (minimal|cloud). Run as root. Both parts are cached under
# ${KATA_CACHE_DIR:-/var/cache/kata-runtime}, keyed by the sha256 of their
# inputs, so a second run with unchanged inputs takes seconds. See
# docs/guest.md.
set -euo pipefail
shopt -s inherit_errexit

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE_DIR="${KATA_CACHE_DIR:-/var/cache/kata-runtime}"
APT_INSTALL=(apt-get -o DPkg::Lock::Timeout=900 install -y --no-install-recommends)

AGENT=""
OUT=""
KERNEL_FLAVOR="minimal"
# Uncompressed boots faster under TCG (the kernel copies instead of
# inflating); see docs/guest.md for the numbers.
INITRD_COMPRESSION="none"
INSTALL_DEPS=1

log() { printf 'guest/build.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
    sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --agent) AGENT="${2:?--agent needs a path}"; shift 2 ;;
        --agent=*) AGENT="${1#*=}"; shift ;;
        --out) OUT="${2:?--out needs a directory}"; shift 2 ;;
        --out=*) OUT="${1#*=}"; shift ;;
        --kernel) KERNEL_FLAVOR="${2:?--kernel needs minimal or cloud}"; shift 2 ;;
        --kernel=*) KERNEL_FLAVOR="${1#*=}"; shift ;;
        --initrd-compression) INITRD_COMPRESSION="${2:?}"; shift 2 ;;
        --initrd-compression=*) INITRD_COMPRESSION="${1#*=}"; shift ;;
        --no-deps) INSTALL_DEPS=0; shift ;;
        -h|--help) usage ;;
        *) log "unknown argument: $1"; usage ;;
    esac
done

[ -n "$AGENT" ] || { log "--agent is required"; usage; }
[ -n "$OUT" ] || { log "--out is required"; usage; }
[ -f "$AGENT" ] || die "agent binary not found: $AGENT"
case "$KERNEL_FLAVOR" in minimal|cloud) ;; *) die "--kernel must be minimal or cloud" ;; esac
case "$INITRD_COMPRESSION" in none|gzip) ;; *) die "--initrd-compression must be none or gzip" ;; esac
[ "$(id -u)" = 0 ] || die "must run as root (installs packages, creates device nodes)"
AGENT="$(readlink -f "$AGENT")"

sha256() { sha256sum | cut -d' ' -f1; }

# ---------------------------------------------------------------------------
# Build dependencies (Debian packages). Only asks apt when something is missing.
# ---------------------------------------------------------------------------
install_deps() {
    local pkgs=(busybox-static crun cpio gzip xz-utils)
    if [ "$KERNEL_FLAVOR" = minimal ]; then
        pkgs+=(linux-source-6.1 build-essential bc bison flex libelf-dev libssl-dev kmod)
    fi
    local missing=() p
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' \
            || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing build dependencies: ${missing[*]}"
        apt-get -o DPkg::Lock::Timeout=900 update -q || log "apt-get update failed; trying the install anyway"
        DEBIAN_FRONTEND=noninteractive "${APT_INSTALL[@]}" "${missing[@]}"
    fi
}

# ---------------------------------------------------------------------------
# Minimal kernel from Debian's linux-source. The cache key covers this
# function's text (declare -f), guest/kernel.config, the linux-source package
# version and the compiler version.
# ---------------------------------------------------------------------------
build_minimal_kernel() {
    local dest="$1" fragment="$2" tarball="$3" jobs
    jobs="$(nproc)"
    local work="$dest.build"
    rm -rf "$work"
    mkdir -p "$work"
    log "unpacking $(basename "$tarball")"
    tar -C "$work" -xf "$tarball"
    local src
    src="$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -n1)"
    (
        cd "$src"
        export ARCH=x86_64 KBUILD_BUILD_USER=kata KBUILD_BUILD_HOST=kata \
               KBUILD_BUILD_TIMESTAMP='1970-01-01' KBUILD_BUILD_VERSION=1
        {
            make -s tinyconfig
            scripts/kconfig/merge_config.sh -m .config "$fragment"
            make -s olddefconfig
        } >"$work/config.log" 2>&1 || { cat "$work/config.log" >&2; exit 1; }
        # kconfig silently drops options whose dependencies are missing: check
        # that every `CONFIG_X=value` line of the fragment survived.
        local line key want got bad=0
        while IFS= read -r line; do
            [[ "$line" =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]] || continue
            key="${BASH_REMATCH[1]}" want="${BASH_REMATCH[2]}"
            got="$(grep -E "^${key}=" .config | cut -d= -f2- || true)"
            if [ "$got" != "$want" ]; then
                log "kernel config: $key wanted $want, got '${got:-not set}'"
                bad=1
            fi
        done < "$fragment"
        [ "$bad" = 0 ] || { log "kernel config check failed (see above)"; exit 1; }
        log "building vmlinux with make -j$jobs (about 5 minutes on 2 cores)"
        make -j"$jobs" vmlinux >"$work/make.log" 2>&1 \
            || { tail -n 40 "$work/make.log" >&2; exit 1; }
        cp vmlinux "$dest/vmlinux"
        cp .config "$dest/config"
        make -s kernelrelease > "$dest/kernel-version"
    )
    rm -rf "$work"
}

# Debian's cloud kernel: extracted from its .deb, no build. Modules needed for
# the virtio devices are listed, in load order, in /etc/kata/modules.list of
# the initramfs (see build_initramfs).
CLOUD_MODULES=(
    virtio virtio_ring virtio_mmio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci
    virtio_console fuse virtiofs netfs 9pnet 9pnet_virtio 9p overlay
    failover net_failover virtio_net vsock vmw_vsock_virtio_transport_common
    vmw_vsock_virtio_transport virtio_blk
)

fetch_cloud_kernel() {
    local dest="$1" pkg="$2"
    local work="$dest.build"
    rm -rf "$work"
    mkdir -p "$work/x"
    ( cd "$work" && apt-get -o DPkg::Lock::Timeout=900 download "$pkg" >/dev/null )
    dpkg-deb -x "$work"/*.deb "$work/x"
    local kver
    kver="$(basename "$(find "$work/x/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -n1)")"
    cp "$work/x/boot/vmlinuz-$kver" "$dest/vmlinux"
    printf '%s\n' "$kver" > "$dest/kernel-version"
    mkdir -p "$dest/modules"
    local m f
    : > "$dest/modules.list"
    for m in "${CLOUD_MODULES[@]}"; do
        f="$(find "$work/x/lib/modules/$kver" -name "$m.ko*" | head -n1)"
        [ -n "$f" ] || { log "cloud kernel: module $m not found (built in?), skipping"; continue; }
        mkdir -p "$dest/modules/$(dirname "${f#"$work"/x/}")"
        cp "$f" "$dest/modules/${f#"$work"/x/}"
        printf '/%s\n' "${f#"$work"/x/}" >> "$dest/modules.list"
    done
    rm -rf "$work"
}

kernel_key() {
    if [ "$KERNEL_FLAVOR" = minimal ]; then
        local ver
        ver="$(dpkg-query -W -f='${Version}' linux-source-6.1)"
        {
            echo "flavor=minimal"
            echo "linux-source-6.1=$ver"
            gcc --version | head -n1
            declare -f build_minimal_kernel
            cat "$SCRIPT_DIR/kernel.config"
        } | sha256
    else
        local ver
        ver="$(apt-cache policy linux-image-cloud-amd64 | awk '/Candidate:/ {print $2}')"
        {
            echo "flavor=cloud"
            echo "linux-image-cloud-amd64=$ver"
            declare -f fetch_cloud_kernel
            printf '%s\n' "${CLOUD_MODULES[@]}"
        } | sha256
    fi
}

# Produce (or reuse) $CACHE_DIR/kernel/<key>/ and print its path.
ensure_kernel() {
    local key dir
    key="$(kernel_key)"
    dir="$CACHE_DIR/kernel/$key"
    if [ -f "$dir/vmlinux" ] && [ -f "$dir/kernel-version" ]; then
        touch "$dir"
        log "kernel: cached $dir"
        printf '%s\n' "$dir"
        return
    fi
    local tmp="$CACHE_DIR/kernel/.tmp-$key"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    local start=$SECONDS
    if [ "$KERNEL_FLAVOR" = minimal ]; then
        local tarball=/usr/src/linux-source-6.1.tar.xz
        [ -f "$tarball" ] || die "$tarball missing (package linux-source-6.1)"
        build_minimal_kernel "$tmp" "$SCRIPT_DIR/kernel.config" "$tarball" >&2
    else
        fetch_cloud_kernel "$tmp" linux-image-cloud-amd64 >&2
    fi
    printf '%s\n' "$KERNEL_FLAVOR" > "$tmp/kernel-flavor"
    rm -rf "$dir"
    mv "$tmp" "$dir"
    log "kernel: built $dir in $((SECONDS - start)) s"
    printf '%s\n' "$dir"
}

# ---------------------------------------------------------------------------
# initramfs: /init = the agent, busybox, crun with its libraries.
# ---------------------------------------------------------------------------

# Shared libraries (absolute paths, as the loader resolves them) of an ELF
# binary; nothing for a static binary or a script.
elf_libs() {
    local bin="$1"
    head -c4 "$bin" | grep -q $'^\x7fELF' || return 0
    { ldd "$bin" 2>/dev/null || true; } | awk '
        /=> \// { print $3; next }
        /^\t\// { print $1 }'
}

# Every input file of the initramfs, one per line: "<path in image> <host path>".
initramfs_manifest() {
    local kdir="$1"
    printf '/init %s\n' "$AGENT"
    printf '/bin/busybox %s\n' "$(readlink -f /bin/busybox)"
    printf '/usr/bin/crun %s\n' /usr/bin/crun
    local lib
    { elf_libs /usr/bin/crun; elf_libs "$AGENT"; } | LC_ALL=C sort -u | while read -r lib; do
        # Keep the path the loader looks for (e.g. /lib64/ld-linux-x86-64.so.2,
        # /lib/x86_64-linux-gnu/libc.so.6) but copy the real file.
        printf '%s %s\n' "$lib" "$(readlink -f "$lib")"
    done
    if [ -f "$kdir/modules.list" ]; then
        while read -r lib; do
            printf '%s %s\n' "$lib" "$kdir/modules$lib"
        done < "$kdir/modules.list"
    fi
}

build_initramfs() {
    local dest="$1" manifest="$2" kdir="$3" compression="$4"
    local root="$dest.root"
    rm -rf "$root"
    mkdir -p "$root"
    local d
    for d in bin sbin usr/bin usr/sbin lib lib64 lib/x86_64-linux-gnu etc etc/kata \
             proc sys sys/fs/cgroup dev run tmp var root mnt; do
        mkdir -p "$root/$d"
    done
    chmod 1777 "$root/tmp"
    chmod 0700 "$root/root"
    local path src
    while read -r path src; do
        mkdir -p "$root$(dirname "$path")"
        cp "$src" "$root$path"
    done < "$manifest"
    chmod 0755 "$root/init" "$root/bin/busybox" "$root/usr/bin/crun"
    # busybox applets as symlinks in /bin (never over a real file).
    local applet
    for applet in $("$root/bin/busybox" --list | LC_ALL=C sort); do
        [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
    done
    # The kernel opens /dev/console for init's stdio before init can mount
    # devtmpfs, so the node must be in the archive.
    mknod -m 0600 "$root/dev/console" c 5 1
    mknod -m 0666 "$root/dev/null" c 1 3
    printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
    printf 'root:x:0:\n' > "$root/etc/group"
    printf '127.0.0.1 localhost\n::1 localhost\n' > "$root/etc/hosts"
    if [ -f "$kdir/modules.list" ]; then
        cp "$kdir/modules.list" "$root/etc/kata/modules.list"
    else
        : > "$root/etc/kata/modules.list"
    fi
    # Deterministic archive: fixed mtimes, sorted names, owner root, inode
    # numbers independent of the host.
    find "$root" -exec touch -h -d @0 {} +
    (
        cd "$root"
        find . -mindepth 1 | LC_ALL=C sort | sed 's|^\./||' \
            | cpio --quiet -o -H newc -R 0:0 --reproducible > "$dest/initrd.cpio"
    )
    if [ "$compression" = gzip ]; then
        gzip -n -9 < "$dest/initrd.cpio" > "$dest/initrd.img"
        rm -f "$dest/initrd.cpio"
    else
        mv "$dest/initrd.cpio" "$dest/initrd.img"
    fi
    rm -rf "$root"
}

ensure_initramfs() {
    local kdir="$1" key manifest
    manifest="$(mktemp)"
    initramfs_manifest "$kdir" > "$manifest"
    key="$(
        {
            echo "compression=$INITRD_COMPRESSION"
            echo "busybox-static=$(dpkg-query -W -f='${Version}' busybox-static)"
            echo "crun=$(dpkg-query -W -f='${Version}' crun)"
            declare -f build_initramfs initramfs_manifest elf_libs
            local path src
            while read -r path src; do
                printf '%s %s\n' "$path" "$(sha256sum < "$src" | cut -d' ' -f1)"
            done < "$manifest"
        } | sha256
    )"
    local dir="$CACHE_DIR/initrd/$key"
    if [ -f "$dir/initrd.img" ]; then
        touch "$dir"
        log "initramfs: cached $dir"
    else
        local tmp="$CACHE_DIR/initrd/.tmp-$key"
        rm -rf "$tmp"
        mkdir -p "$tmp"
        build_initramfs "$tmp" "$manifest" "$kdir" "$INITRD_COMPRESSION" >&2
        rm -rf "$dir"
        mv "$tmp" "$dir"
        log "initramfs: built $dir ($(du -k "$dir/initrd.img" | cut -f1) KiB)"
    fi
    rm -f "$manifest"
    printf '%s\n' "$dir"
}

# Copy into DIR without ever leaving a half-written file there.
install_file() {
    local src="$1" dst="$2"
    if [ -f "$dst" ] && cmp -s "$src" "$dst"; then return; fi
    cp "$src" "$dst.tmp.$$"
    mv -f "$dst.tmp.$$" "$dst"
}

main() {
    [ "$INSTALL_DEPS" = 1 ] && install_deps
    mkdir -p "$CACHE_DIR/kernel" "$CACHE_DIR/initrd" "$OUT"
    # One build at a time per cache.
    exec 9>"$CACHE_DIR/.build.lock"
    flock 9
    # Under the lock nothing else builds in this cache: .tmp-* are leftovers
    # of interrupted builds. Entries unused for 30 days go too (each use
    # touches its directory).
    find "$CACHE_DIR/kernel" "$CACHE_DIR/initrd" -mindepth 1 -maxdepth 1 \
        \( -name '.tmp-*' -o -mtime +30 \) -exec rm -rf {} +
    local kdir idir
    kdir="$(ensure_kernel)"
    idir="$(ensure_initramfs "$kdir")"
    install_file "$kdir/vmlinux" "$OUT/vmlinux"
    install_file "$idir/initrd.img" "$OUT/initrd.img"
    install_file "$kdir/kernel-version" "$OUT/kernel-version"
    install_file "$kdir/kernel-flavor" "$OUT/kernel-flavor"
    log "done: $OUT/vmlinux $OUT/initrd.img (kernel $(cat "$OUT/kernel-version"))"
}

main
