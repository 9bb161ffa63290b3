#!/usr/bin/env bash
# What Postern holds and how it scales, the figures issue 16 names beside the login rates:
#
#   benches/footprint.sh [-k ACCOUNTS] [-i IDLE] [-d SECONDS] [--postern BIN] [--keep] PART...
#
# PART:
#   start     start-to-ready time and idle RSS of the embedded default's shape (SQLite store,
#             HTTP and dovecot-auth on loopback), five starts, each in a fresh directory
#   idle      IDLE (default 10000) dovecot-auth connections held open after the handshake:
#             Postern's RSS with them, and {PLAIN} logins on other connections meanwhile
#             against the same logins without them
#   accounts  ACCOUNTS (default 100000) accounts: `postern apply` of all of them (timed), then
#             login p50/p99 spread over all of them against the same over the first 100
#   all       every part
#
# Secrets are {PLAIN} so that what is measured is everything but the hash. Run as root (it
# raises the descriptor limit for the idle part). Build first:  cargo build --release -p postern
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=benches/lib.sh
. "$HERE/lib.sh"

K=100000 IDLE=10000 D=10 KEEP=""
POSTERN_BIN=$ROOT/target/release/postern
PARTS=()
while [ $# -gt 0 ]; do
    case $1 in
        -k) K=$2; shift 2 ;;
        -i) IDLE=$2; shift 2 ;;
        -d) D=$2; shift 2 ;;
        --postern) POSTERN_BIN=$(realpath "$2"); shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        all) PARTS+=(start idle accounts); shift ;;
        start|idle|accounts) PARTS+=("$1"); shift ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
[ ${#PARTS[@]} -gt 0 ] || die "no PART given (see --help)"
BENCH_BIN=$(dirname "$POSTERN_BIN")/postern-bench
[ -x "$POSTERN_BIN" ] && [ -x "$BENCH_BIN" ] || die "build first: cargo build --release -p postern"
need_pkg python3 curl
WORK=$(mktemp -d /tmp/postern-footprint.XXXXXX)
chmod 755 "$WORK"
trap cleanup EXIT
trap 'exit 130' INT TERM
RESULTS=()

rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

# {PLAIN} users user0001…userN: a provisioning file and a postern-bench user file.
plain_users() {
    local n=$1 provision=$2 users=$3
    python3 - "$n" "$provision" "$users" <<'PY'
import sys
n, provision, users = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(provision, "w") as p, open(users, "w") as u:
    for i in range(1, n + 1):
        name, pw = f"user{i:04d}", f"pw-{i}-bench"
        p.write(f'[[account]]\nname = "{name}"\nsecret = "{{PLAIN}}{pw}"\nroles = "user"\n\n')
        u.write(f"{name}\t{pw}\n")
PY
}

part_start() {
    local i t0 t1 times=() rss=()
    for i in 1 2 3 4 5; do
        rm -rf "$WORK/postern"
        t0=$(date +%s%N)
        start_postern ""
        t1=$(date +%s%N)
        times+=("$(( (t1 - t0) / 1000000 ))")
        sleep 2
        rss+=("$(rss_kib "$POSTERN_PID")")
        stop_postern
    done
    log "start-to-ready ms: ${times[*]}; idle RSS KiB: ${rss[*]}"
    RESULTS+=("start-to-ready_ms ${times[*]}")
    RESULTS+=("idle_rss_kib ${rss[*]}")
}

part_idle() {
    ulimit -n $((IDLE + 4096))
    plain_users 10 "$WORK/idle-provision.toml" "$WORK/idle-users.tsv"
    rm -rf "$WORK/postern"
    start_postern "" "$WORK/idle-provision.toml"
    local bench_args=(--connect "unix:$POSTERN_SOCKET" --user-file "$WORK/idle-users.tsv" -c 4 -n 8)
    "$BENCH_BIN" "${bench_args[@]}" -d 1 > /dev/null
    local before rss0 rss1 during
    before=$("$BENCH_BIN" "${bench_args[@]}" -d "$D" | tail -1)
    rss0=$(rss_kib "$POSTERN_PID")
    # The idle clients: connect, handshake (VERSION, CPID), then hold.
    python3 - "$POSTERN_SOCKET" "$IDLE" "$WORK/idle.ready" <<'PY' &
import os, socket, sys, time
path, n, ready = sys.argv[1], int(sys.argv[2]), sys.argv[3]
conns = []
for i in range(n):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(b"VERSION\t1\t2\nCPID\t%d\n" % (100000 + i))
    conns.append(s)
for s in conns:
    s.settimeout(10)
    data = b""
    while b"DONE" not in data:
        chunk = s.recv(4096)
        if not chunk:
            sys.exit("a connection was closed")
        data += chunk
open(ready, "w").close()
time.sleep(3600)
PY
    local holder=$!
    PIDS+=("$holder")
    wait_for 120 "$IDLE idle connections" test -e "$WORK/idle.ready"
    sleep 2
    rss1=$(rss_kib "$POSTERN_PID")
    during=$("$BENCH_BIN" "${bench_args[@]}" -d "$D" | tail -1)
    log "idle: RSS $rss0 -> $rss1 KiB with $IDLE connections; logins before: $before; during: $during"
    RESULTS+=("idle_connections $IDLE rss_kib_before=$rss0 rss_kib_with=$rss1")
    RESULTS+=("logins_without req_per_s=$(field "$before" req_per_s) p99_ms=$(field "$before" p99_ms)")
    RESULTS+=("logins_with_idle req_per_s=$(field "$during" req_per_s) p99_ms=$(field "$during" p99_ms)")
    stop_pid "$holder"
    stop_postern
}

part_accounts() {
    plain_users "$K" "$WORK/provision-$K.toml" "$WORK/users-$K.tsv"
    head -100 "$WORK/users-$K.tsv" > "$WORK/users-100.tsv"
    rm -rf "$WORK/postern"
    # Configuration only (the daemon is started after the apply).
    start_postern ""
    stop_postern
    local t0 t1
    t0=$(date +%s%N)
    "$POSTERN_BIN" apply --config "$WORK/postern/postern.toml" "$WORK/provision-$K.toml" \
        > "$WORK/apply.log" 2>&1 || die "apply failed: $(tail -3 "$WORK/apply.log")"
    t1=$(date +%s%N)
    local apply_ms=$(( (t1 - t0) / 1000000 ))
    log "apply of $K accounts: ${apply_ms} ms"
    RESULTS+=("apply_${K}_accounts_ms $apply_ms")
    POSTERN_ADMIN_PASSWORD=bench-admin-$$ "$POSTERN_BIN" serve --config "$WORK/postern/postern.toml" \
        > "$WORK/postern/stdout.log" 2> "$WORK/postern/stderr.log" &
    PIDS+=("$!")
    POSTERN_PID=$!
    wait_for 60 "Postern" grep -qx ready "$WORK/postern/stdout.log"
    local few many
    "$BENCH_BIN" --connect "unix:$POSTERN_SOCKET" --user-file "$WORK/users-100.tsv" -c 4 -n 8 -d 1 > /dev/null
    few=$("$BENCH_BIN" --connect "unix:$POSTERN_SOCKET" --user-file "$WORK/users-100.tsv" -c 4 -n 8 -d "$D" | tail -1)
    many=$("$BENCH_BIN" --connect "unix:$POSTERN_SOCKET" --user-file "$WORK/users-$K.tsv" -c 4 -n 8 -d "$D" | tail -1)
    log "logins over 100 accounts: $few"
    log "logins over $K accounts: $many"
    RESULTS+=("logins_over_100 req_per_s=$(field "$few" req_per_s) p50_ms=$(field "$few" p50_ms) p99_ms=$(field "$few" p99_ms)")
    RESULTS+=("logins_over_$K req_per_s=$(field "$many" req_per_s) p50_ms=$(field "$many" p50_ms) p99_ms=$(field "$many" p99_ms)")
    stop_postern
}

for part in "${PARTS[@]}"; do
    "part_$part"
done
printf '\n%s cores, %s\n' "$(nproc)" "$(uname -m)"
for r in "${RESULTS[@]}"; do printf '%s\n' "$r"; done
