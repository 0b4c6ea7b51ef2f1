#!/usr/bin/env bash
# The compiled build: src/ -> dist/ (tsc with tsconfig.build.json, ESM, the
# same folder depth as src/, so paths like ../../package.json and
# ../../../proto resolve alike), plus the plain-JavaScript and Python files
# that modules start by path beside themselves (worker entries, the bench's
# PyTorch script). dist/.built marks a finished build: bin/ticketsmith runs
# dist/ only while nothing under src/ (or package.json) is newer than it.
#   bash scripts/build.sh             build (incremental)
#   bash scripts/build.sh --if-stale  build only when src/ changed since the last build
set -euo pipefail
cd "$(dirname "$0")/.."

stale() {
  [[ ! -f dist/.built ]] || [[ -n "$(find src package.json tsconfig.json tsconfig.build.json -newer dist/.built -print -quit)" ]]
}

if [[ "${1:-}" == "--if-stale" ]] && ! stale; then exit 0; fi

[[ -d src/generated/prisma ]] || bash scripts/prisma-generate.sh
rm -f dist/.built
node_modules/.bin/tsc -p tsconfig.build.json
(cd src && find . -type f \( -name '*.mjs' -o -name '*.cjs' -o -name '*.py' \)) | while read -r f; do
  mkdir -p "dist/$(dirname "$f")"
  cp "src/$f" "dist/$f"
done
touch dist/.built
