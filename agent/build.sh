#!/bin/sh
# Builds the static guest agent (the initramfs's /init) and prints the binary's path on stdout.
# Needs: cargo + rustc >= 1.63 (rustup's, or Debian's `cargo` package) and the Debian packages
# librust-serde-dev librust-serde-derive-dev librust-serde-json-dev librust-libc-dev
# (crates come from /usr/share/cargo/registry; see .cargo/config.toml). Build log on stderr.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

cargo=
if command -v cargo >/dev/null 2>&1; then
    cargo=cargo
elif [ -x "${HOME:-/root}/.cargo/bin/cargo" ]; then
    cargo="${HOME:-/root}/.cargo/bin/cargo"
    PATH="${HOME:-/root}/.cargo/bin:$PATH"; export PATH
elif [ -x /usr/bin/cargo ]; then
    cargo=/usr/bin/cargo
else
    echo "agent/build.sh: no cargo found; install Debian's 'cargo' package (apt-get install cargo)" >&2
    exit 1
fi

if ! ls -d /usr/share/cargo/registry/serde_json-* /usr/share/cargo/registry/libc-* >/dev/null 2>&1; then
    echo "agent/build.sh: Debian crate sources missing; install: librust-serde-dev librust-serde-derive-dev librust-serde-json-dev librust-libc-dev" >&2
    exit 1
fi

"$cargo" build --release --locked --offline --target x86_64-unknown-linux-gnu >&2
bin="$here/target/x86_64-unknown-linux-gnu/release/kata-agent"
if [ ! -x "$bin" ]; then
    echo "agent/build.sh: build finished but $bin is missing" >&2
    exit 1
fi
echo "$bin"
