#!/usr/bin/env bash
# Copies the OCI runtime-spec JSON schemas (draft-04) of one pinned release into schemas/.
# They come from Debian's golang-github-opencontainers-specs-dev package, which setup installs at a
# pinned version; we copy them at build time instead of committing another project's files.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=/usr/share/gocode/src/github.com/opencontainers/runtime-spec/schema
if [ ! -f "$src/config-schema.json" ]; then
  echo "schemas/sync.sh: $src is missing; install golang-github-opencontainers-specs-dev (setup does)" >&2
  exit 1
fi
for f in "$src"/*.json; do
  cmp -s "$f" "$here/$(basename "$f")" 2>/dev/null || cp "$f" "$here/"
done
dpkg-query -W -f='${Version}\n' golang-github-opencontainers-specs-dev > "$here/VERSION" 2>/dev/null || true
