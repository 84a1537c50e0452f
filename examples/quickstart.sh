#!/usr/bin/env bash
# Quick start on a fresh Debian 12 machine, as root: installs what stackup needs, makes a base
# image with no registry, brings the example stack up (waiting until it is ready), shows it,
# fetches the page it serves, and takes it down again unless KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
stackup image bootstrap busybox stackup/busybox:latest
cd examples/hello
stackup plan || true            # exit 2 means "there are changes", which is expected here
stackup up -d --wait
stackup ps
echo "--- GET http://127.0.0.1:8080/"
python3 -c 'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:8080/", timeout=5).read().decode())'
stackup logs --tail 5
if [ "${KEEP:-0}" != 1 ]; then stackup down -v; fi
