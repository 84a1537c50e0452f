#!/usr/bin/env bash
# Bring the webapp up, as root on Debian 12: make the Debian base image if this engine has none
# (debootstrap from this machine's apt mirror; cached per machine, so only the first time is
# slow), build the three images, start everything and wait until the app is healthy.
# Then: `stackup watch` (in this directory) to edit app/src live, `stackup down -v` to finish.
set -euo pipefail
cd "$(dirname "$0")"
read -r -a stackup <<< "${STACKUP:-stackup}"   # STACKUP="python3 -m stackup" runs a checkout
if ! "${stackup[@]}" image ls | grep -q '^debian:bookworm '; then
    "${stackup[@]}" image bootstrap debian:bookworm
fi
"${stackup[@]}" up -d --build --wait "$@"
echo "webapp is up: http://127.0.0.1:${WEBAPP_PORT:-8000}/"
