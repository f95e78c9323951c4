#!/usr/bin/env bash
# Load on the example gateway: GET /api/v1/whoami with a plain key, an impersonation token and a
# JWT, measured with wrk on loopback, in the default configuration (the audit log on, written to
# a file with --audit-log; tokens in SQLite behind the memory cache) and with --quiet (no log).
#
# A round runs plain, token, plain, JWT, plain (JWT first in even rounds), and each ratio is to
# the mean of the two plain runs beside it, so a machine whose speed drifts skews it less. The
# report gives each run's requests/s and 99th percentile, and over the rounds the median ratios
# and the mean ratios with their 95 % confidence intervals. Many short rounds narrow the interval
# more than a few long ones on a shared host. The same five runs are then made at a fixed pace
# (PACE_MS between a connection's answer and its next request) to compare the 99th percentile at
# the same load, which flat out is mostly the wait for a core.
#
# With REFERENCE (a git revision, or the path of a gateway binary built from one) every round
# also runs the reference gateway in both configurations, in alternating order, and the report
# adds each ratio's change from the reference's, paired round by round.
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
reference_checkout="$PWD/target/reference/checkout"

# Builds the gateway of a git revision in a worktree of its own under target/reference (kept for
# the next run's incremental build), as a package or, in older revisions, as an example.
build_reference() {
    local revision="$1"
    git worktree remove --force "$reference_checkout" 2>/dev/null || rm -rf "$reference_checkout"
    git worktree add --quiet --detach "$reference_checkout" "$revision"
    export CARGO_TARGET_DIR="$PWD/target/reference/target"
    if [[ -f "$reference_checkout/examples/gateway/Cargo.toml" ]]; then
        (cd "$reference_checkout" && cargo build --release -p impersonation-gateway)
        reference_binary="$CARGO_TARGET_DIR/release/impersonation-gateway"
    else
        (cd "$reference_checkout" && cargo build --release --example gateway)
        reference_binary="$CARGO_TARGET_DIR/release/examples/gateway"
    fi
    unset CARGO_TARGET_DIR
    git worktree remove --force "$reference_checkout"
}

builds=(current)
if [[ -n "${REFERENCE:-}" ]]; then
    if [[ -x "$REFERENCE" && -f "$REFERENCE" ]]; then
        reference_binary="$(realpath "$REFERENCE")"
    else
        build_reference "$REFERENCE"
    fi
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

# "requests/s p99-in-ms" of one wrk run; the credential goes in as headers. The log's dirty
# pages are written to disk after each run, so the kernel's writeback of one run's log does not
# land in the next run, a plain key's perhaps.
measure() {
    sync
    "${pin_wrk[@]}" wrk -t1 -c"$connections" -d"$duration" --latency "${pace[@]}" "$@" \
        "$base/api/v1/whoami" | awk '
        function ms(v) {
            if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
            if (v ~ /ms$/) return substr(v, 1, length(v) - 2)
            if (v ~ /s$/) return substr(v, 1, length(v) - 1) * 1000
            return v
        }
        /^Requests\/sec/ { rate = $2 }
        $1 == "99%" { p99 = ms($2) }
        END { printf "%s %s\n", rate, p99 }'
}

echo "function delay() return $pace_ms end" >"$work/pace.lua"

# One line of results: plain, token, plain, JWT, plain ("requests/s p99" each), in that column
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
python3 - "$results" "$paced_results" "$pace_ms" <<'EOF'
import statistics, sys


def interval(values):
    """The mean and the half-width of its 95 % confidence interval (Student's t)."""
    t95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26, 10: 2.23,
           15: 2.13, 20: 2.09, 25: 2.06, 30: 2.04, 40: 2.02, 60: 2.00}
    n = len(values)
    if n < 2:
        return values[0], float("nan")
    t = t95[max(k for k in t95 if k <= n - 1)]
    return statistics.mean(values), t * statistics.stdev(values) / n ** 0.5


def summary(label, values):
    mean, half = interval(values)
    return f"{label} {statistics.median(values):.2f} (mean {mean:.3f} ± {half:.3f})"


flat_out = [line.split() for line in open(sys.argv[1])]
print(f"{'round':>5} {'config':<6} {'plain/s':>23} {'p99 ms':>16} {'token/s':>8} {'ratio':>6} {'p99 ms':>7} "
      f"{'JWT/s':>8} {'ratio':>6} {'p99 ms':>7} {'log lines':>10} {'dropped':>8}")
ratios = {}
for round_, config, *figures, lines, dropped in flat_out:
    p1, p1_99, token, token_99, p2, p2_99, jwt, jwt_99, p3, p3_99 = map(float, figures)
    token_ratio, jwt_ratio = token / ((p1 + p2) / 2), jwt / ((p2 + p3) / 2)
    token_p99, jwt_p99 = token_99 / ((p1_99 + p2_99) / 2), jwt_99 / ((p2_99 + p3_99) / 2)
    r = ratios.setdefault(config, {"token": [], "jwt": [], "token_p99": [], "jwt_p99": []})
    r["token"].append(token_ratio)
    r["jwt"].append(jwt_ratio)
    r["token_p99"].append(token_p99)
    r["jwt_p99"].append(jwt_p99)
    plains = f"{p1:.0f} {p2:.0f} {p3:.0f}"
    plain_p99 = f"{p1_99:.2f} {p2_99:.2f} {p3_99:.2f}"
    print(f"{round_:>5} {config:<6} {plains:>23} {plain_p99:>16} {token:>8.0f} {token_ratio:>6.2f} {token_99:>7.2f} "
          f"{jwt:>8.0f} {jwt_ratio:>6.2f} {jwt_99:>7.2f} {lines:>10} {dropped:>8}")
print()
for config, r in ratios.items():
    median = {key: statistics.median(values) for key, values in r.items()}
    (token_mean, token_half), (jwt_mean, jwt_half) = interval(r["token"]), interval(r["jwt"])
    print(f"{config}: median requests/s ratio token {median['token']:.2f}, JWT {median['jwt']:.2f}; "
          f"median p99 ratio token {median['token_p99']:.2f}, JWT {median['jwt_p99']:.2f}")
    print(f"{' ' * len(config)}  mean requests/s ratio token {token_mean:.3f} ± {token_half:.3f}, "
          f"JWT {jwt_mean:.3f} ± {jwt_half:.3f} (95 % confidence, {len(r['token'])} rounds)")

by_round = {}
for round_, config, *figures, lines, dropped in flat_out:
    p1, _, token, _, p2, _, jwt, _, p3, _ = map(float, figures)
    by_round.setdefault(round_, {})[config] = (token / ((p1 + p2) / 2), jwt / ((p2 + p3) / 2))
for config in ("audit", "quiet"):
    pairs = [(r[config], r["ref-" + config]) for r in by_round.values() if "ref-" + config in r]
    if not pairs:
        continue
    (token_change, token_half), (jwt_change, jwt_half) = (
        interval([now[i] - ref[i] for now, ref in pairs]) for i in (0, 1))
    print(f"{config}: change from the reference's ratio, paired by round: token {token_change:+.3f} ± "
          f"{token_half:.3f}, JWT {jwt_change:+.3f} ± {jwt_half:.3f} (95 % confidence, {len(pairs)} rounds)")

paced = [line.split() for line in open(sys.argv[2])]
print()
print(f"The same runs at a fixed pace ({sys.argv[3]} ms between a connection's answer and its next "
      "request), p99 in ms:")
print(f"{'round':>5} {'config':<6} {'plain/s':>8} {'plain p99':>16} {'token':>6} {'ratio':>6} {'JWT':>6} {'ratio':>6}")
p99_ratios = {}
for round_, config, *figures in paced:
    p1, p1_99, token, token_99, p2, p2_99, jwt, jwt_99, p3, p3_99 = map(float, figures)
    token_p99, jwt_p99 = token_99 / ((p1_99 + p2_99) / 2), jwt_99 / ((p2_99 + p3_99) / 2)
    r = p99_ratios.setdefault(config, {"token": [], "jwt": []})
    r["token"].append(token_p99)
    r["jwt"].append(jwt_p99)
    plain_p99 = f"{p1_99:.2f} {p2_99:.2f} {p3_99:.2f}"
    print(f"{round_:>5} {config:<6} {(p1 + p2 + p3) / 3:>8.0f} {plain_p99:>16} {token_99:>6.2f} {token_p99:>6.2f} "
          f"{jwt_99:>6.2f} {jwt_p99:>6.2f}")
print()
for config, r in p99_ratios.items():
    print(f"{config}: p99 ratio at a fixed pace, median {summary('token', r['token'])}, "
          f"{summary('JWT', r['jwt'])}")
EOF
