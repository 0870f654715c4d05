#!/usr/bin/env bash
# Installs the real-editor test tools into a git-ignored cache folder (default: <repo>/.e2e), offline-capable
# (npm registry + Debian apt only): Debian chromium (+ libkrb5-dev for code-server's kerberos module),
# code-server 4.100.3 (VS Code 1.100.3), playwright-core and @vscode/vsce.
# Idempotent: every step is skipped when its result is already there. Prints the time it took.
# Usage: scripts/e2e/install.sh [prefix]      (needs node 20, g++, make, python3; root or sudo for apt)
set -euo pipefail
START=$(date +%s)
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PREFIX="${1:-${OTFUSE_E2E_PREFIX:-$ROOT/.e2e}}"
CODE_SERVER_VERSION=4.100.3
PLAYWRIGHT_VERSION=1.65.1
VSCE_VERSION=3.9.2
mkdir -p "$PREFIX"
PREFIX="$(cd "$PREFIX" && pwd)"
cd "$PREFIX"
say() { echo "[e2e:install] $*"; }

# 0) system packages
if ! [ -x /usr/bin/chromium ] || ! dpkg -s libkrb5-dev >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  say "apt: chromium libkrb5-dev"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -o=Dpkg::Use-Pty=0 chromium libkrb5-dev > "$PREFIX/apt.log" 2>&1 \
    || { tail -20 "$PREFIX/apt.log"; exit 1; }
else
  say "apt packages present"
fi

[ -f package.json ] || echo '{"name":"otfuse-e2e-tools","private":true}' > package.json

# 1) code-server. @vscode/ripgrep@1.15.11 (pinned by code-server) downloads rg from GitHub in its postinstall;
#    seed its download cache with the rg that ships in the npm package @vscode/ripgrep-linux-x64.
if [ "$(node -p "try{require('$PREFIX/node_modules/code-server/package.json').version}catch{''}")" != "$CODE_SERVER_VERSION" ]; then
  export TMPDIR="$PREFIX/tmp"
  SEED="$TMPDIR/vscode-ripgrep-cache-1.15.11/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz"
  if [ ! -s "$SEED" ]; then
    say "seeding the ripgrep download cache"
    mkdir -p "$TMPDIR/rgseed" "$(dirname "$SEED")"
    ( cd "$TMPDIR/rgseed" && npm pack --silent @vscode/ripgrep-linux-x64@1.18.0 >/dev/null && tar xzf vscode-ripgrep-linux-x64-1.18.0.tgz )
    tar czf "$SEED" -C "$TMPDIR/rgseed/package/bin" rg
  fi
  say "npm: code-server@$CODE_SERVER_VERSION (a few minutes on 2 cores)"
  # root needs unsafe_perm for the postinstall; node-pty runs `npx node-gyp` (yes); use local Node headers.
  npm_config_nodedir=/usr npm_config_unsafe_perm=true npm_config_yes=true \
    npm install --no-audit --no-fund --loglevel=error "code-server@$CODE_SERVER_VERSION"
else
  say "code-server $CODE_SERVER_VERSION present"
fi

# 2) test tooling; no browser download (Debian's /usr/bin/chromium is used)
have() { [ "$(node -p "try{require('$PREFIX/node_modules/$1/package.json').version}catch{''}")" = "$2" ]; }
if ! have playwright-core "$PLAYWRIGHT_VERSION" || ! have @vscode/vsce "$VSCE_VERSION"; then
  say "npm: playwright-core@$PLAYWRIGHT_VERSION @vscode/vsce@$VSCE_VERSION"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --loglevel=error \
    "playwright-core@$PLAYWRIGHT_VERSION" "@vscode/vsce@$VSCE_VERSION"
else
  say "playwright-core and vsce present"
fi

say "code-server $(node "$PREFIX/node_modules/code-server/out/node/entry.js" --config "$PREFIX/cs-config.yaml" --version 2>/dev/null | tail -1)"
say "done in $(( $(date +%s) - START ))s (prefix $PREFIX)"
