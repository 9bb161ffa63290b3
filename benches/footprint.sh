#!/usr/bin/env bash
# What Postern holds and how it scales, the figures issue 16 names beside the login rates:
#
#   benches/footprint.sh [-k ACCOUNTS] [-i IDLE] [-d SECONDS] [-r ROUNDS] [--postern BIN] [--keep] PART...
#
# PART:
#   start     start-to-ready time and idle RSS of the embedded default's shape (SQLite store,
#             HTTP and dovecot-auth on loopback), five rounds: a first start in a fresh
#             directory (database created, admin password hashed) and a second start on it;
#             time from the exec of `postern serve` to its sd_notify READY=1, RSS 2 s after it and 2 s after one HTTP request
#   idle      IDLE (default 10000) dovecot-auth connections held open after the handshake:
#             Postern's RSS with them, and {PLAIN} logins on other connections with them
#             against the same without them, in turn ROUNDS times (they come and go each round)
#   accounts  ACCOUNTS (default 100000) accounts: `postern apply` of all of them (timed), then
#             login p50/p99 spread over all of them against the same over the first 100, the
#             two measured in turn ROUNDS (default 3) times
#   ldap      ACCOUNTS entries in a private slapd (slapadd), Postern's ldap directory with
#             auth-method lookup and cleartext userPassword: login p50/p99 over all of them
#             against the same over the first 100
#   all       every part
#
# Secrets are {PLAIN} so that what is measured is everything but the hash. Run as root (it
# raises the descriptor limit for the idle part). Build first:  cargo build --release -p postern
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=benches/lib.sh
. "$HERE/lib.sh"

K=100000 IDLE=10000 D=10 ROUNDS=3 KEEP=""
POSTERN_BIN=$ROOT/target/release/postern
PARTS=()
while [ $# -gt 0 ]; do
    case $1 in
        -k) K=$2; shift 2 ;;
        -i) IDLE=$2; shift 2 ;;
        -d) D=$2; shift 2 ;;
        -r) ROUNDS=$2; shift 2 ;;
        --postern) POSTERN_BIN=$(realpath "$2"); shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        all) PARTS+=(start idle accounts ldap); shift ;;
        start|idle|accounts|ldap) PARTS+=("$1"); shift ;;
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

# {PLAIN} users user0001…userN, each with an address (as a mail server's are): a provisioning
# file and a postern-bench user file.
plain_users() {
    local n=$1 provision=$2 users=$3
    python3 - "$n" "$provision" "$users" <<'PY'
import sys
n, provision, users = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(provision, "w") as p, open(users, "w") as u:
    for i in range(1, n + 1):
        name, pw = f"user{i:04d}", f"pw-{i}-bench"
        p.write(f'[[account]]\nname = "{name}"\nsecret = "{{PLAIN}}{pw}"\n'
                f'emails = ["{name}@bench.test"]\nroles = "user"\n\n')
        u.write(f"{name}\t{pw}\n")
PY
}

# ready_after — one `postern serve` on $WORK/postern/postern.toml with NOTIFY_SOCKET set;
# prints "MS RSS_KIB/ANON_KIB": milliseconds from its exec to its READY=1 (sent once every
# listener is bound and the store is open), and its RSS 2 s after that with the anonymous part
# of it (the rest is the binary's and libraries' pages, shared and reclaimable); then stops it.
ready_after() {
    rm -f "$WORK/notify.sock"
    python3 - "$POSTERN_BIN" "$WORK/postern" "$WORK/notify.sock" "bench-admin-$$" <<'PY'
import os, socket, subprocess, sys, time
binary, d, path, admin = sys.argv[1:5]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(60)
env = dict(os.environ, NOTIFY_SOCKET=path, POSTERN_ADMIN_PASSWORD=admin)
with open(f"{d}/stdout.log", "ab") as out, open(f"{d}/stderr.log", "ab") as err:
    t0 = time.monotonic()
    p = subprocess.Popen([binary, "serve", "--config", f"{d}/postern.toml"],
                         stdout=out, stderr=err, env=env)
    try:
        while b"READY=1" not in s.recv(4096):
            pass
        ms = (time.monotonic() - t0) * 1000
        time.sleep(2)
        def status():
            with open(f"/proc/{p.pid}/status") as f:
                return dict(l.split(":", 1) for l in f)
        rss, anon = (status()[k].split()[0] for k in ("VmRSS", "RssAnon"))
        # Then one HTTP request (the router is built by the first connection), and the RSS
        # 2 s after it.
        import re, urllib.request
        http = re.search(r'protocol = "http"\nbind = "([^"]+)"', open(f"{d}/postern.toml").read())
        urllib.request.urlopen(f"http://{http.group(1)}/healthz", timeout=10).read()
        time.sleep(2)
        served = status()["VmRSS"].split()[0]
        print(f"{ms:.0f} {rss}/{anon}/{served}")
    finally:
        p.terminate()
        p.wait(timeout=20)
PY
}

part_start() {
    local i r first=() second=() rss_first=() rss_second=()
    for i in 1 2 3 4 5; do
        rm -rf "$WORK/postern"
        # Writes and checks the configuration; this start is not measured.
        start_postern ""
        stop_postern
        rm -rf "$WORK/postern/state"
        mkdir -p "$WORK/postern/state"
        # First start: creates the database, runs the migrations, hashes the admin password.
        r=$(ready_after) || die "postern did not become ready (see $WORK/postern/stderr.log)"
        first+=("${r% *}")
        rss_first+=("${r#* }")
        # Second start: the same directory, already initialised.
        r=$(ready_after) || die "postern did not become ready (see $WORK/postern/stderr.log)"
        second+=("${r% *}")
        rss_second+=("${r#* }")
    done
    log "exec-to-READY ms, first start: ${first[*]}; second start: ${second[*]}"
    log "idle RSS/anonymous KiB 2 s after READY, then RSS 2 s after one HTTP request; first start: ${rss_first[*]}; second start: ${rss_second[*]}"
    RESULTS+=("first_start_to_ready_ms ${first[*]}")
    RESULTS+=("second_start_to_ready_ms ${second[*]}")
    RESULTS+=("idle_rss/anon/after_http_kib_first_start ${rss_first[*]}")
    RESULTS+=("idle_rss/anon/after_http_kib_second_start ${rss_second[*]}")
}

# idle_holder N READY — holds N dovecot-auth connections open after the handshake (VERSION,
# CPID) and touches READY when all of them have their DONE; runs until killed.
idle_holder() {
    # exec: the background job is the holder itself, so stopping its pid closes them.
    exec python3 - "$POSTERN_SOCKET" "$1" "$2" <<'PY'
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
}

part_idle() {
    ulimit -n $((IDLE + 4096))
    plain_users 10 "$WORK/idle-provision.toml" "$WORK/idle-users.tsv"
    rm -rf "$WORK/postern"
    # max-connections (default 1024) is the listener's bound, raised for the bench; the
    # connections come over a unix socket, so no per-address limit applies.
    POSTERN_DOVECOT_LISTENER_KEYS="max-connections = $((IDLE + 100))" \
        start_postern "" "$WORK/idle-provision.toml"
    local bench_args=(--connect "unix:$POSTERN_SOCKET" --user-file "$WORK/idle-users.tsv" -c 4 -n 8)
    "$BENCH_BIN" "${bench_args[@]}" -d 1 > /dev/null
    # Logins without the idle connections and with them, in turn ROUNDS times: the machine's
    # drift over a minute is as large as the difference looked for, so one run of each after
    # the other (sessions 6 and 7) could not tell them apart.
    local without=() with=() rss0 rss1="" r holder
    rss0=$(rss_kib "$POSTERN_PID")
    for ((r = 1; r <= ROUNDS; r++)); do
        without+=("$("$BENCH_BIN" "${bench_args[@]}" -d "$D" | tail -1)")
        rm -f "$WORK/idle.ready"
        idle_holder "$IDLE" "$WORK/idle.ready" &
        holder=$!
        PIDS+=("$holder")
        wait_for 120 "$IDLE idle connections" test -e "$WORK/idle.ready"
        sleep 2
        [ -n "$rss1" ] || rss1=$(rss_kib "$POSTERN_PID")
        with+=("$("$BENCH_BIN" "${bench_args[@]}" -d "$D" | tail -1)")
        stop_pid "$holder"
        sleep 2
    done
    local w wo
    wo=$(over_rounds "${without[@]}")
    w=$(over_rounds "${with[@]}")
    log "idle: RSS $rss0 -> $rss1 KiB with $IDLE connections; logins without them: ${without[*]}; with them: ${with[*]}"
    RESULTS+=("idle_connections $IDLE rss_kib_before=$rss0 rss_kib_with=$rss1")
    RESULTS+=("logins_without_idle $wo rounds=$ROUNDS")
    RESULTS+=("logins_with_idle $w rounds=$ROUNDS ratio=$(awk -v a="$(field "$w" req_per_s)" -v b="$(field "$wo" req_per_s)" 'BEGIN { printf "%.3f", a / b }')")
    stop_postern
}

part_accounts() {
    [ -f "$WORK/users-$K.tsv" ] || plain_users "$K" "$WORK/provision-$K.toml" "$WORK/users-$K.tsv"
    rm -rf "$WORK/postern"
    # Configuration and the admin account only (the daemon is started again after the apply).
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
    # The default record cache (16,384 accounts a generation): most logins over K read the
    # store.
    start_postern ""
    login_spread logins_default_cache
    stop_postern
    # The record cache sized to the accounts (`[store] cache-size`, as Dovecot's
    # auth_cache_size is sized): after one pass every login is served from memory.
    POSTERN_STORE_KEYS="cache-size = $((K + K / 4))" start_postern ""
    first_pass sized_cache
    login_spread logins_sized_cache
    local rss
    rss=$(rss_kib "$POSTERN_PID")
    log "RSS with $K accounts in the record cache: $rss KiB"
    RESULTS+=("rss_kib_with_${K}_cached $rss")
    stop_postern
}

# first_pass NAME — one pass of logins over every one of the K users (what a first login costs
# is not what the comparison is about), recorded as NAME_first_pass.
first_pass() {
    local name=$1 secs=$((K / 5000 + 5)) out n
    while :; do
        out=$("$BENCH_BIN" --connect "unix:$POSTERN_SOCKET" --user-file "$WORK/users-$K.tsv" -c 4 -n 8 -d "$secs" | tail -1)
        n=$(field "$out" requests)
        [ "$n" -ge "$K" ] && break
        secs=$((secs * 2))
        [ "$secs" -le 640 ] || die "the first pass over $K users did not finish"
    done
    log "$name: first pass over $K users: $out"
    RESULTS+=("${name}_first_pass req_per_s=$(field "$out" req_per_s) p50_ms=$(field "$out" p50_ms) p99_ms=$(field "$out" p99_ms)")
}

# login_spread NAME — login rate and p50/p99 over the first 100 of users-$K.tsv and over all
# K, on the running Postern, measured in turn ROUNDS times (D seconds each) so that a drift
# of the shared machine's speed weighs on both alike; the rate is over all rounds, p50 and
# p99 the rounds' medians. Recorded as NAME_over_100 and NAME_over_K.
login_spread() {
    local name=$1 r out few=() many=()
    head -100 "$WORK/users-$K.tsv" > "$WORK/users-100.tsv"
    "$BENCH_BIN" --connect "unix:$POSTERN_SOCKET" --user-file "$WORK/users-100.tsv" -c 4 -n 8 -d 1 > /dev/null
    for ((r = 1; r <= ROUNDS; r++)); do
        out=$("$BENCH_BIN" --connect "unix:$POSTERN_SOCKET" --user-file "$WORK/users-100.tsv" -c 4 -n 8 -d "$D" | tail -1)
        log "$name: round $r, logins over 100 accounts: $out"
        few+=("$out")
        out=$("$BENCH_BIN" --connect "unix:$POSTERN_SOCKET" --user-file "$WORK/users-$K.tsv" -c 4 -n 8 -d "$D" | tail -1)
        log "$name: round $r, logins over $K accounts: $out"
        many+=("$out")
    done
    RESULTS+=("${name}_over_100 $(over_rounds "${few[@]}") rounds=$ROUNDS")
    RESULTS+=("${name}_over_$K $(over_rounds "${many[@]}") rounds=$ROUNDS")
}

part_ldap() {
    need_pkg slapd ldap-utils
    [ -f "$WORK/users-$K.tsv" ] || plain_users "$K" "$WORK/provision-$K.toml" "$WORK/users-$K.tsv"
    # Cleartext userPassword (slapd's own form; Postern reads it with default-scheme PLAIN):
    # what is measured is the search, not a hash.
    awk -F '\t' '{ print $1 "\t{PLAIN}" $2 }' "$WORK/users-$K.tsv" > "$WORK/ldap-secrets.tsv"
    local t0 t1
    t0=$(date +%s%N)
    start_slapd "$WORK/ldap-secrets.tsv"
    t1=$(date +%s%N)
    log "slapd with $K entries loaded and up in $(( (t1 - t0) / 1000000 )) ms"
    rm -rf "$WORK/postern"
    # Only the LDAP directory in the chain (as in dovecot-compare.sh's ldap modes).
    start_postern "[authentication]
directories = [\"corp\"]

$(ldap_directory lookup 'default-scheme = "PLAIN"
attributes = { name = "uid", email = "mail", secret = "userPassword" }
pool-size = 8')"
    # Each user's first login records it in the store (a write); the comparison is of logins
    # after that.
    first_pass ldap
    login_spread ldap_logins
    stop_postern
}

for part in "${PARTS[@]}"; do
    "part_$part"
done
printf '\n%s cores, %s\n' "$(nproc)" "$(uname -m)"
for r in "${RESULTS[@]}"; do printf '%s\n' "$r"; done
