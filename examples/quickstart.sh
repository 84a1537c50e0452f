#!/usr/bin/env bash
# Quick start on a fresh Debian 12 machine, as root: installs what stackup needs, makes base
# images with no registry (busybox; Debian by debootstrap), brings the example stack up (building
# its migration job's image, waiting until it is ready), shows it, fetches the page it serves,
# and takes it down again unless KEEP=1.
# QUICKSTART_SKIP_SETUP=1 skips the installation; STACKUP="python3 -m stackup" runs a checkout;
# HELLO_PORT picks the host port (default 8080).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${QUICKSTART_SKIP_SETUP:-0}" != 1 ]; then ./scripts/setup.sh; fi
read -r -a stackup <<< "${STACKUP:-stackup}"
"${stackup[@]}" image bootstrap busybox stackup/busybox:latest
# The Debian base the migration job's Dockerfile builds on (debootstrap once per machine, cached).
if ! "${stackup[@]}" image ls | grep -q '^debian:bookworm '; then
    "${stackup[@]}" image bootstrap debian:bookworm
fi
cd examples/hello
"${stackup[@]}" plan || true            # exit 2 means "there are changes", which is expected here
"${stackup[@]}" up -d --wait
"${stackup[@]}" ps
url="http://127.0.0.1:${HELLO_PORT:-8080}/"
echo "--- GET $url"
python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$url"
"${stackup[@]}" logs --tail 5
if [ "${KEEP:-0}" != 1 ]; then "${stackup[@]}" down -v; fi
