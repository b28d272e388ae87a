#!/bin/sh
# Installs the workspace on a fresh machine that has only Node 20 and npm.
# - pnpm comes from the npm registry at the version pinned in package.json.
# - better-sqlite3 is compiled from source here (its prebuilt download is not reachable);
#   node-gyp must use the local Node headers instead of downloading them.
set -eu
cd "$(dirname "$0")/.."
want=$(node -p "require('./package.json').packageManager.split('@')[1]")
if [ "$(pnpm --version 2>/dev/null || true)" != "$want" ]; then
  echo "agentid: installing pnpm@$want" >&2
  npm install --global --no-audit --no-fund "pnpm@$want" >/dev/null 2>&1 || {
    # No permission for a global install: use a private prefix inside the repo.
    npm install --prefix .tools --no-audit --no-fund "pnpm@$want" >/dev/null
    PATH="$PWD/.tools/node_modules/.bin:$PATH"; export PATH
  }
fi
if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node.h ]; then
  npm_config_nodedir=/usr; export npm_config_nodedir
fi
export TURBO_TELEMETRY_DISABLED=1
pnpm install --frozen-lockfile=false --prefer-offline --reporter=append-only 2>&1 | tail -n 5
