#!/usr/bin/env bash
# Runs the pinned Pulumi CLI for this project, offline-capable:
#   scripts/stage2.sh preview --stack prod [--diff]   ends with the plan in the runbook's words (npm run plan)
#   scripts/stage2.sh up --stack prod [--approved-plan <file>]   with a file: exactly that approved plan, or nothing;
#                                                               ends with what it did (npm run plan -- --outcome)
# It puts the engine from scripts/engine.sh first on PATH and turns off update checks and plugin downloads.
# The backend is yours: PULUMI_BACKEND_URL (default: a file backend in .stage2/state) and PULUMI_CONFIG_PASSPHRASE
# (or another secrets provider configured on the stack); the credentials come from the environment
# (STAGE2_DATABASE_URL, STAGE2_ACCESS_TOKEN, STAGE2_REVIEWER_PASSWORD; README: Credentials).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
eval "$("$root/scripts/engine.sh" --env)"
# The program runs for refresh and destroy too: a refresh then reads with the current configuration (never the
# previous run's connection), and a destroy passes the same preflight as an up.
export PULUMI_RUN_PROGRAM="${PULUMI_RUN_PROGRAM:-true}"

# Before the engine starts (cli/stack-guard.ts): no killed run's lock or torn state (npm run recover), only the
# provider code this program writes in the state (the engine runs it to read and delete), and no rollback that
# the configuration file has not committed (an up refused, a preview reporting it; exit 5).
case "${1:-}" in
  up|update|refresh|destroy|preview)
    node "$root/scripts/lib/run.js" cli/stack-guard.ts "$@" || exit $?
    ;;
esac

# An up with an approved plan: the plan is computed again and compared before anything changes, then the engine
# applies exactly the approved update plan (cli/approved-up.ts).
if [[ "${1:-}" == up && " $* " == *" --approved-plan "* ]]; then
  exec node "$root/scripts/lib/run.js" cli/approved-up.ts "$@"
fi

# A preview ends with its plan, one line per change, so that the last lines a reviewer sees say what differs
# (the engine's own output above can run to hundreds of lines). An up ends with what it did to the database
# objects, in the runbook's words: the engine's counts do not say that a "deleted" row was kept because rows
# still reference it, nor what an adoption dropped or renamed. Not for --json, which must stay JSON, nor when
# the caller keeps its own --event-log.
if [[ ("${1:-}" == preview || "${1:-}" == up) && " $* " != *" --json "* && " $* " != *" --event-log "* ]]; then
  events=$(mktemp)
  trap 'rm -f "$events"' EXIT
  set +e
  # --event-log is registered only with PULUMI_DEBUG_COMMANDS (pkg/cmd/pulumi/operations/preview.go).
  PULUMI_DEBUG_COMMANDS=true pulumi "$@" --event-log "$events"
  code=$?
  set -e
  if [[ "$1" == up ]]; then
    printf '\n'
    node "$root/scripts/lib/run.js" cli/plan.ts --events "$events" --outcome || true
  elif [[ $code -eq 0 || $code -eq 7 ]]; then
    printf '\nPlan (npm run plan): drift = the database moved; change = the program did\n'
    node "$root/scripts/lib/run.js" cli/plan.ts --events "$events" || true
  fi
  exit $code
fi
exec pulumi "$@"
