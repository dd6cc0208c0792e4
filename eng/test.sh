#!/usr/bin/env bash
# Runs every test of the repository: the unit tier and the lab tier (real libvirtd + QEMU hosts in
# network namespaces; needs root). With CI=true a lab test that cannot start its lab fails instead
# of being ignored, and any test that did not run (skipped, ignored, inconclusive) fails the run.
# Core's unit tests run once more as the user nobody before the dependencies are installed.
# Ends with one line "N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."

configuration=${CONFIGURATION:-Release}
results=artifacts/test-results
rm -rf "$results"
mkdir -p "$results"
status=0

# Core's unit tests once as an unprivileged user, BEFORE the dependencies are installed: on a fresh
# machine that proves Cloudlets.Core needs neither root nor libvirt. Built by root into a temporary
# folder that the user "nobody" can read; its results count in the final line.
if [ "$(id -u)" -eq 0 ] && [ "${CLOUDLETS_NONROOT_CORE_TESTS:-1}" = "1" ]; then
  nonroot=$(mktemp -d /tmp/cloudlets-nonroot.XXXXXX)
  chmod 755 "$nonroot"
  mkdir -p "$nonroot/home" "$nonroot/results"
  chown nobody "$nonroot/home" "$nonroot/results"
  echo "=== Cloudlets.Core.Tests as nobody (before install-deps)"
  if dotnet build tests/Cloudlets.Core.Tests/Cloudlets.Core.Tests.csproj -c "$configuration" -nologo -v:minimal \
        -o "$nonroot/bin" && chmod -R a+rX "$nonroot/bin"; then
    runuser -u nobody -- env HOME="$nonroot/home" DOTNET_CLI_HOME="$nonroot/home" DOTNET_NOLOGO=1 \
        DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1 CI="${CI:-}" \
        dotnet test "$nonroot/bin/Cloudlets.Core.Tests.dll" \
        --logger "trx;LogFileName=Cloudlets.Core.Tests.nonroot.trx" --logger "console;verbosity=minimal" \
        --results-directory "$nonroot/results" --blame-hang-timeout 10m || status=1
    cp "$nonroot/results/Cloudlets.Core.Tests.nonroot.trx" "$results/" 2>/dev/null \
      || { echo "test: Core's unit tests as nobody produced no results" >&2; status=1; }
  else
    echo "test: building Core's unit tests for the unprivileged run failed" >&2
    status=1
  fi
  rm -rf "$nonroot"
fi

if [ "$(id -u)" -eq 0 ]; then
  bash eng/install-deps.sh || { echo "0 passed, 1 failed"; exit 1; }
else
  echo "test: not root: the lab tier will be ignored (and fail with CI=true)." >&2
fi

if ! dotnet build Cloudlets.Core.sln -c "$configuration" -nologo -v:minimal; then
  echo "test: the build failed" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

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
# Under CI=true a test that did not run (ignored, skipped, inconclusive) is a failure: the lab tier is
# mandatory there, and a test that quietly does not run proves nothing. Each is named.
if [ "${CI:-}" = "true" ] && [ "$skipped" -gt 0 ]; then
  echo "test: CI=true and $skipped test(s) did not run:" >&2
  for trx in "$results"/*.trx; do
    [ -f "$trx" ] || continue
    grep -o '<UnitTestResult [^>]*outcome="\(NotExecuted\|Inconclusive\)"[^>]*>' "$trx" \
      | sed -n 's/.*testName="\([^"]*\)".*outcome="\([^"]*\)".*/  \2: \1/p' >&2
  done
  failed=$((failed + skipped))
fi
# Every failed test is named once more at the end, with the start of its message, so that the tail
# of a long log (all that a CI summary may keep) says what failed.
if [ "$failed" -gt 0 ]; then
  echo "test: failed tests:"
  for trx in "$results"/*.trx; do
    [ -f "$trx" ] || continue
    awk -v file="$(basename "$trx" .trx)" '
      function unescape(t) { gsub(/&lt;/, "<", t); gsub(/&gt;/, ">", t); gsub(/&quot;/, "\"", t); gsub(/&apos;/, "\047", t); gsub(/&amp;/, "\\&", t); return t }
      /<UnitTestResult / && /outcome="(Failed|Error|Timeout|Aborted)"/ {
        name = $0; sub(/.*testName="/, "", name); sub(/".*/, "", name); inside = 1; lines = 0
        printf "  %s: %s\n", file, name; next }
      inside && /<Message>/ { grab = 1 }
      inside && grab { line = $0; gsub(/<\/?Message>/, "", line); if (lines == 0) sub(/^[ \t]+/, "", line)
                       # The first 60 lines of the message: the failed assertions and what they carry.
                       if (line !~ /^[ \t]*$/ && lines < 60) { printf "      %s\n", substr(unescape(line), 1, 300); lines++ }
                       if ($0 ~ /<\/Message>/) grab = 0 }
      inside && /<\/UnitTestResult>/ { inside = 0; grab = 0 }
    ' "$trx"
  done
fi
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1   # a test host that crashed or hung counts as a failure even without a result line
fi
if [ $((passed + failed)) -eq 0 ]; then
  echo "test: no test ran" >&2
  failed=1
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
