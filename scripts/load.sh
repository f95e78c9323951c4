#!/usr/bin/env bash
# Load on the example gateway: GET /api/v1/whoami with a plain key, an impersonation token and a
# JWT, measured with wrk on loopback, and the throughput ratios.
#
#   scripts/load.sh            # 10 s per credential
#   DURATION=30s scripts/load.sh
set -euo pipefail
cd "$(dirname "$0")/.."

port="${PORT:-3917}"
duration="${DURATION:-10s}"
connections="${CONNECTIONS:-32}"
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

cargo build --release --example gateway
log="$(mktemp)"
./target/release/examples/gateway --addr "127.0.0.1:$port" --rate-limit 0 --quiet >"$log" 2>&1 &
gateway=$!
trap 'kill "$gateway" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do
    curl -fs "$base/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done

json_field() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }

token="$(curl -fs -X POST "$base/api/v1/api-tokens/impersonation" \
    -H "Authorization: Bearer $admin_key" -d '{"name": "load test"}' | json_field '["token"]')"
jwt="$(curl -fs -X POST "$base/api/v2/organizations/$organization/impersonation" \
    -H "Authorization: Bearer $admin_key" -H 'Content-Type: application/vnd.api+json' \
    -d "{\"data\": {\"type\": \"impersonation\", \"attributes\": {\"reason\": \"load test\", \"user\": \"$user\"}}}" \
    | json_field '["data"]["attributes"]["json_web_token"]')"

# Requests per second of one wrk run; the credential goes in as headers.
measure() {
    wrk -t1 -c"$connections" -d"$duration" "$@" "$base/api/v1/whoami" \
        | awk '/^Requests\/sec/ { print $2 }'
}

plain="$(measure -H "Authorization: Bearer $admin_key")"
opaque="$(measure -H "Authorization: Bearer $token" -H "X-Guru-UserID: $user")"
signed="$(measure -H "Authorization: Bearer $jwt")"

echo
echo "GET /api/v1/whoami, wrk -t1 -c$connections -d$duration, gateway in release mode, $(nproc) cores shared"
printf '%-22s %12s %8s\n' credential requests/s ratio
printf '%-22s %12.0f %8.2f\n' "plain key" "$plain" 1
printf '%-22s %12.0f %8.2f\n' "impersonation token" "$opaque" "$(python3 -c "print($opaque / $plain)")"
printf '%-22s %12.0f %8.2f\n' "JWT" "$signed" "$(python3 -c "print($signed / $plain)")"
