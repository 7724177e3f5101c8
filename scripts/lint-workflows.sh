#!/usr/bin/env bash
# scripts/lint-workflows.sh: lint .github/workflows/*.yml with actionlint (npm run lint:workflows).
#
# actionlint is built once from the Go module proxy at the version pinned below and cached outside the
# work tree, in ${STAGE2_TOOLS_CACHE:-$HOME/.cache/stage2-tools}/actionlint-<version>/actionlint, so a
# fresh machine (CI) needs only Go and the proxy, and later runs start at once. The build goes to a
# temporary folder and is renamed into place only once the binary reports the pinned version.
# STAGE2_ENGINE_GO names the go binary (default: go on PATH, else /usr/local/go/bin/go), as for
# scripts/engine.sh; GOPROXY, GOMODCACHE, GOCACHE and GOFLAGS keep Go's defaults.
#
# Any finding fails the run (exit 1). actionlint checks the shell in `run:` steps only when shellcheck
# is on PATH; without it those checks are skipped (said below), everything else still runs.
set -euo pipefail

ACTIONLINT_VERSION="v1.7.12"
ACTIONLINT_PKG="github.com/rhysd/actionlint/cmd/actionlint"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
CACHE_ROOT="${STAGE2_TOOLS_CACHE:-$HOME/.cache/stage2-tools}"
DEST="$CACHE_ROOT/actionlint-$ACTIONLINT_VERSION"
BIN="$DEST/actionlint"

log() { printf '[lint-workflows] %s\n' "$*" >&2; }
die() { printf '[lint-workflows] ERROR: %s\n' "$*" >&2; exit 2; }

# `actionlint -version` prints the module version on its first line when built by `go install pkg@v`.
version_of() { "$1" -version 2>/dev/null | head -n 1 || true; }

STAGED=""
cleanup() { [[ -z "$STAGED" ]] || rm -rf "$STAGED"; }
trap cleanup EXIT

build() {
  local go_bin t0
  if [[ -n "${STAGE2_ENGINE_GO:-}" ]]; then
    go_bin="$(command -v "$STAGE2_ENGINE_GO" 2>/dev/null || true)"
  else
    go_bin="$(command -v go 2>/dev/null || true)"
    if [[ -z "$go_bin" && -x /usr/local/go/bin/go ]]; then go_bin=/usr/local/go/bin/go; fi
  fi
  [[ -n "$go_bin" ]] || die "actionlint $ACTIONLINT_VERSION is not cached in $DEST and there is no Go toolchain to build it: install Go (https://go.dev/dl) and run this again"
  log "building actionlint $ACTIONLINT_VERSION with $("$go_bin" version) (once; cached in $DEST)"
  STAGED="$(mktemp -d "$CACHE_ROOT/.build-actionlint-$ACTIONLINT_VERSION.XXXXXX")"
  t0=$SECONDS
  # No replace directives upstream, so `go install pkg@version` works and pins every dependency by the
  # module's own go.sum, checked against the checksum database.
  GOBIN="$STAGED" "$go_bin" install -trimpath -ldflags "-s -w" "$ACTIONLINT_PKG@$ACTIONLINT_VERSION" >&2 \
    || die "go install $ACTIONLINT_PKG@$ACTIONLINT_VERSION failed (see above); Go needs the module proxy (GOPROXY=$("$go_bin" env GOPROXY)) or a filled GOMODCACHE"
  [[ "$(version_of "$STAGED/actionlint")" == "$ACTIONLINT_VERSION" ]] \
    || die "the built actionlint reports '$(version_of "$STAGED/actionlint")' instead of $ACTIONLINT_VERSION"
  chmod 0755 "$STAGED"
  rm -rf "$DEST"
  mv "$STAGED" "$DEST"
  STAGED=""
  log "built in $((SECONDS - t0))s"
}

mkdir -p "$CACHE_ROOT"
if [[ "$(version_of "$BIN")" != "$ACTIONLINT_VERSION" ]]; then
  # One builder at a time; a second run waits and then finds the cache filled.
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$CACHE_ROOT/.lock-actionlint-$ACTIONLINT_VERSION"
    flock 9
    rm -rf "$CACHE_ROOT/.build-actionlint-$ACTIONLINT_VERSION."*
  fi
  [[ "$(version_of "$BIN")" == "$ACTIONLINT_VERSION" ]] || build
fi

cd "$REPO_ROOT"
shopt -s nullglob
workflows=(.github/workflows/*.yml .github/workflows/*.yaml)
[[ ${#workflows[@]} -gt 0 ]] || die "no workflow files in $REPO_ROOT/.github/workflows"

if ! command -v shellcheck >/dev/null 2>&1; then
  log "shellcheck is not installed: the shell of run: steps is not checked (apt-get install shellcheck to include it)"
fi

if "$BIN" -no-color "${workflows[@]}"; then
  log "actionlint $ACTIONLINT_VERSION: ${#workflows[@]} workflow(s), no findings"
else
  status=$?
  log "actionlint $ACTIONLINT_VERSION reported findings (exit $status); fix them or the CI check fails"
  exit "$status"
fi
