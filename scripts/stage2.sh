#!/usr/bin/env bash
# Runs the pinned Pulumi CLI for this project, offline-capable:
#   scripts/stage2.sh preview --stack prod --diff
#   scripts/stage2.sh up --stack prod
# It puts the engine from scripts/engine.sh first on PATH and turns off update checks and plugin downloads.
# The backend and secrets are yours: PULUMI_BACKEND_URL (default: a file backend in .stage2/state) and
# PULUMI_CONFIG_PASSPHRASE (or another secrets provider configured on the stack).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
eval "$("$root/scripts/engine.sh" --env)"
# The program runs for refresh and destroy too: a refresh then reads with the current configuration (never the
# previous run's connection), and a destroy passes the same preflight as an up.
export PULUMI_RUN_PROGRAM="${PULUMI_RUN_PROGRAM:-true}"
exec pulumi "$@"
