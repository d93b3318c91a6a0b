#!/usr/bin/env bash
# Makes a real VS Code available for the extension's tests where @vscode/test-electron cannot
# download one: code-server (VS Code 1.100 in a browser, from the npm registry) and Debian's
# Chromium, driven by playwright-core. Installs into .vscode-test/ (ignored by git). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "[provision-vscode] $*" >&2; }
CODE_SERVER_VERSION=4.100.3   # the newest release that runs on Node 20
DEST=.vscode-test/code-server

missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v rg >/dev/null || missing+=(ripgrep)
for pkg in libkrb5-dev libsecret-1-dev libxkbfile-dev libx11-dev pkg-config; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
fi

if [ ! -x "$DEST/node_modules/.bin/code-server" ]; then
  # @vscode/ripgrep's install step downloads rg from the internet; hand it Debian's binary
  # through the cache folder it checks first.
  tmp=$(mktemp -d)
  cp "$(command -v rg)" "$tmp/rg" && tar -C "$tmp" -czf "$tmp/rg.tgz" rg
  for v in 1.15.9 1.15.10 1.15.11 1.15.12 1.15.13 1.15.14; do
    mkdir -p "/tmp/vscode-ripgrep-cache-$v"
    cp "$tmp/rg.tgz" "/tmp/vscode-ripgrep-cache-$v/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz"
  done
  rm -rf "$tmp"
  log "installing code-server $CODE_SERVER_VERSION (about a minute)"
  mkdir -p "$DEST"
  (cd "$DEST" && [ -f package.json ] || echo '{"private":true}' > package.json)
  (cd "$DEST" && npm_config_unsafe_perm=true npm_config_yes=true npm install --no-audit --no-fund "code-server@$CODE_SERVER_VERSION" >/tmp/code-server-install.log 2>&1) \
    || { echo "provision-vscode: code-server install failed; see /tmp/code-server-install.log" >&2; tail -20 /tmp/code-server-install.log >&2; exit 1; }
fi
log "code-server $("$DEST/node_modules/.bin/code-server" --version | head -1)"
