#!/bin/bash
# Moves the shared volume's schema to the version baked into the image, once.
set -euo pipefail
target=$(cat /opt/migrations/target)
current=$(cat /data/schema 2>/dev/null || echo v1)
. /etc/os-release
echo "migrating $current to $target (on $PRETTY_NAME)"
echo "$target" > /data/schema
echo "migration done"
