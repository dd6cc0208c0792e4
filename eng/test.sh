#!/usr/bin/env bash
# Runs every test of the repository: the unit tier and the lab tier (real libvirtd + QEMU hosts in
# network namespaces; needs root). With CI=true a lab test that cannot start its lab fails instead
# of being ignored. Ends with one line "N passed, N failed[, N skipped]".
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -eq 0 ]; then
  bash eng/install-deps.sh || { echo "0 passed, 1 failed"; exit 1; }
else
  echo "test: not root: the lab tier will be ignored (and fail with CI=true)." >&2
fi

configuration=${CONFIGURATION:-Release}
results=artifacts/test-results
rm -rf "$results"
mkdir -p "$results"

if ! dotnet build Cloudlets.Core.sln -c "$configuration" -nologo -v:minimal; then
  echo "test: the build failed" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

status=0
for project in tests/*.Tests/*.Tests.csproj; do
  name=$(basename "$project" .csproj)
  echo "=== $name"
  # One project at a time: lab tests boot emulated guests, and this machine has two cores.
  # A hung test is reported after 20 minutes instead of eating the whole CI budget.
  dotnet test "$project" -c "$configuration" --no-build -nologo \
      --logger "trx;LogFileName=$name.trx" --logger "console;verbosity=normal" \
      --results-directory "$results" --blame-hang-timeout 20m || status=1
  [ -f "$results/$name.trx" ] || { echo "test: $name produced no results" >&2; status=1; }
done

passed=0; failed=0; skipped=0
for trx in "$results"/*.trx; do
  [ -f "$trx" ] || continue
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -1)
  get() { echo "$counters" | sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p"; }
  passed=$((passed + $(get passed)))
  failed=$((failed + $(get failed) + $(get error) + $(get timeout) + $(get aborted)))
  skipped=$((skipped + $(get notExecuted) + $(get inconclusive)))
done
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1   # a test host that crashed or hung counts as a failure even without a result line
fi
if [ $((passed + failed)) -eq 0 ]; then
  echo "test: no test ran" >&2
  failed=1
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
