#!/usr/bin/env bash
# Measures how long a region goes without a leader when its leading cloudlets-controller dies.
# Starts a real etcd (Debian's etcd-server) on loopback and three controllers electing in one region
# (advisory mode, hosts on libvirt's built-in test driver: no root, no lab, no migration — the figure is
# the election's). Then, N times (default 10): SIGKILL the leader (no resignation: its lease must
# expire), take the time from the kill to a survivor's "leadership.acquired" audit record, and start
# the killed one again (it rejoins as a follower). Prints every takeover, the median and the max.
#
#   bash eng/takeover.sh [KILLS]        environment: TTL (lease TTL in whole seconds, default 5)
#
# Everything it starts it stops by pid; it listens and connects on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
kills=${1:-10}
ttl=${TTL:-5}
[ -x /usr/bin/etcd ] || { echo "takeover: needs Debian's etcd-server (/usr/bin/etcd)" >&2; exit 2; }

work=$(mktemp -d)
declare -A pid port audit
run=0
etcd_pid=""
cleanup() {
  for id in "${!pid[@]}"; do kill -9 "${pid[$id]}" 2>/dev/null || true; done
  [ -n "$etcd_pid" ] && kill "$etcd_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  [ -n "${KEEP:-}" ] && echo "takeover: kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 30000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
}

echo "takeover: building cloudlets-controller..."
dotnet build src/Cloudlets.Controller.Tool/Cloudlets.Controller.Tool.csproj -c Release -nologo -v:q >"$work/build.log" 2>&1 \
  || { tail -20 "$work/build.log" >&2; exit 1; }
dll=$(pwd)/src/Cloudlets.Controller.Tool/bin/Release/net10.0/cloudlets-controller.dll

client=$(free_port); peer=$(free_port)
/usr/bin/etcd --name t --data-dir "$work/etcd" --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
  --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" --initial-cluster "t=http://127.0.0.1:$peer" \
  --logger zap --log-outputs "$work/etcd.log" >"$work/etcd.out" 2>&1 &
etcd_pid=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$client") 2>/dev/null && break; sleep 0.1; done

start() { # start ID: the controller ID with its own config, HTTP port and audit log
  local id=$1
  port[$id]=${port[$id]:-$(free_port)}
  run=$((run + 1))
  audit[$id]="$work/$id-$run.jsonl" # a fresh log per start: a killed leader never wrote its "leadership.lost"
  cat >"$work/$id.json" <<EOF
{ "Controller": {
    "VantagePoints": [ { "Name": "local" } ],
    "Hosts": [ { "Name": "h1", "Uri": "test:///default", "Probe": { "Address": "127.0.0.1", "Port": $client } } ],
    "Vms": [ { "Name": "test", "Users": [ { "VantagePoint": "local" } ] } ],
    "Http": { "Urls": "http://127.0.0.1:${port[$id]}" },
    "Audit": { "Path": "${audit[$id]}" },
    "Election": { "Endpoints": [ "http://127.0.0.1:$client" ], "Region": "bench", "CandidateId": "$id", "LeaseTtl": "00:00:$(printf %02d "$ttl")" } } }
EOF
  dotnet "$dll" --config "$work/$id.json" >"$work/$id.out" 2>&1 &
  pid[$id]=$!
}

# Epoch milliseconds of the last "leadership.acquired" record in an audit log (0 when none).
acquired_ms() {
  local line
  line=$(grep '"event":"leadership.acquired"' "${audit[$1]}" 2>/dev/null | tail -1) || true
  [ -n "$line" ] || { echo 0; return; }
  date -u -d "$(sed -n 's/.*"time":"\([^"]*\)".*/\1/p' <<<"$line")" +%s%3N
}

# The controller whose last leadership record is an acquisition (the leader), or nothing.
leader() {
  local id last
  for id in a b c; do
    kill -0 "${pid[$id]}" 2>/dev/null || continue
    last=$(grep -o '"event":"leadership\.[a-z]*"' "${audit[$id]}" 2>/dev/null | tail -1) || true
    if [ "$last" = '"event":"leadership.acquired"' ]; then echo "$id"; return 0; fi
  done
  return 0
}

for id in a b c; do start "$id"; done
results=()
for k in $(seq "$kills"); do
  current=""
  for _ in $(seq 600); do current=$(leader); [ -n "$current" ] && break; sleep 0.1; done
  [ -n "$current" ] || { echo "takeover: no leader after 60 s" >&2; for f in "$work"/*.out; do tail -n 5 "$f" >&2; done; exit 1; }
  sleep 2 # every follower is settled and watching the key
  before=()
  for id in a b c; do before+=("$(acquired_ms "$id")"); done
  kill -9 "${pid[$current]}"
  killed_ms=$(date -u +%s%3N)
  wait "${pid[$current]}" 2>/dev/null || true
  new=""
  for _ in $(seq 1200); do
    i=0
    for id in a b c; do
      if [ "$id" != "$current" ] && [ "$(acquired_ms "$id")" -gt "${before[$i]}" ]; then new=$id; fi
      i=$((i + 1))
    done
    [ -n "$new" ] && break
    sleep 0.05
  done
  [ -n "$new" ] || { echo "takeover: nobody took over within 60 s of kill $k" >&2; exit 1; }
  ms=$(( $(acquired_ms "$new") - killed_ms ))
  results+=("$ms")
  printf 'kill %2d: %s killed, %s leads after %d ms\n' "$k" "$current" "$new" "$ms"
  start "$current" # rejoins as a follower
done

sorted=$(printf '%s\n' "${results[@]}" | sort -n)
n=${#results[@]}
median=$(awk -v n="$n" 'NR == int((n + 1) / 2) { a = $1 } NR == int(n / 2) + 1 { b = $1 } END { printf "%d", (n % 2 ? a : (a + b) / 2) }' <<<"$sorted")
max=$(tail -1 <<<"$sorted")
echo "takeover over $n kills (lease TTL $ttl s): median $median ms, max $max ms"
