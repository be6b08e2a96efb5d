#!/usr/bin/env bash
# A venv of its own for one tool (ansible-builder, the docs build), kept apart from .venv so pinning it
# never rebuilds the test venv; made again only when its requirements file changed.
# Usage: scripts/tool-venv.sh DIR REQUIREMENTS
set -euo pipefail
venv=$1
requirements=$2
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "tool-venv: creating $venv from $requirements"
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
    echo "$want" > "$stamp"
fi
