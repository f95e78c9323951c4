#!/usr/bin/env bash
# Instructions per request of the example gateway, user space, all threads, counted by callgrind:
# GET /api/v1/whoami with a plain key, an impersonation token and a JWT, with the audit log on
# (to a file) and with --quiet. A figure the machine's load does not move, to read beside
# scripts/load.sh's requests/s on a shared machine. The kernel's share (TCP, the log file's
# writes) is not counted.
#
# With REFERENCE (a git revision, or the path of a gateway binary built from one; see
# reference_gateway.sh) the reference gateway is counted too, and each case's change from it.
#
#   scripts/gateway_instructions.sh              # 2,000 requests per case
#   REQUESTS=5000 scripts/gateway_instructions.sh
#   REFERENCE=2292d59 scripts/gateway_instructions.sh
set -euo pipefail
cd "$(dirname "$0")/.."

port="${PORT:-3919}"
requests="${REQUESTS:-2000}"
base="http://127.0.0.1:$port"

if ! command -v valgrind >/dev/null 2>&1; then
    echo "installing valgrind from Debian's packages" >&2
    sudo=""
    if [[ "$(id -u)" -ne 0 ]] && command -v sudo >/dev/null 2>&1; then sudo="sudo"; fi
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq valgrind >/dev/null
fi

cargo build --release -p impersonation-gateway
current_binary="$PWD/target/release/impersonation-gateway"
reference_binary=""
[[ -n "${REFERENCE:-}" ]] && reference_binary="$(scripts/reference_gateway.sh "$REFERENCE")"
work="$(mktemp -d)"
gateway=""
trap '[[ -n "$gateway" ]] && kill "$gateway" 2>/dev/null; rm -rf "$work"' EXIT

# Sends $requests keep-alive requests, after 200 to warm up, and counts the instructions of the
# measured ones only (callgrind's counters are zeroed, then dumped).
count() {
    local config="$1" credential="$2"
    shift 2
    # In a fresh folder: the default store's impersonation.db and key go there, not into the
    # checkout, and no gateway opens another's database.
    rm -rf "$work/run" && mkdir "$work/run"
    (cd "$work/run" && exec valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.%p" \
        "$binary" --addr "127.0.0.1:$port" --rate-limit 0 "$@" \
        >"$work/stdout" 2>"$work/stderr") &
    gateway=$!
    for _ in $(seq 300); do
        curl -fs "$base/healthz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    python3 - "$port" "$requests" "$credential" "$gateway" "$work" <<'EOF'
import http.client, json, os, subprocess, sys

port, requests, credential, pid, work = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
admin = {"Authorization": "Bearer demo-admin-key"}
connection = http.client.HTTPConnection("127.0.0.1", int(port))

def send(method, path, headers, body=None):
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    data = response.read()
    assert response.status in (200, 201), (response.status, data)
    return data

if credential == "plain":
    headers = admin
elif credential == "token":
    token = json.loads(send("POST", "/api/v1/api-tokens/impersonation", admin, b'{"name": "count"}'))["token"]
    headers = {"Authorization": f"Bearer {token}", "X-Guru-UserID": "bob@example.com"}
else:
    body = json.dumps({"data": {"type": "impersonation",
                                "attributes": {"reason": "count", "user": "bob@example.com"}}})
    minted = json.loads(send("POST", "/api/v2/organizations/4ab7e40b-6b30-4a50-9fc8-873c3dca9d37/impersonation",
                             {**admin, "Content-Type": "application/vnd.api+json"}, body.encode()))
    headers = {"Authorization": "Bearer " + minted["data"]["attributes"]["json_web_token"]}
for _ in range(200):
    send("GET", "/api/v1/whoami", headers)
subprocess.run(["callgrind_control", "--zero", pid], check=True, capture_output=True)
for _ in range(requests):
    send("GET", "/api/v1/whoami", headers)
subprocess.run(["callgrind_control", "--dump=measured", pid], check=True, capture_output=True)
EOF
    kill "$gateway"
    wait "$gateway" 2>/dev/null || true
    gateway=""
    # The dump holds one part per thread; sum the totals of the measured parts.
    local total
    total="$(cat "$work"/callgrind.*.* | awk '/^summary:/ { sum += $2 } END { print sum }')"
    [[ -n "${KEEP:-}" ]] && cp "$work"/callgrind.*.* "$KEEP.$config.$credential"
    rm -f "$work"/callgrind.*
    python3 -c "print(round($total / $requests))"
}

# "config cred instr/req", and the reference's count and the change from it when there is one.
report() {
    local config="$1" credential="$2" current reference
    shift 2
    binary="$current_binary"
    current="$(count "$config" "$credential" "$@")"
    if [[ -z "$reference_binary" ]]; then
        printf '%-6s %-6s %10s\n' "$config" "$credential" "$current"
        return
    fi
    binary="$reference_binary"
    reference="$(count "ref-$config" "$credential" "$@")"
    printf '%-6s %-6s %10s %10s %+8d\n' "$config" "$credential" "$current" "$reference" \
        "$((current - reference))"
}

if [[ -n "$reference_binary" ]]; then
    printf '%-6s %-6s %10s %10s %8s\n' config cred instr/req reference change
else
    printf '%-6s %-6s %10s\n' config cred instr/req
fi
for credential in ${CREDENTIALS:-plain token jwt}; do
    report audit "$credential" --audit-log "$work/audit.log"
    report quiet "$credential" --quiet
done
