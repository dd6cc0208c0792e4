#!/usr/bin/env bash
# Writes each package's current public API into its PublicAPI.Unshipped.txt (the baseline that
# Microsoft.CodeAnalysis.PublicApiAnalyzers checks on every build: RS0016 for a public symbol that
# is not declared, RS0017 for a declared one that is gone). Run it after a deliberate API change and
# commit the diff with the change: the diff is the API review. Symbols in PublicAPI.Shipped.txt (a
# release) stay there. One build of the src projects; nothing outside src/*/PublicAPI.*.txt changes.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
projects=()
for dir in src/*/; do
  dir=${dir%/}
  proj="$dir/$(basename "$dir").csproj"
  [ -f "$proj" ] || continue
  projects+=("$proj")
  [ -f "$dir/PublicAPI.Shipped.txt" ] || printf '#nullable enable\n' > "$dir/PublicAPI.Shipped.txt"
  # An empty baseline: every public symbol not shipped is reported once (the file is a compiler
  # input, so each project compiles again).
  printf '#nullable enable\n' > "$dir/PublicAPI.Unshipped.txt"
done

list=$(printf '"%s",' "${projects[@]}")
printf '{ "solution": { "path": "%s/Cloudlets.Core.sln", "projects": [ %s ] } }\n' "$root" "${list%,}" > "$work/src.slnf"
dotnet build "$work/src.slnf" -c Release -nologo -v:q -p:TreatWarningsAsErrors=false > "$work/build.log" 2>&1 || {
  echo "public-api: the src projects do not build:" >&2
  grep ' error ' "$work/build.log" | sort -u | head -20 >&2
  exit 1
}

for proj in "${projects[@]}"; do
  dir=$(dirname "$proj")
  { printf '#nullable enable\n'
    grep -F "[$root/$proj]" "$work/build.log" | grep 'warning RS0016' \
      | sed -n "s/.*warning RS0016: Symbol '\(.*\)' is not part of the declared public API.*/\1/p" | LC_ALL=C sort -u
  } > "$dir/PublicAPI.Unshipped.txt"
  echo "$proj: $(($(wc -l < "$dir/PublicAPI.Unshipped.txt") - 1)) public symbols"
done
