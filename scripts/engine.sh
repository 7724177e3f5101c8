#!/usr/bin/env bash
# scripts/engine.sh: make the pinned Pulumi engine available in one bin/ folder.
#
#   scripts/engine.sh            ensure the engine, print the bin/ folder as the LAST line of stdout
#   scripts/engine.sh --env      ensure the engine, print `export` lines for a shell:
#                                  eval "$(scripts/engine.sh --env)"
#   scripts/engine.sh --rebuild  ignore the cache and the PATH, build from Go modules again
#                                (STAGE2_ENGINE_REBUILD=1 does the same; combinable with --env)
#   scripts/engine.sh --cli-version  print the pinned CLI version (X.Y.Z) and nothing else; needs neither
#                                node nor node_modules (the workflows install that release with it)
#
# bin/ holds:
#   pulumi                         the CLI, github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
#   pulumi-language-nodejs         the Node.js language host, built from sdk/v3@v3.68.0 by the
#                                  wrapper module scripts/engine/language-host/ (README there: why)
#   pulumi-resource-pulumi-nodejs  the dynamic-provider shim from node_modules/@pulumi/pulumi
# (the policy pack's analyzer is the project's own plugin: see ANALYZER SHIM below)
#
# Two versions, each from one place:
#   - the CLI's: the `require github.com/pulumi/pulumi/pkg/v3 v<version>` line of scripts/engine/go.mod
#     (sdk/v3 must be required at the same version there; checked below);
#   - the SDK's: package.json ("@pulumi/pulumi", an exact version), which also gives the shim.
# The CLI is versioned apart from the SDK and runs older SDKs, so it may be newer, never older (checked),
# except with STAGE2_ENGINE_SDK_AHEAD=1: .ci/run's SDK leg sets it to run the newest SDK on this engine.
#
# Where it comes from, in this order:
#   (a) the cache ${STAGE2_ENGINE_CACHE:-$HOME/.cache/stage2-engine}/pulumi-v<version>/bin,
#       if its `pulumi version` prints v<version> and the language host is there;
#   (b) a `pulumi` of exactly that version on PATH with pulumi-language-nodejs next to it
#       (an ordinary install on a machine with internet): copied into the cache;
#   (c) a build from Go modules with the wrapper module scripts/engine/ (go.mod there);
#   (d) otherwise: a message saying what is missing, exit status 1.
# A build goes to a temporary folder beside the cache and is renamed into place only once both
# binaries report the right version, so an interrupted build never leaves a half cache.
# GOMODCACHE, GOCACHE, GOFLAGS and GOPROXY keep Go's defaults; set them to override.
# STAGE2_ENGINE_GO names the go binary (default: go on PATH, else /usr/local/go/bin/go).
#
# RESOURCE PLUGINS OF BRIDGED PACKAGES: none are built here, because the program uses only
# dynamic providers (served by pulumi-resource-pulumi-nodejs). If a bridged package were added
# (e.g. @pulumi/postgresql needs pulumi-resource-postgresql, @pulumi/command needs
# pulumi-resource-command), its plugin would be built in build_from_go() below, next to the
# CLI: require its provider module in scripts/engine/go.mod (copying the third-party `replace`
# lines of its upstream go.mod), `go build -o "$tmp/bin/pulumi-resource-<name>"` with the
# provider's own version ldflag, and check for it in cache_is_good(). The engine finds a
# plugin in the bin/ folder next to `pulumi` or on PATH, so no `pulumi plugin install` is needed.
#
# ANALYZER SHIM: `pulumi preview --policy-pack policy` starts a pack through the language host named
# by the pack's runtime (its RunPlugin call); the host built here from sdk/v3@v3.68.0 answers "not
# supported". Only when no language host of that name exists does the CLI fall back to running the
# analyzer plugin `pulumi-analyzer-policy-<runtime>` (the hook pulumi-policy-opa uses) in the pack's
# folder, with the stack's config in PULUMI_CONFIG. So the pack declares its own runtime name, and the
# project's Pulumi.yaml names policy/bin/pulumi-analyzer-policy-stage2-nodejs as that analyzer: it starts the
# SDK's run-policy-pack with node, on this engine and on an installed one (a project plugin, so the CLI does
# not warn about a plugin found on PATH). CLI v3.274.0 and later dropped that fallback (the last served version
# with it is v3.260.0): with them `--policy-pack policy` fails, see scripts/engine/README.md.
#
# All progress goes to stderr; stdout carries only the result.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
ENGINE_MOD="$SCRIPT_DIR/engine"
VERSION_PKG="github.com/pulumi/pulumi/sdk/v3/go/common/version"
CLI_PKG="github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
LANGHOST_MOD="$ENGINE_MOD/language-host"
LANGHOST_PKG="github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs"
# The sdk/v3 release the language host is built from (see scripts/engine/README.md).
LANGHOST_VERSION="v3.68.0"
SHIM_NAME="pulumi-resource-pulumi-nodejs"

log() { printf '[engine] %s\n' "$*" >&2; }
die() { printf '[engine] ERROR: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

MODE="bin"
REBUILD="${STAGE2_ENGINE_REBUILD:-0}"
for arg in "$@"; do
  case "$arg" in
    --env) MODE="env" ;;
    --rebuild) REBUILD=1 ;;
    --cli-version) MODE="cli-version" ;;
    -h|--help) sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
    *) die "unknown argument: $arg (see --help)" ;;
  esac
done

T0="$(now)"

# --- 1. the pinned versions ------------------------------------------------------------------
# The CLI's version: the one pkg/v3 requirement of scripts/engine/go.mod.
[[ -f "$ENGINE_MOD/go.mod" ]] || die "$ENGINE_MOD/go.mod is missing"
VERSION="$(sed -nE 's/^[[:space:]]*(require[[:space:]]+)?github\.com\/pulumi\/pulumi\/pkg\/v3[[:space:]]+v([0-9]+\.[0-9]+\.[0-9]+)([[:space:]].*)?$/\2/p' "$ENGINE_MOD/go.mod")"
[[ "$VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] \
  || die "scripts/engine/go.mod must require github.com/pulumi/pulumi/pkg/v3 at one release version (found \"$VERSION\")"
if [[ "$MODE" == cli-version ]]; then
  printf '%s\n' "$VERSION"
  exit 0
fi

command -v node >/dev/null 2>&1 || die "node is not on PATH (Node.js is needed to read package.json and to run the program)"

SDK_VERSION="$(cd "$REPO_ROOT" && node -e '
  const pj = require("./package.json");
  const v = (pj.dependencies || {})["@pulumi/pulumi"] || (pj.devDependencies || {})["@pulumi/pulumi"] || "";
  process.stdout.write(v);
')"
[[ -n "$SDK_VERSION" ]] || die "package.json has no dependency on @pulumi/pulumi"
[[ "$SDK_VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] \
  || die "package.json must pin @pulumi/pulumi to an exact version (found \"$SDK_VERSION\")"

# sort -V puts the older first: the CLI must not be older than the SDK it runs.
if [[ "$(printf '%s\n%s\n' "$SDK_VERSION" "$VERSION" | sort -V | head -n 1)" != "$SDK_VERSION" ]]; then
  [[ "${STAGE2_ENGINE_SDK_AHEAD:-0}" == 1 ]] \
    || die "the CLI in scripts/engine/go.mod (v$VERSION) is older than the SDK package.json pins ($SDK_VERSION): update scripts/engine/ as its README says"
  [[ "${STAGE2_ENGINE_VERBOSE:-0}" != 1 ]] ||
    log "SDK $SDK_VERSION on the older CLI v$VERSION (STAGE2_ENGINE_SDK_AHEAD=1: a trial of a newer SDK, not the pinned setup)"
fi

SDK_DIR="$REPO_ROOT/node_modules/@pulumi/pulumi"
[[ -f "$SDK_DIR/package.json" ]] \
  || die "node_modules/@pulumi/pulumi is missing: run npm ci in $REPO_ROOT"
INSTALLED="$(node -e 'process.stdout.write(require(process.argv[1]).version)' "$SDK_DIR/package.json")"
[[ "$INSTALLED" == "$SDK_VERSION" ]] \
  || die "node_modules/@pulumi/pulumi is $INSTALLED but package.json pins $SDK_VERSION: run npm ci in $REPO_ROOT"
[[ -f "$SDK_DIR/$SHIM_NAME" ]] \
  || die "$SDK_DIR/$SHIM_NAME is missing: run npm ci in $REPO_ROOT"

CACHE_ROOT="${STAGE2_ENGINE_CACHE:-$HOME/.cache/stage2-engine}"
DEST="$CACHE_ROOT/pulumi-v$VERSION"
BIN="$DEST/bin"

# `pulumi version` of a candidate binary, offline and quiet; empty when it does not run.
pulumi_version_of() {
  PULUMI_SKIP_UPDATE_CHECK=true PULUMI_HOME="${TMPDIR:-/tmp}/stage2-engine-probe-home" \
    timeout 60 "$1" version 2>/dev/null | tr -d '\r' | tail -n 1 || true
}

cache_is_good() {
  [[ -x "$BIN/pulumi" && -x "$BIN/pulumi-language-nodejs" ]] || return 1
  # A cache filled by another recipe of the language host is rebuilt (GOCACHE makes that quick).
  [[ -f "$DEST/SOURCE" ]] && grep -q "language host" "$DEST/SOURCE" || return 1
  [[ "$(pulumi_version_of "$BIN/pulumi")" == "v$VERSION" ]]
}

# Replace $DEST by the finished folder $1 (same file system, so the rename is atomic).
install_into_cache() {
  local staged="$1" old=""
  if [[ -e "$DEST" ]]; then
    old="$DEST.old.$$"
    mv "$DEST" "$old" || return 1
  fi
  mv "$staged" "$DEST" || return 1
  [[ -z "$old" ]] || rm -rf "$old"
}

# (b) an installed CLI of exactly the pinned version, with its language host next to it.
copy_from_path() {
  local cli real dir v staged
  cli="$(command -v pulumi 2>/dev/null || true)"
  [[ -n "$cli" ]] || { log "no pulumi on PATH"; return 1; }
  real="$(readlink -f "$cli")"
  dir="$(dirname "$real")"
  case "$real" in "$REPO_ROOT"/node_modules/*) log "ignoring the npm shim $cli"; return 1 ;; esac
  v="$(pulumi_version_of "$real")"
  if [[ "$v" != "v$VERSION" ]]; then
    log "pulumi on PATH ($cli) is ${v:-unusable}, not v$VERSION: not used"
    return 1
  fi
  if [[ ! -x "$dir/pulumi-language-nodejs" ]]; then
    log "pulumi on PATH ($cli) is v$VERSION but $dir has no pulumi-language-nodejs: not used"
    return 1
  fi
  log "copying pulumi v$VERSION and pulumi-language-nodejs from $dir"
  # Called as a condition, so `set -e` does not apply here: every step is checked by hand.
  staged="$(mktemp -d "$CACHE_ROOT/.stage-v$VERSION.XXXXXX")" || return 1
  STAGED="$staged"
  if chmod 0755 "$staged" && mkdir -p "$staged/bin" \
      && cp -L "$real" "$staged/bin/pulumi" \
      && cp -L "$dir/pulumi-language-nodejs" "$staged/bin/pulumi-language-nodejs" \
      && echo "copied from $dir (CLI and language host)" > "$staged/SOURCE" \
      && [[ "$(pulumi_version_of "$staged/bin/pulumi")" == "v$VERSION" ]] \
      && install_into_cache "$staged"; then
    STAGED=""
    return 0
  fi
  log "copying the installed pulumi failed"
  rm -rf "$staged"
  STAGED=""
  return 1
}

# (c) build both binaries from Go modules with the wrapper module scripts/engine/.
build_from_go() {
  local go_bin staged tb
  if [[ -n "${STAGE2_ENGINE_GO:-}" ]]; then
    go_bin="$(command -v "$STAGE2_ENGINE_GO" 2>/dev/null || true)"
  else
    go_bin="$(command -v go 2>/dev/null || true)"
    if [[ -z "$go_bin" && -x /usr/local/go/bin/go ]]; then go_bin=/usr/local/go/bin/go; fi
  fi
  if [[ -z "$go_bin" ]]; then
    die "cannot provide the Pulumi engine v$VERSION: no cached build in $BIN, no pulumi v$VERSION (with pulumi-language-nodejs next to it) on PATH, and no Go toolchain to build it. Install Go (https://go.dev/dl, or the Debian package golang-go if it is new enough for scripts/engine/go.mod) or install Pulumi v$VERSION, then run this again."
  fi
  local p
  for p in pkg sdk; do
    grep -Eq "^[[:space:]]*(require[[:space:]]+)?github\.com/pulumi/pulumi/$p/v3[[:space:]]+v$VERSION([[:space:]]|\$)" "$ENGINE_MOD/go.mod" \
      || die "scripts/engine/go.mod does not require github.com/pulumi/pulumi/$p/v3 v$VERSION (its pkg/v3 version): update scripts/engine/ as its README says"
  done
  grep -Eq "^[[:space:]]*(require[[:space:]]+)?github\.com/pulumi/pulumi/sdk/v3[[:space:]]+$LANGHOST_VERSION([[:space:]]|\$)" "$LANGHOST_MOD/go.mod" \
    || die "scripts/engine/language-host/go.mod does not require github.com/pulumi/pulumi/sdk/v3 $LANGHOST_VERSION"

  log "building pulumi v$VERSION and pulumi-language-nodejs from Go modules with $("$go_bin" version)"
  log "  (first build downloads ~1.3 GB of modules and compiles; 8-10 min measured on 2 cores; GOMODCACHE=$("$go_bin" env GOMODCACHE), GOCACHE=$("$go_bin" env GOCACHE))"
  staged="$(mktemp -d "$CACHE_ROOT/.build-v$VERSION.XXXXXX")"
  STAGED="$staged"
  chmod 0755 "$staged"
  mkdir -p "$staged/bin"
  tb="$(now)"
  local goflags="${GOFLAGS:-}"
  [[ " $goflags " == *" -trimpath "* ]] || goflags="${goflags:+$goflags }-trimpath"
  if ! (cd "$ENGINE_MOD" && GOFLAGS="$goflags" "$go_bin" build \
          -ldflags "-s -w -X $VERSION_PKG.Version=v$VERSION" -o "$staged/bin/" "$CLI_PKG" >&2) \
     || ! (cd "$LANGHOST_MOD" && GOFLAGS="$goflags" "$go_bin" build \
          -ldflags "-s -w -X $VERSION_PKG.Version=$LANGHOST_VERSION" -o "$staged/bin/" "$LANGHOST_PKG" >&2); then
    die "go build failed (see the messages above). Go needs the module proxy (GOPROXY=$("$go_bin" env GOPROXY)) or a filled GOMODCACHE; scripts/engine/go.mod and go.sum must match $VERSION. Nothing was written to $DEST."
  fi
  log "go build finished in $(elapsed "$tb")"
  local v
  v="$(pulumi_version_of "$staged/bin/pulumi")"
  [[ "$v" == "v$VERSION" ]] || die "the built pulumi reports '${v}' instead of v$VERSION"
  [[ -x "$staged/bin/pulumi-language-nodejs" ]] || die "the build produced no pulumi-language-nodejs"
  echo "built from Go modules with $("$go_bin" version) on $(date -u +%Y-%m-%dT%H:%M:%SZ): CLI v$VERSION, language host $LANGHOST_VERSION" > "$staged/SOURCE"
  install_into_cache "$staged"
  STAGED=""
}

STAGED=""
cleanup() { [[ -z "$STAGED" ]] || rm -rf "$STAGED"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$CACHE_ROOT"

# A cached engine is the common case and says nothing (every command goes through here; its output would
# bury the one line an operator needs), unless STAGE2_ENGINE_VERBOSE=1.
CACHED=0
if [[ "$REBUILD" != "1" ]] && cache_is_good; then
  CACHED=1
  [[ "${STAGE2_ENGINE_VERBOSE:-0}" == 1 ]] && log "reusing cached engine $BIN"
else
  # One builder at a time; a second run waits and then finds the cache filled.
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$CACHE_ROOT/.lock-v$VERSION"
    if ! flock -n 9; then
      log "another run is preparing the engine v$VERSION; waiting for it"
      flock 9
    fi
    # Holding the lock, no other run is staging this version: drop leftovers of killed runs.
    rm -rf "$CACHE_ROOT/.build-v$VERSION."* "$CACHE_ROOT/.stage-v$VERSION."* "$DEST.old."*
  fi
  if [[ "$REBUILD" != "1" ]] && cache_is_good; then
    log "reusing cached engine $BIN (prepared by another run)"
  elif [[ "$REBUILD" != "1" ]] && copy_from_path; then
    log "cached the installed pulumi v$VERSION in $BIN"
  else
    build_from_go
    log "built engine into $BIN"
  fi
fi

# The shim is tiny and belongs to the installed SDK: always (re)place it.
cp "$SDK_DIR/$SHIM_NAME" "$BIN/.$SHIM_NAME.$$"
chmod 0755 "$BIN/.$SHIM_NAME.$$"
mv -f "$BIN/.$SHIM_NAME.$$" "$BIN/$SHIM_NAME"

[[ "$CACHED" == 1 && "${STAGE2_ENGINE_VERBOSE:-0}" != 1 ]] || log "engine v$VERSION (SDK $SDK_VERSION) ready in $(elapsed "$T0"): $(cd "$BIN" && echo *)"

if [[ "$MODE" == env ]]; then
  home="${PULUMI_HOME:-$REPO_ROOT/.stage2/pulumi-home}"
  backend="${PULUMI_BACKEND_URL:-file://$REPO_ROOT/.stage2/state}"
  mkdir -p "$home"
  case "$backend" in
    file://*) mkdir -p "${backend#file://}" ;;
  esac
  printf 'export PATH=%q\n' "$BIN:$PATH"
  printf 'export PULUMI_SKIP_UPDATE_CHECK=true\n'
  printf 'export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true\n'
  printf 'export PULUMI_HOME=%q\n' "$home"
  printf 'export PULUMI_BACKEND_URL=%q\n' "$backend"
else
  printf '%s\n' "$BIN"
fi
