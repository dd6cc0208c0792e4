#!/usr/bin/env bash
# What the ssh transport costs against tcp, in one run: for each transport in turn (tcp, ssh, tcp, ssh) a
# 2-host lab with one guest, five `virsh list` connections from the edge (connect, list, close) and four
# migrations through `cloudlets-lab migrate` (there and back, twice; no bandwidth cap). Run as root from
# the repository root after `bash eng/install-deps.sh`. Prints one line per lab; figures are for people.
set -euo pipefail
rounds=${1:-2}
dotnet build samples/Cloudlets.Samples.Lab -c Release -nologo -v q >/dev/null
lab=samples/Cloudlets.Samples.Lab/bin/Release/net10.0/cloudlets-lab
name_of() { echo "tcost-$1-$$"; }
trap 'for t in tcp ssh; do "$lab" down --name "$(name_of $t)" >/dev/null 2>&1 || true; done' EXIT
for ((r = 0; r < rounds; r++)); do
  for t in tcp ssh; do
    n=$(name_of "$t")
    "$lab" up --name "$n" --hosts 2 --transport "$t" --guest-on cloudlet-1 >/dev/null
    uri=$("$lab" status --json --name "$n" | python3 -c 'import json, sys; print(json.load(sys.stdin)["hosts"][0]["uri"])')
    connects=""
    for i in 1 2 3 4 5; do
      start=$(date +%s%N)
      ip netns exec "$n-edge" virsh -c "$uri" list >/dev/null
      connects="$connects $(( ($(date +%s%N) - start) / 1000000 ))"
    done
    migrations=""
    for i in 1 2; do
      for to in cloudlet-2 cloudlet-1; do
        migrations="$migrations $("$lab" migrate guest-1 "$to" --name "$n" | grep -o 'in [0-9.]* s' | cut -d' ' -f2)"
      done
    done
    echo "$t: virsh list (ms):$connects; migrations (s):$migrations"
    "$lab" down --name "$n" >/dev/null
  done
done
