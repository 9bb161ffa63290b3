#!/usr/bin/env bash
# GET /auth/session (a bearer session token: the check every web request behind Postern makes)
# beside nginx answering a fixed 200 (`return 200`, one worker per core), same wrk load.
#
#   benches/session-compare.sh [-c CONNS] [-t THREADS] [-d SECONDS] [-r ROUNDS] [--postern BIN] [--keep]
#
# Both are up at once on loopback TCP and measured in turn, ROUNDS times (default 3) D seconds
# each, so that the shared machine's speed drifting weighs on both alike: the rate is the
# rounds' mean, p50/p99 their medians. Postern: embedded
# defaults (SQLite store in a temporary directory, log level warn), one user provisioned, one
# session issued, then wrk with `Authorization: Bearer <token>` on every request; every
# answer must be 200 (wrk's "Non-2xx" count must be absent). Prints requests/s and latency of
# both and their ratio. Needs wrk and nginx (scripts/apt-packages.txt). Connections default to
# 16: Postern's HTTP listener takes at most `max-connections-per-address` (20) from one address,
# loopback included, and closes the rest (wrk then counts socket errors, which fail the run).
# Build first:  cargo build --release -p postern
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=benches/lib.sh
. "$HERE/lib.sh"

C=16 T=2 D=10 R=3 KEEP=""
POSTERN_BIN=$ROOT/target/release/postern
while [ $# -gt 0 ]; do
    case $1 in
        -c) C=$2; shift 2 ;;
        -t) T=$2; shift 2 ;;
        -d) D=$2; shift 2 ;;
        -r) R=$2; shift 2 ;;
        --postern) POSTERN_BIN=$(realpath "$2"); shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
[ -x "$POSTERN_BIN" ] || die "$POSTERN_BIN missing: cargo build --release -p postern"
need_pkg wrk nginx-core curl
WORK=$(mktemp -d /tmp/postern-session-bench.XXXXXX)
chmod 755 "$WORK"
trap cleanup EXIT
trap 'exit 130' INT TERM

# wrk_run NAME URL [HEADER] — prints "req/s p50_ms p99_ms"; fails on any non-2xx answer.
wrk_run() {
    local name=$1 url=$2 header=${3:-} out
    local args=(-t "$T" -c "$C" -d "${D}s" --latency)
    [ -n "$header" ] && args+=(-H "$header")
    out=$(wrk "${args[@]}" "$url")
    printf '%s\n' "$out" >> "$WORK/wrk-$name.txt"
    if grep -q 'Non-2xx' <<< "$out"; then die "$name: non-2xx answers: $out"; fi
    if grep -q 'Socket errors' <<< "$out"; then die "$name: socket errors: $out"; fi
    local rps p50 p99
    rps=$(awk '/^Requests\/sec/ { print $2 }' <<< "$out")
    p50=$(awk '$1 == "50%" { print $2 }' <<< "$out")
    p99=$(awk '$1 == "99%" { print $2 }' <<< "$out")
    log "$name: $rps req/s, p50 $p50, p99 $p99"
    printf '%s %s %s\n' "$rps" "$(ms "$p50")" "$(ms "$p99")"
}

# ms TIME — wrk's latency (123.00us, 1.23ms, 1.23s) in milliseconds.
ms() {
    awk -v t="$1" 'BEGIN {
        v = t + 0
        if (t ~ /us$/) v /= 1000; else if (t ~ /ms$/) v = v; else if (t ~ /s$/) v *= 1000
        printf "%.3f", v
    }'
}

# nginx: fixed 200, one worker per core, no logging.
NGINX_PORT=$(free_port)
mkdir -p "$WORK/nginx"
cat > "$WORK/nginx/nginx.conf" <<EOF
worker_processes $(nproc);
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
daemon off;
events { worker_connections 4096; }
http {
    access_log off;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / { return 200 "ok"; }
    }
}
EOF
nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" > "$WORK/nginx/stdout.log" 2>&1 &
PIDS+=("$!")
NGINX_PID=$!
wait_for 10 "nginx (see $WORK/nginx/error.log)" curl -sf "http://127.0.0.1:$NGINX_PORT/"

# Postern: one user, one session.
cat > "$WORK/provision.toml" <<'EOF'
[[account]]
name = "bench"
password = "bench-session-pw"
roles = "user"
EOF
start_postern "" "$WORK/provision.toml"
TOKEN=$(curl -sf -X POST "http://$POSTERN_HTTP/auth/login" -H 'Content-Type: application/json' \
    -d '{"username":"bench","password":"bench-session-pw"}' | sed 's/.*"token":"\([^"]*\)".*/\1/')
[ -n "$TOKEN" ] || die "no session token from Postern (see $WORK/postern/stderr.log)"
curl -sf "http://$POSTERN_HTTP/auth/session" -H "Authorization: Bearer $TOKEN" > /dev/null \
    || die "GET /auth/session refused the token"

# Warm-up, then the rounds.
wrk -t "$T" -c "$C" -d 1s "http://127.0.0.1:$NGINX_PORT/" > /dev/null
wrk -t "$T" -c "$C" -d 1s -H "Authorization: Bearer $TOKEN" "http://$POSTERN_HTTP/auth/session" > /dev/null
N_ALL=() P_ALL=()
for ((r = 1; r <= R; r++)); do
    N_ALL+=("$(wrk_run nginx "http://127.0.0.1:$NGINX_PORT/")")
    P_ALL+=("$(wrk_run postern "http://$POSTERN_HTTP/auth/session" "Authorization: Bearer $TOKEN")")
done
curl -s "http://$POSTERN_HTTP/metrics" | grep '^postern_store_cache_requests_total{record="session"' >&2 || true
stop_postern
stop_pid "$NGINX_PID"

# summary ROUND_LINE... — "mean_req/s median_p50_ms median_p99_ms" of "req/s p50 p99" lines.
summary() {
    local rps=() p50=() p99=() line
    for line in "$@"; do
        # shellcheck disable=SC2086
        set -- $line
        rps+=("$1") p50+=("$2") p99+=("$3")
    done
    printf '%s %s %s\n' "$(printf '%s\n' "${rps[@]}" | awk '{ s += $1 } END { printf "%.2f", s / NR }')" \
        "$(median "${p50[@]}")" "$(median "${p99[@]}")"
}
read -r N_RPS N_P50 N_P99 < <(summary "${N_ALL[@]}")
read -r P_RPS P_P50 P_P99 < <(summary "${P_ALL[@]}")

printf '\n%s cores, wrk -t %s -c %s, %ss per run, %s rounds in turn\n' "$(nproc)" "$T" "$C" "$D" "$R"
printf '%-26s %10s %9s %9s\n' server req/s p50_ms p99_ms
printf '%-26s %10s %9s %9s\n' "nginx return 200" "$N_RPS" "$N_P50" "$N_P99"
printf '%-26s %10s %9s %9s\n' "postern GET /auth/session" "$P_RPS" "$P_P50" "$P_P99"
awk -v p="$P_RPS" -v n="$N_RPS" 'BEGIN { printf "postern / nginx = %.2f\n", p / n }'
