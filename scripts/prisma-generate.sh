#!/usr/bin/env bash
# Generates the Prisma client into src/generated/prisma (git-ignored) when
# prisma/schema.prisma or the installed Prisma version changed; a no-op
# otherwise, so it can run before every typecheck, test and start.
#
# Prisma 7's CLI wants a schema-engine binary even for `generate`, and
# downloads one when none is given; offline that fails. `generate` never runs
# the engine, so any existing file satisfies the check.
set -euo pipefail
cd "$(dirname "$0")/.."

out=src/generated/prisma
stamp="$out/.schema-stamp"
version=$(node -p "require('./node_modules/prisma/package.json').version")
want=$( { cat prisma/schema.prisma; echo "prisma $version"; } | sha256sum | cut -d' ' -f1)

if [[ -f "$stamp" && -f "$out/client.ts" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi

export PRISMA_SCHEMA_ENGINE_BINARY="${PRISMA_SCHEMA_ENGINE_BINARY:-$PWD/scripts/prisma-generate.sh}"
export PRISMA_HIDE_UPDATE_MESSAGE=1
export CHECKPOINT_DISABLE=1
node node_modules/prisma/build/index.js generate --schema prisma/schema.prisma >/dev/null
echo "$want" > "$stamp"
echo "prisma-generate: client generated in $out"
