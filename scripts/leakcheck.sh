#!/usr/bin/env bash
# Fails when the test suite left stackup resources on the machine: OCI runtime containers, stackup
# bridges/veths, network namespaces, nftables tables or overlay mounts.
set -uo pipefail
left=$(
  runc list -q 2>/dev/null | sed 's/^/runc container: /'
  crun list -q 2>/dev/null | sed 's/^/crun container: /'
  ip -o link show 2>/dev/null | awk -F': ' '{sub(/@.*/, "", $2); print $2}' | grep -E '^stk' | sed 's/^/link: /'
  ip netns list 2>/dev/null | awk '{print "netns: " $1}'
  nft list tables 2>/dev/null | grep -i stackup | sed 's/^/nft: /'
  grep -E ' overlay |stackup' /proc/mounts 2>/dev/null | grep -v -E '/var/lib/(docker|containers)' | awk '{print "mount: " $2}'
)
if [ -n "$left" ]; then
  echo "leak check: the suite left resources behind:"
  echo "$left"
  exit 1
fi
echo "leak check: clean"
