#!/usr/bin/env bash
# The README's test command: sets up what a fresh machine lacks, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/provision.sh
bash scripts/provision-vscode.sh
[ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund
npm test
