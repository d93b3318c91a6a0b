#!/usr/bin/env bash
# The README's "try it" command: a sample project, `clud up`, a command inside, an edit on each
# side, push and pull. Leaves the workspace running; `clud down --force DIR` removes it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/provision.sh
[ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund
node esbuild.mjs
clud() { node dist/cli.js "$@"; }
# The image installs Claude Code and the MCP servers from the npm registry. Behind a TLS-inspecting
# proxy that only works when the image trusts the proxy's authority, as this machine does: trust
# the machine's own bundle (Debian's path) unless the caller chose certificates already.
if [ -z "${CLUD_EXTRA_CA_CERTIFICATES:-}" ] && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  export CLUD_EXTRA_CA_CERTIFICATES=/etc/ssl/certs/ca-certificates.crt
fi

sample="${1:-${TMPDIR:-/tmp}/clud-sample}"
mkdir -p "$sample/src"
printf '[project]\nname = "clud"\nversion = "0.1.0"\n' > "$sample/pyproject.toml"
printf 'print("hello from the host")\n' > "$sample/src/main.py"
printf '*.log\n__pycache__/\n' > "$sample/.gitignore"
if [ "$(id -u)" -eq 0 ] && [ "$(stat -c %u "$sample")" -eq 0 ]; then
  # Root-owned folders are the exception Clud warns about (the workspace user never runs as
  # root); as root, hand the sample to uid 1000 as it would be on a developer's machine.
  chown -R 1000:1000 "$sample"
fi

set -x
clud up "$sample"
clud exec "$sample" -- grep -q clud pyproject.toml
clud exec "$sample" -- sh -c 'echo "print(\"written in the container\")" > src/agent.py'
clud pull "$sample"
cat "$sample/src/agent.py"
echo '# edited on the host' >> "$sample/src/main.py"
clud push "$sample"
clud exec "$sample" -- tail -1 src/main.py
clud status "$sample"
