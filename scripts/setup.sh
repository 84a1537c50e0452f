#!/usr/bin/env bash
# Installs what stackup needs on Debian 12 (run as root): the OCI runtimes (crun, preferred;
# runc, the fallback the tests also cover), conmon, catatonit, busybox-static for test images,
# nftables and iproute2 for networks; openssh-client (STACKUP_HOST=ssh://) and openssh-server (the
# remote-engine tests start their own sshd on a loopback port; the system's ssh service is neither
# needed nor configured by them); then stackup itself.
# Idempotent and quiet; safe to run again.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(crun runc conmon catatonit busybox-static nftables iproute2 util-linux procps debootstrap
      openssh-client openssh-server)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The peers the other backends' and the deploy/registry tests run against: Docker Engine (started)
# with docker-compose, Podman, skopeo and docker-registry, each with the busybox test image.
peers="$(dirname "$0")/../../shared/peers/setup.sh"
if [ -f "$peers" ]; then
  bash "$peers" >/dev/null
else
  echo "setup: $peers is missing (the shared/ folder beside the repo); Docker/Podman tests will fail" >&2
fi
python3 -m pip install -q --disable-pip-version-check -e ".[dev]" 2>&1 | grep -v -E '^(WARNING|DEPRECATION)' || true
python3 -c "import stackup, pydantic, ruamel.yaml, networkx, typer, rich, httpx, pyroute2" 
