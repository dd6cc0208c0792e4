#!/usr/bin/env bash
# The demonstration: a lab of an edge device and three cloudlets on this machine, one guest VM,
# the delays 300 / 20 / 20 ms toward the users, and the pipeline in automatic mode. The VM
# live-migrates to a 20 ms host; in the second act the users "move" and the VM follows.
# Run as root. Extra arguments go to cloudlets-demo (for example --scenario FILE, --keep).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "demo: run as root (the lab creates network namespaces and starts libvirt daemons)." >&2
  exit 1
fi

bash eng/install-deps.sh
out=artifacts/demo
mkdir -p "$out"
dotnet build samples/Cloudlets.Samples.Demo -c Release -nologo -v:quiet -o "$out/bin"
exec dotnet "$out/bin/cloudlets-demo.dll" --json "$out/summary.json" --plot "$out/rtt.svg" "$@"
