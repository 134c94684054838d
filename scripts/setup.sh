#!/usr/bin/env bash
# One command from a fresh Debian 12 machine (as root) to a container running in a VM:
# apt packages, npm ci, TypeScript build, guest agent, guest kernel + initramfs (cached outside the
# repo, keyed by their inputs), kata-runtime on PATH, then a demo container. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

say() { printf '\n== %s\n' "$*"; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (it installs packages and /usr/local/bin/kata-runtime)"
command -v node >/dev/null || die "Node.js 20 or newer is required (node not found)"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || die "Node.js 20 or newer is required (found $(node --version))"

APT=(apt-get -o DPkg::Lock::Timeout=900 -y -q)
PKGS=(
  qemu-system-x86 qemu-system-common qemu-utils   # the VM and virtiofsd (/usr/lib/qemu/virtiofsd)
  busybox-static crun cpio kmod                   # guest image contents and tools to pack it
  runc socat util-linux iproute2                   # reference runtime (bench), vsock bridge, setpriv/unshare/nsenter, ip/tc
  golang-github-opencontainers-specs-dev           # the OCI runtime-spec JSON schemas
  librust-serde-dev librust-serde-derive-dev librust-serde-json-dev librust-libc-dev   # agent crates
  build-essential bc bison flex libelf-dev libssl-dev xz-utils linux-source-6.1       # guest kernel
)
missing=()
for p in "${PKGS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
if ! command -v cargo >/dev/null; then missing+=(cargo rustc); fi
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  "${APT[@]}" update
  DEBIAN_FRONTEND=noninteractive "${APT[@]}" install --no-install-recommends "${missing[@]}"
fi

say "npm ci"
if [ ! -d node_modules ] || ! cmp -s package-lock.json node_modules/.package-lock.json 2>/dev/null; then
  npm ci --no-audit --no-fund
fi

say "building the host runtime"
npm run build --silent

say "building the guest agent"
agent_bin=$(bash agent/build.sh | tail -n 1)
[ -x "$agent_bin" ] || die "agent build did not produce a binary ($agent_bin)"

say "building the guest image"
guest_dir=/usr/local/share/kata-runtime/guest
bash guest/build.sh --agent "$agent_bin" --out "$guest_dir"

say "installing /usr/local/bin/kata-runtime"
ln -sfn "$top/bin/run.js" /usr/local/bin/kata-runtime

say "demo: a container in its own VM"
demo=$(mktemp -d /tmp/kata-demo.XXXXXX)
trap 'kata-runtime --root "$demo/state" delete --force demo >/dev/null 2>&1 || true; rm -rf "$demo"' EXIT
node --input-type=module -e "
import { makeDemoBundle } from '$top/dist/src/oci/demo.js';
makeDemoBundle('$demo/bundle', ['sh', '-c', 'echo \"hello from a container in a VM: guest kernel \$(uname -r)\"']);
"
kata-runtime --root "$demo/state" run --bundle "$demo/bundle" demo
echo "host kernel: $(uname -r)"
say "setup done: run 'npm test'"
