#!/usr/bin/env bash
# Load on the example gateway: GET /api/v1/whoami with a plain key, an impersonation token and a
# JWT, measured with wrk on loopback, in the default configuration (the audit log on, written to
# a file with --audit-log; tokens in SQLite behind the memory cache) and with --quiet (no log).
#
# A round runs plain, token, plain, JWT, plain (JWT first in even rounds), and each ratio is to
# the mean of the two plain runs beside it, so a machine whose speed drifts skews it less. Two
# ratios: requests/s, and cost (the gateway's CPU time per request, the plain key's to the
# credential's), which the host's other tenants move far less. scripts/load_report.py gives each
# run's figures, and over the rounds the median ratios and the mean ratios with their 95 %
# confidence intervals. The same five runs are then made at a fixed pace (PACE_MS between a
# connection's answer and its next request) to compare the 99th percentile at the same load,
# which flat out is mostly the wait for a core.
#
# With REFERENCE (a git revision, or the path of a gateway binary built from one; see
# reference_gateway.sh) every round also runs the reference gateway in both configurations, in
# alternating order, and the report adds each ratio's change from the reference's, paired round
# by round.
#
# With PIN=1 the gateway runs on CPU 0 and wrk on CPU 1, so the ratios are the gateway's alone.
#
#   scripts/load.sh                       # 30 rounds, 1 s per credential
#   REFERENCE=2292d59 scripts/load.sh     # side by side with that revision
#   ROUNDS=6 DURATION=5s PIN=1 scripts/load.sh
#   PACE_MS=1 scripts/load.sh             # a faster fixed pace, about 25,000 requests/s
set -euo pipefail
cd "$(dirname "$0")/.."

port="${PORT:-3917}"
duration="${DURATION:-1s}"
connections="${CONNECTIONS:-32}"
rounds="${ROUNDS:-30}"
pace_ms="${PACE_MS:-3}"
pin_gateway=()
pin_wrk=()
if [[ "${PIN:-}" == 1 ]]; then
    pin_gateway=(taskset -c 0)
    pin_wrk=(taskset -c 1)
fi
base="http://127.0.0.1:$port"
admin_key="demo-admin-key"
organization="4ab7e40b-6b30-4a50-9fc8-873c3dca9d37"
user="bob@example.com"

if ! command -v wrk >/dev/null 2>&1; then
    echo "installing wrk from Debian's packages" >&2
    sudo=""
    if [[ "$(id -u)" -ne 0 ]] && command -v sudo >/dev/null 2>&1; then sudo="sudo"; fi
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >/dev/null
fi

cargo build --release -p impersonation-gateway
current_binary="$PWD/target/release/impersonation-gateway"
reference_binary=""
builds=(current)
if [[ -n "${REFERENCE:-}" ]]; then
    reference_binary="$(scripts/reference_gateway.sh "$REFERENCE")"
    builds+=(reference)
fi
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
work="$(mktemp -d)"
gateway=""
stop_gateway() {
    if [[ -n "$gateway" ]]; then
        kill -TERM "$gateway" 2>/dev/null || true
        wait "$gateway" 2>/dev/null || true
        gateway=""
    fi
}
trap 'stop_gateway; rm -rf "$work"' EXIT

json_field() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }

# Starts $binary with the given flags, in a fresh folder, and fetches a token and a JWT from it.
start_gateway() {
    rm -rf "$work/run" && mkdir "$work/run"
    (cd "$work/run" && exec "${pin_gateway[@]}" "$binary" --addr "127.0.0.1:$port" --rate-limit 0 "$@" \
        >"$work/stdout" 2>"$work/stderr") &
    gateway=$!
    for _ in $(seq 100); do
        curl -fs "$base/healthz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    token="$(curl -fs -X POST "$base/api/v1/api-tokens/impersonation" \
        -H "Authorization: Bearer $admin_key" -d '{"name": "load test"}' | json_field '["token"]')"
    jwt="$(curl -fs -X POST "$base/api/v2/organizations/$organization/impersonation" \
        -H "Authorization: Bearer $admin_key" -H 'Content-Type: application/vnd.api+json' \
        -d "{\"data\": {\"type\": \"impersonation\", \"attributes\": {\"reason\": \"load test\", \"user\": \"$user\"}}}" \
        | json_field '["data"]["attributes"]["json_web_token"]')"
}

# The gateway's CPU time so far, in ns, over its threads (the kernel's count, which leaves out
# the time the host took the CPU away).
gateway_cpu_ns() {
    cat /proc/"$gateway"/task/*/schedstat 2>/dev/null | awk '{ sum += $1 } END { printf "%.0f\n", sum }'
}

# "requests/s p99-in-ms CPU-µs-a-request" of one wrk run; the credential goes in as headers. The
# log's dirty pages are written to disk after each run, so the kernel's writeback of one run's
# log does not land in the next run, a plain key's perhaps.
measure() {
    sync
    local before after report
    before="$(gateway_cpu_ns)"
    report="$("${pin_wrk[@]}" wrk -t1 -c"$connections" -d"$duration" --latency "${pace[@]}" "$@" \
        "$base/api/v1/whoami")"
    after="$(gateway_cpu_ns)"
    awk -v cpu_ns="$((after - before))" '
        function ms(v) {
            if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
            if (v ~ /ms$/) return substr(v, 1, length(v) - 2)
            if (v ~ /s$/) return substr(v, 1, length(v) - 1) * 1000
            return v
        }
        / requests in / { requests = $1 }
        /^Requests\/sec/ { rate = $2 }
        $1 == "99%" { p99 = ms($2) }
        END { printf "%s %s %.3f\n", rate, p99, cpu_ns / 1000 / requests }' <<<"$report"
}

echo "function delay() return $pace_ms end" >"$work/pace.lua"

# One line of results: plain, token, plain, JWT, plain (as `measure` gives each), in that column
# order whichever came first.
measure_round() {
    # Odd rounds measure the token first, even rounds the JWT; the plain key's run before
    # the first is "before" for it, the one between them "between", the last "after".
    before="$(measure -H "Authorization: Bearer $admin_key")"
    if ((round % 2)); then
        opaque="$(measure -H "Authorization: Bearer $token" -H "X-Guru-UserID: $user")"
    else
        signed="$(measure -H "Authorization: Bearer $jwt")"
    fi
    between="$(measure -H "Authorization: Bearer $admin_key")"
    if ((round % 2)); then
        signed="$(measure -H "Authorization: Bearer $jwt")"
    else
        opaque="$(measure -H "Authorization: Bearer $token" -H "X-Guru-UserID: $user")"
    fi
    after="$(measure -H "Authorization: Bearer $admin_key")"
    if ((round % 2)); then
        echo "$before $opaque $between $signed $after"
    else
        # Columns stay plain-token-plain-JWT-plain: the token's neighbours come first.
        echo "$after $opaque $between $signed $before"
    fi
}

results="$work/results"
paced_results="$work/paced"
# One round of one build in one configuration: flat out, then at a fixed pace.
measure_config() {
    local build="$1" config="$2" label
    label="$config"
    [[ "$build" == reference ]] && label="ref-$config"
    if [[ "$config" == audit ]]; then
        start_gateway --audit-log "$work/run/audit.log"
    else
        start_gateway --quiet
    fi
    pace=()
    flat_out="$(measure_round)"
    pace=(-s "$work/pace.lua")
    paced="$(measure_round)"
    stop_gateway
    lines=0
    [[ "$config" == audit ]] && lines="$(wc -l <"$work/run/audit.log")"
    dropped="$(grep -o 'dropped [0-9]* lines in all' "$work/stderr" | grep -o '[0-9]*' || echo 0)"
    echo "$round $label $flat_out $lines $dropped" | tee -a "$results" >&2
    echo "$round $label $paced" | tee -a "$paced_results" >&2
}

for round in $(seq "$rounds"); do
    order=("${builds[@]}")
    # The reference goes first in even rounds, so neither build always runs on a warmer machine.
    if ((round % 2 == 0)) && ((${#builds[@]} == 2)); then order=(reference current); fi
    for build in "${order[@]}"; do
        binary="$current_binary"
        [[ "$build" == reference ]] && binary="$reference_binary"
        for config in audit quiet; do
            measure_config "$build" "$config"
        done
    done
done

echo
echo "GET /api/v1/whoami, wrk -t1 -c$connections -d$duration, gateway in release mode with --rate-limit 0,"
[[ -n "${REFERENCE:-}" ]] && echo "reference (ref-): $REFERENCE"
if [[ "${PIN:-}" == 1 ]]; then
    echo "the gateway on CPU 0, wrk on CPU 1; load average before: $load_before"
else
    echo "$(nproc) cores shared with wrk; load average before: $load_before"
fi
mkdir -p target/load
cp "$results" target/load/flat-out
cp "$paced_results" target/load/paced
echo "(results kept in target/load; python3 scripts/load_report.py target/load/flat-out target/load/paced $pace_ms reports them again)"
python3 scripts/load_report.py "$results" "$paced_results" "$pace_ms"
