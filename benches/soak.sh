#!/usr/bin/env bash
# Soak test: mixed good, bad and abusive load on every front-end for a while, with the LDAP
# directory stopped and started midway; then checks that every good login was answered and
# that the daemon is back to its size once the load stops.
#
#   benches/soak.sh [-d SECONDS] [--postern BIN] [--rss-tolerance MIB] [--keep]
#
# Options:
#   -d SECONDS        duration of the load (default 600, at least 60)
#   --postern BIN     the postern binary (default target/release/postern; postern-bench beside it)
#   --rss-tolerance M MiB the resident size may grow between the two idle samples (default 20)
#   --keep            keep the work directory (configs, logs, load results) and print its path
#
# Everything runs privately in a temporary directory: Postern (SQLite store, HTTP on loopback,
# dovecot-auth and saslauthd on unix sockets, chain ["internal", "corp"]) and a slapd holding
# the LDAP users. Users user0001-0010 are internal, user0011-0014 in LDAP, all SHA-512-crypt.
# Load, all at once:
#   good  dovecot-auth (postern-bench, internal users, rip 198.51.100.1); dovecot-auth for the
#         LDAP users (rip 198.51.100.2); HTTP POST /auth/login + GET/DELETE /auth/session
#         (from 127.0.0.2); saslauthd
#   bad   wrong passwords for user0001 over dovecot-auth (rip 192.0.2.66) and for user0009 over
#         HTTP (from 127.0.0.4): the throttle locks the attacker, the owners keep logging in
#   abuse AUTH+CANCEL bursts (rip 192.0.2.67), clients that send credentials and close at once
#         (dovecot-auth and HTTP), two HTTP clients dripping a request head a byte a second
# slapd is stopped for 30 s in the middle of the run. Samples of the daemon (RSS, descriptors,
# threads, /metrics connections and hash queue) after a 10 s warm-up and 15 s idle, every 30 s,
# and after the load and 15 s idle. Exit 1 when a check fails:
#   - every good login of an internal user answered OK (dovecot-auth, HTTP, saslauthd);
#   - LDAP logins only OK or temporary failures (never "wrong password"), some temporary
#     failures seen during the outage, all OK again after it;
#   - no wrong password accepted;
#   - RSS at the end within the tolerance of the first idle sample; descriptors within 8,
#     threads within 4, postern_connections_active equal; the daemon alive, no panic logged.
# Build first:  cargo build --release -p postern
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=benches/lib.sh
. "$HERE/lib.sh"

D=600 KEEP="" RSS_TOL=20 FD_TOL=8 THREAD_TOL=4 WARM=10 IDLE=15
POSTERN_BIN=$ROOT/target/release/postern
while [ $# -gt 0 ]; do
    case $1 in
        -d) D=$2; shift 2 ;;
        --postern) POSTERN_BIN=$(realpath "$2"); shift 2 ;;
        --rss-tolerance) RSS_TOL=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
[ "$D" -ge 60 ] 2>/dev/null || die "-d takes a number of seconds, at least 60"
BENCH_BIN=$(dirname "$POSTERN_BIN")/postern-bench
[ -x "$POSTERN_BIN" ] && [ -x "$BENCH_BIN" ] \
    || die "$POSTERN_BIN or postern-bench missing: cargo build --release -p postern"
LOAD=$HERE/soak-load.py

need_pkg slapd ldap-utils whois curl python3

WORK=$(mktemp -d /tmp/postern-soak.XXXXXX)
chmod 755 "$WORK"
trap cleanup EXIT
trap 'exit 130' INT TERM

log "hashing the passwords of 14 users"
make_hashes sha512-crypt 14 "$WORK/hashes.tsv"
head -10 "$WORK/hashes.tsv" > "$WORK/internal-hashes.tsv"
tail -4 "$WORK/hashes.tsv" > "$WORK/ldap-hashes.tsv"
# name<TAB>password files for the load tools.
users_file() { for i in "$@"; do printf '%s\t%s\n' "$(user_name "$i")" "$(user_password "$i")"; done; }
users_file 1 2 3 4 5 > "$WORK/dovecot-users"
users_file 6 7 8 > "$WORK/sasl-users"
users_file 9 10 > "$WORK/http-users"
users_file 11 12 13 14 > "$WORK/ldap-users"

start_slapd "$WORK/ldap-hashes.tsv"
SLAPD_PID=${PIDS[-1]}
# restart_slapd — the same slapd on the same port and database.
restart_slapd() {
    slapd -d 0 -f "$WORK/slapd/slapd.conf" -h "$LDAP_URL/" >> "$WORK/slapd/slapd.log" 2>&1 &
    PIDS+=("$!")
    SLAPD_PID=$!
    wait_for 20 "slapd again (see $WORK/slapd/slapd.log)" \
        ldapsearch -x -H "$LDAP_URL" -D "$LDAP_ADMIN" -w "$LDAP_ADMIN_PW" -b "$LDAP_BASE" -s base
}

while IFS=$'\t' read -r name hash; do
    printf '[[account]]\nname = "%s"\nsecret = "%s"\nroles = "user"\n\n' "$name" "$hash"
done < "$WORK/internal-hashes.tsv" > "$WORK/provision.toml"
SASL_SOCKET=$WORK/postern/saslauthd
start_postern "[[listener]]
protocol = \"saslauthd\"
bind = \"unix:$SASL_SOCKET\"
mode = \"0666\"

[authentication]
directories = [\"internal\", \"corp\"]

$(ldap_directory bind 'attributes = { name = "uid", email = "mail" }
pool-size = 4')" "$WORK/provision.toml"
log "postern pid $POSTERN_PID, http $POSTERN_HTTP, slapd $LDAP_URL, work $WORK"

# ---------------------------------------------------------------------------------------------
# Load: every kind in the background for SECS seconds, results in $WORK/load/TAG-KIND.{out,err}.

mkdir -p "$WORK/load"
declare -A LOAD_PIDS=()
start_loads() {
    local secs=$1 tag=$2 limit=$(($1 + 60)) name
    local -A cmds=(
        [dovecot]="$BENCH_BIN --connect unix:$POSTERN_SOCKET --user-file $WORK/dovecot-users --rip 198.51.100.1 -c 2 -n 3 -d $secs"
        [ldap]="$BENCH_BIN --connect unix:$POSTERN_SOCKET --user-file $WORK/ldap-users --rip 198.51.100.2 --allow-temp -c 1 -n 2 -d $secs"
        [http]="python3 $LOAD http-good --http $POSTERN_HTTP --source 127.0.0.2 --user-file $WORK/http-users --threads 2 --duration $secs"
        [sasl]="python3 $LOAD sasl-good --socket $SASL_SOCKET --user-file $WORK/sasl-users --threads 2 --duration $secs"
        [dovecot-bad]="python3 $LOAD dovecot-bad --socket $POSTERN_SOCKET --user $(user_name 1) --rip 192.0.2.66 --in-flight 4 --pause 0.2 --duration $secs"
        [http-bad]="python3 $LOAD http-bad --http $POSTERN_HTTP --source 127.0.0.4 --user $(user_name 9) --pause 0.2 --duration $secs"
        [cancel]="python3 $LOAD cancel --socket $POSTERN_SOCKET --user-file $WORK/dovecot-users --rip 192.0.2.67 --burst 20 --pause 0.2 --duration $secs"
        [hangup]="python3 $LOAD hangup --socket $POSTERN_SOCKET --http $POSTERN_HTTP --source 127.0.0.5 --user $(user_name 2) --password $(user_password 2) --rip 192.0.2.68 --pause 0.1 --duration $secs"
        [drip]="python3 $LOAD drip --http $POSTERN_HTTP --source 127.0.0.3 --threads 2 --duration $secs"
    )
    for name in "${!cmds[@]}"; do
        # shellcheck disable=SC2086
        RUST_BACKTRACE=0 timeout "$limit" ${cmds[$name]} \
            > "$WORK/load/$tag-$name.out" 2> "$WORK/load/$tag-$name.err" &
        PIDS+=("$!")
        LOAD_PIDS[$name]=$!
    done
}
# wait_loads TAG — waits for every load, writes each exit status to TAG-KIND.rc.
wait_loads() {
    local tag=$1 name rc
    for name in "${!LOAD_PIDS[@]}"; do
        rc=0
        wait "${LOAD_PIDS[$name]}" || rc=$?
        echo "$rc" > "$WORK/load/$tag-$name.rc"
    done
    LOAD_PIDS=()
}
result() { tail -1 "$WORK/load/$1.out" 2>/dev/null || true; }

# ---------------------------------------------------------------------------------------------
# Samples of the daemon: "label second rss_kib fds threads connections queue rejected".

SAMPLES=()
T0=$SECONDS
sample() {
    local p=/proc/$POSTERN_PID m rss fds threads conns queue rejected
    [ -d "$p" ] || die "postern (pid $POSTERN_PID) is gone: see $WORK/postern/stderr.log"
    rss=$(awk '/^VmRSS:/ { print $2 }' "$p/status")
    threads=$(awk '/^Threads:/ { print $2 }' "$p/status")
    fds=$(find "$p/fd" -mindepth 1 -maxdepth 1 | wc -l)
    m=$(curl -s --max-time 10 "http://$POSTERN_HTTP/metrics" || true)
    conns=$(printf '%s\n' "$m" | awk '/^postern_connections_active[{ ]/ { s += $NF } END { print s + 0 }')
    queue=$(printf '%s\n' "$m" | awk '/^postern_hash_queue_depth[{ ]/ { s += $NF } END { print s + 0 }')
    rejected=$(printf '%s\n' "$m" | awk '/^postern_password_hash_rejected_total[{ ]/ { s += $NF } END { print s + 0 }')
    SAMPLES+=("$1 $((SECONDS - T0)) $rss $fds $threads $conns $queue $rejected")
    log "sample $1: rss=${rss}KiB fds=$fds threads=$threads connections=$conns queue=$queue rejected=$rejected"
}

log "warm-up: ${WARM}s of every load (first logins record the LDAP users), then ${IDLE}s idle"
start_loads "$WARM" warm
wait_loads warm
sleep "$IDLE"
T0=$SECONDS
sample start

OUT_START=$((D / 2 - 15)) OUT_END=$((D / 2 + 15))
log "load for ${D}s; slapd stopped from ${OUT_START}s to ${OUT_END}s"
start_loads "$D" soak
next=30 stopped="" restarted=""
while [ $((SECONDS - T0)) -lt "$D" ]; do
    t=$((SECONDS - T0))
    if [ -z "$stopped" ] && [ "$t" -ge "$OUT_START" ]; then
        log "stopping slapd at ${t}s"
        stop_pid "$SLAPD_PID"
        stopped=1
    fi
    if [ -z "$restarted" ] && [ "$t" -ge "$OUT_END" ]; then
        log "starting slapd at ${t}s"
        restart_slapd
        restarted=1
    fi
    if [ "$t" -ge "$next" ]; then
        sample load
        next=$((next + 30))
    fi
    sleep 1
done
wait_loads soak
log "load over; ${IDLE}s idle"
sleep "$IDLE"
sample end

# After the outage LDAP users log in again.
RECOVERY=$(RUST_BACKTRACE=0 "$BENCH_BIN" --connect "unix:$POSTERN_SOCKET" --user-file "$WORK/ldap-users" \
    --rip 198.51.100.2 -c 1 -n 2 -d 3 2>&1 | tail -1) && RECOVERED=1 || RECOVERED=""

# ---------------------------------------------------------------------------------------------
# Report.

FAILED=()
check() { local what=$1; shift; if "$@"; then printf 'ok    %s\n' "$what"; else printf 'FAIL  %s\n' "$what"; FAILED+=("$what"); fi; }
num() { local v; v=$(field "$1" "$2"); printf '%s' "${v:-0}"; }

printf '\n%s cores, %ss of load (%s), slapd down %s-%ss\n' "$(nproc)" "$D" "$(uname -m)" "$OUT_START" "$OUT_END"
printf '%-6s %6s %9s %5s %8s %12s %6s %9s\n' sample second rss_kib fds threads connections queue rejected
for s in "${SAMPLES[@]}"; do
    # shellcheck disable=SC2086
    printf '%-6s %6s %9s %5s %8s %12s %6s %9s\n' $s
done
printf '\n'
for name in dovecot ldap http sasl dovecot-bad http-bad cancel hangup drip; do
    printf '%-12s rc=%s %s\n' "$name" "$(cat "$WORK/load/soak-$name.rc")" "$(result "soak-$name")"
done
printf '%-12s %s\n\n' recovery "$RECOVERY"

DOV=$(result soak-dovecot) LDAP=$(result soak-ldap) HTTP=$(result soak-http) SASL=$(result soak-sasl)
DBAD=$(result soak-dovecot-bad) HBAD=$(result soak-http-bad)
# shellcheck disable=SC2046
set -- $(printf '%s\n' "${SAMPLES[0]}") && S_RSS=$3 S_FD=$4 S_THR=$5 S_CONN=$6
# shellcheck disable=SC2046
set -- $(printf '%s\n' "${SAMPLES[-1]}") && E_RSS=$3 E_FD=$4 E_THR=$5 E_CONN=$6
within() { local d=$(($1 - $2)); [ "${d#-}" -le "$3" ]; }

check "dovecot-auth internal users: all OK (ok=$(num "$DOV" ok) fail=$(num "$DOV" fail))" \
    test "$(cat "$WORK/load/soak-dovecot.rc")" = 0 -a "$(num "$DOV" ok)" -gt 0
check "HTTP logins: all 200 (ok=$(num "$HTTP" ok) fail=$(num "$HTTP" fail) temp=$(num "$HTTP" temp) error=$(num "$HTTP" error))" \
    test "$(num "$HTTP" ok)" -gt 0 -a "$(num "$HTTP" ok)" = "$(num "$HTTP" session_ok)" \
        -a "$(num "$HTTP" ok)" = "$(num "$HTTP" session_logout_ok)" \
        -a "$(printf '%s\n' "$HTTP" | tr ' ' '\n' | grep -cv -e '^kind=' -e '^ok=' -e '^session_ok=' -e '^session_logout_ok=' -e '_ms=' -e '=0$')" = 0
check "saslauthd: all OK (ok=$(num "$SASL" ok) fail=$(num "$SASL" fail) error=$(num "$SASL" error))" \
    test "$(num "$SASL" ok)" -gt 0 -a "$(num "$SASL" fail)" = 0 -a "$(num "$SASL" error)" = 0
check "LDAP users: OK or temporary only (ok=$(num "$LDAP" ok) temp=$(num "$LDAP" temp) fail=$(num "$LDAP" fail))" \
    test "$(cat "$WORK/load/soak-ldap.rc")" = 0 -a "$(num "$LDAP" fail)" = 0
check "LDAP outage seen as temporary failures" test "$(num "$LDAP" temp)" -gt 0
check "LDAP users log in again after the outage" test -n "$RECOVERED"
check "no wrong password accepted (dovecot-auth refused=$(num "$DBAD" refused) limited=$(num "$DBAD" limited); HTTP 401=$(num "$HBAD" refused) 429=$(num "$HBAD" limited))" \
    test "$(num "$DBAD" accepted)" = 0 -a "$(num "$HBAD" accepted)" = 0 \
        -a "$(num "$(result warm-dovecot-bad)" accepted)" = 0 -a "$(num "$(result warm-http-bad)" accepted)" = 0
check "RSS ${S_RSS} -> ${E_RSS} KiB, within +${RSS_TOL} MiB" test $((E_RSS - S_RSS)) -le $((RSS_TOL * 1024))
check "descriptors $S_FD -> $E_FD, within $FD_TOL" within "$E_FD" "$S_FD" "$FD_TOL"
check "threads $S_THR -> $E_THR, within $THREAD_TOL" within "$E_THR" "$S_THR" "$THREAD_TOL"
check "postern_connections_active $S_CONN -> $E_CONN" test "$E_CONN" = "$S_CONN"
check "postern alive, no panic logged" \
    eval "kill -0 $POSTERN_PID && ! grep -qi panic '$WORK/postern/stderr.log'"
printf '\np99 of good logins: dovecot-auth %s ms (p50 %s), HTTP %s ms (p50 %s), saslauthd %s ms (p50 %s), LDAP %s ms\n' \
    "$(num "$DOV" p99_ms)" "$(num "$DOV" p50_ms)" "$(num "$HTTP" p99_ms)" "$(num "$HTTP" p50_ms)" \
    "$(num "$SASL" p99_ms)" "$(num "$SASL" p50_ms)" "$(num "$LDAP" p99_ms)"
if [ ${#FAILED[@]} -gt 0 ]; then
    KEEP=1
    printf '%s check(s) failed; logs in %s\n' "${#FAILED[@]}" "$WORK"
    exit 1
fi
printf 'all checks passed\n'
