#!/usr/bin/env bash
# A venv of its own for the mem0 comparison (mem0ai's dependencies stay out of the
# project's). Idempotent: re-running reuses the venv.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
python3 -m venv "$here/.venv"
"$here/.venv/bin/pip" install -q --upgrade pip
"$here/.venv/bin/pip" install -q "mem0ai>=0.1.100,<3" "qdrant-client>=1.9,<2" -e "$repo"
echo "ready: $here/.venv/bin/python $here/compare.py --help"
