#!/usr/bin/env bash
# Instructions per call of each `layer` bench function, counted by callgrind: a figure that does
# not move with the machine's load, to read beside criterion's times on a shared machine.
#
#   scripts/bench_instructions.sh                 # every function but the 1m ones
#   scripts/bench_instructions.sh jwt jwt_raw_decode
#
# Installs valgrind from Debian's packages if missing. Each function runs alone for two seconds
# under callgrind; the count is the inclusive cost of the bench's `measured` wrapper divided by
# the number of times it was called, so request construction is left out as in criterion.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null 2>&1; then
  echo "installing valgrind from Debian's packages" >&2
  sudo=""
  if [[ "$(id -u)" -ne 0 ]] && command -v sudo >/dev/null 2>&1; then sudo="sudo"; fi
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq valgrind >/dev/null
fi

functions=("$@")
if [ ${#functions[@]} -eq 0 ]; then
  functions=(passthrough tower_http_bearer no_credential opaque_header opaque_suffix
    reject_unknown_token minimal_work jwt jwt_first_sight jwt_raw_decode)
fi

bench=$(cargo bench --bench layer --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "layer" and m.get("executable"):
        print(m["executable"])')

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
printf '| function | instructions per call |\n|---|---:|\n'
for name in "${functions[@]}"; do
  valgrind --tool=callgrind --callgrind-out-file="$out/$name" \
    "$bench" --bench --profile-time 2 "layer/$name\$" >/dev/null 2>&1
  callgrind_annotate --inclusive=yes --tree=caller "$out/$name" 2>/dev/null |
    python3 -c '
import re, sys
text, name = sys.stdin.read(), sys.argv[1]
total = calls = 0
# Each "* ???:layer::measured" entry is one instantiation; the "(Nx)" lines above it are its callers.
for block in text.split("\n\n"):
    match = re.search(r"^\s*([\d,]+) \([^)]*\)  \*  \?\?\?:layer::measured ", block, re.M)
    if match:
        total += int(match.group(1).replace(",", ""))
        calls += sum(int(c.replace(",", "")) for c in re.findall(r"\(([\d,]+)x\)", block[: match.start()]))
print(f"| `{name}` | {total / calls:,.0f} |" if calls else f"| `{name}` | not found |")
' "$name"
done
