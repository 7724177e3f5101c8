#!/usr/bin/env bash
# scripts/sdk-next.sh: the newest Pulumi SDK on the pinned engine, in a throwaway copy of the project.
#
#   scripts/sdk-next.sh [COMMAND...]   default COMMAND: the demo, then the engine tests named below
#
# The project pins @pulumi/pulumi 3.248.0, the last release that declares Node.js 20 (the machine's Node.js).
# This script shows what moving the SDK on would do today: it copies the work tree (tracked and untracked
# files, without .git and node_modules) into a temporary folder, runs `npm install` there with the SDK and
# policy SDK below, then runs COMMAND in the copy with the Node.js that is first on PATH (.ci/run puts
# Node.js 24 there: these SDKs declare node >= 22). The engine is the project's pinned one (scripts/engine.sh:
# the CLI of scripts/engine/go.mod and the v3.68.0 language host), which is older than this SDK:
# STAGE2_ENGINE_SDK_AHEAD=1 lets engine.sh run it. Nothing in the work tree or its node_modules changes; the
# copy is removed at the end unless STAGE2_SDK_NEXT_KEEP=1.
#
# By default, each process the engine starts runs once on the newer SDK: the demo runs the program, the dynamic
# provider and the plan read from the event log (up, the owner's and the reviewer's previews, drift, a refused
# approved plan, the report, destroy); then, in parallel (test/run.ts), the two engine tests of what the demo does
# not reach: the policy pack's analyzer on @pulumi/policy (policy-pack) and an update plan saved and applied
# (approved-plan).
set -euo pipefail

# The newest releases on the npm registry on 2026-12-07 (npm view @pulumi/pulumi version; @pulumi/policy).
SDK_NEXT="3.276.0"
POLICY_NEXT="1.21.0"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
log() { printf '[sdk-next] %s\n' "$*" >&2; }

if [[ $# -eq 0 ]]; then
  set -- bash -c 'npm run demo && node scripts/lib/run.js test/run.ts test/engine/policy-pack.test.ts test/engine/approved-plan.test.ts'
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/stage2-sdk-next.XXXXXX")"
cleanup() {
  if [[ "${STAGE2_SDK_NEXT_KEEP:-0}" == 1 ]]; then
    log "kept $work"
    return
  fi
  # The tests leave their PostgreSQL clusters running (keyed by the copy's path, one per slot of test/run.ts):
  # stop and remove them while the copy that names them still exists.
  if [[ -d "$work/project/node_modules" ]]; then
    local names=() base="${STAGE2_TEST_CLUSTER:-test}" slot
    for ((slot = 1; slot <= ${STAGE2_TEST_JOBS:-$(nproc)}; slot++)); do names+=(--name "$base-$slot"); done
    (cd "$work/project" && node scripts/lib/run.js scripts/localdb.ts destroy --name "$base" "${names[@]}") >&2 ||
      log "could not stop the copy's test clusters (see above)"
  fi
  rm -rf "$work"
}
trap cleanup EXIT
copy="$work/project"
mkdir -p "$copy"

# The work tree as git sees it (tracked and new files, ignored ones left out), so a CI clone and a developer's
# checkout copy alike; files deleted in the work tree are skipped. node_modules and .stage2 never come along,
# even as a symlink (which .gitignore's `node_modules/` does not match): npm install must not reach the
# project's own node_modules.
(
  cd "$REPO_ROOT"
  git ls-files -z --cached --others --exclude-standard --deduplicate |
    while IFS= read -r -d '' f; do
      case "$f" in node_modules | node_modules/* | .stage2 | .stage2/*) continue ;; esac
      if [[ -e "$f" || -L "$f" ]]; then printf '%s\0' "$f"; fi
    done |
    tar --null -T - -cf -
) | tar -x -C "$copy"
[[ ! -e "$copy/node_modules" && ! -L "$copy/node_modules" ]] || { log "ERROR: the copy has a node_modules"; exit 1; }

log "node $(node --version), npm $(npm --version); installing @pulumi/pulumi@$SDK_NEXT @pulumi/policy@$POLICY_NEXT in $copy"
start=$SECONDS
(cd "$copy" && npm install --no-audit --no-fund --save-exact "@pulumi/pulumi@$SDK_NEXT" "@pulumi/policy@$POLICY_NEXT" >&2)
installed="$(cd "$copy" && node -p 'require("@pulumi/pulumi/package.json").version + " / policy " + require("@pulumi/policy/package.json").version')"
log "installed $installed in $((SECONDS - start)) s"

cd "$copy"
export STAGE2_ENGINE_SDK_AHEAD=1
STAGE2_ENGINE_VERBOSE=1 scripts/engine.sh >/dev/null
"$@"
