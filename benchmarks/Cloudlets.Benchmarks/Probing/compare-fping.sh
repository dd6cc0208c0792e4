#!/usr/bin/env bash
# Side by side, in one run: fping against the published cloudlets-probe sample on 256 loopback
# targets (127.0.1.0 .. 127.0.1.255), 200 rounds each, 1 ms period per target, no pause between
# packets. Runs both alternately RUNS times and prints the medians.
# Needs: root (raw ICMP), fping, the .NET SDK. Only loopback is probed.
# Usage: compare-fping.sh [RUNS]   (environment: COUNT=200, ARTIFACTS=<folder for dotnet --artifacts-path>)
set -euo pipefail

runs="${1:-5}"
count="${COUNT:-200}"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
artifacts="${ARTIFACTS:-$root/artifacts}"

command -v fping >/dev/null || { echo "compare-fping: fping is not installed" >&2; exit 2; }

echo "publishing samples/Cloudlets.Samples.Probe (Release)..." >&2
dotnet publish "$root/samples/Cloudlets.Samples.Probe" -c Release --artifacts-path "$artifacts" ${PUBLISH_ARGS:-} >/dev/null
probe="$artifacts/publish/Cloudlets.Samples.Probe/release/cloudlets-probe"
[ -x "$probe" ] || { echo "compare-fping: $probe was not built" >&2; exit 2; }

targets=()
for i in $(seq 0 255); do targets+=("127.0.1.$i"); done
expected=$(( ${#targets[@]} * count ))

now_ns() { date +%s%N; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

fping_wall=(); probe_wall=(); probe_elapsed=(); fping_lost=(); probe_lost=()
for run in $(seq 1 "$runs"); do
  start=$(now_ns)
  out=$(fping -C "$count" -p 1 -i 0 -q "${targets[@]}" 2>&1 >/dev/null || true)
  end=$(now_ns)
  fping_wall+=("$(( (end - start) / 1000 ))")
  # -C lists one figure per probe; "-" is a lost one.
  fping_lost+=("$(printf '%s\n' "$out" | awk -F' : ' 'NF == 2 { n += gsub(/(^| )-( |$)/, " ", $2) } END { print n + 0 }')")

  start=$(now_ns)
  json=$("$probe" --count "$count" --period 1 --interval 0 --json "${targets[@]}" || true)
  end=$(now_ns)
  probe_wall+=("$(( (end - start) / 1000 ))")
  probe_elapsed+=("$(printf '%s' "$json" | sed -n 's/^{"elapsedMs":\([0-9.]*\),.*/\1/p')")
  received=$(printf '%s' "$json" | grep -o '"received":[0-9]*' | awk -F: '{ s += $2 } END { print s + 0 }')
  probe_lost+=("$(( expected - received ))")
  printf 'run %d: fping %6.1f ms (lost %s) | cloudlets-probe %6.1f ms wall, elapsedMs %s (lost %s)\n' "$run" \
    "$(div ${fping_wall[-1]} 1000)" "${fping_lost[-1]}" "$(div ${probe_wall[-1]} 1000)" "${probe_elapsed[-1]}" "${probe_lost[-1]}"
done

fw=$(printf '%s\n' "${fping_wall[@]}" | median)
pw=$(printf '%s\n' "${probe_wall[@]}" | median)
pe=$(printf '%s\n' "${probe_elapsed[@]}" | median)
fl=$(printf '%s\n' "${fping_lost[@]}" | awk '{ s += $1 } END { print s + 0 }')
pl=$(printf '%s\n' "${probe_lost[@]}" | awk '{ s += $1 } END { print s + 0 }')
echo "targets ${#targets[@]}, rounds $count, probes per run $expected, runs $runs (medians)"
printf 'fping -C %d -p 1 -i 0 -q   wall %8.1f ms   lost (all runs) %d\n' "$count" "$(div $fw 1000)" "$fl"
printf 'cloudlets-probe --count %d --period 1 --interval 0 --json   wall %8.1f ms   elapsedMs %8.1f   lost (all runs) %d\n' "$count" "$(div $pw 1000)" "$pe" "$pl"
printf 'ratio wall cloudlets-probe / fping = %.3f (goal <= 1.15); elapsedMs / fping wall = %.3f (goal <= 1)\n' \
  "$(div $pw $fw)" "$(div "$pe" "$(div "$fw" 1000)")"
