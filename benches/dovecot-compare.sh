#!/usr/bin/env bash
# Postern beside Dovecot's own auth server, same users, same hashes, same protocol.
#
#   benches/dovecot-compare.sh [options] MODE...
#
# MODE:
#   sha512-crypt  passwd-file (Dovecot) / internal store (Postern), {SHA512-CRYPT} hashes
#   argon2id      same with Postern's argon2id hashes; also the machine's hashing limit
#                 (cores / one verification) and /healthz latency during the run
#   ldap-bind     private slapd; Dovecot passdb ldap auth_bind=yes / Postern auth-method=bind
#   ldap-lookup   private slapd; Dovecot passdb ldap (userPassword compared) / auth-method=lookup
#   sql-pg        private PostgreSQL; Dovecot passdb sql (pgsql) / Postern sql directory
#   plain         passwd-file / internal store with {PLAIN} secrets: everything but the hash
#   cache-hit     repeated logins with the verification cache on: Postern's internal store of
#                 {SHA512-CRYPT} hashes with [authentication] cache-size, beside Postern's own
#                 {PLAIN} (the anchor: a hit should cost what a {PLAIN} login costs) and Dovecot
#                 passdb sql (pgsql) with auth_cache_size = 10M (its cache keeps the hash and
#                 still verifies it)
#   all           every mode above
#
# Options:
#   -k USERS      users to create (default 1000)
#   -c CONNS      connections (default 4)
#   -n INFLIGHT   requests in flight per connection (default 8)
#   -d SECONDS    duration of each measured run (default 10)
#   -r ROUNDS     sha512-crypt and plain: both servers up at once and measured in turn ROUNDS
#                 times, D seconds each (default 1: one after the other). On a shared host
#                 whose speed drifts (other tenants), the drift then weighs on both alike; the
#                 rate is all requests over all measured seconds, p50/p99 the rounds' medians
#   --only dovecot|postern   run one half only (e.g. Dovecot before a Postern plugin exists)
#   --postern BIN the postern binary (default target/release/postern; postern-bench beside it)
#   --keep        keep the work directory (configs, logs) and print its path
#   --argon2 postern|dovecot   who makes the argon2id hashes: `postern hash-password`
#                 (default; m=19456 KiB, t=2) or `doveadm pw -s ARGON2ID` (m=65536 KiB, t=3).
#                 With dovecot the load goes to all K users in turn (32 logins in flight for
#                 one user at ~0.1-0.5 s each would measure the per-account throttle, which
#                 lets max-failures-per-account of them be verified at once and the others
#                 wait for them)
#
# Each server runs alone on the machine while it is measured (one after the other), on a unix
# socket, with its defaults otherwise: Dovecot's auth workers (auth_worker_max_count = 30) and
# no auth cache; Postern's hash-concurrency = one per core. The load tool sends AUTH PLAIN for
# user0001 with C connections and N requests in flight each; every answer must be OK.
# Build first, on a quiet machine:  cargo build --release -p postern
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=benches/lib.sh
. "$HERE/lib.sh"

K=1000 C=4 N=8 D=10 R=1 ONLY="" KEEP=""
POSTERN_BIN=$ROOT/target/release/postern
MODES=()
while [ $# -gt 0 ]; do
    case $1 in
        -k) K=$2; shift 2 ;;
        -c) C=$2; shift 2 ;;
        -n) N=$2; shift 2 ;;
        -d) D=$2; shift 2 ;;
        -r) R=$2; shift 2 ;;
        --only) ONLY=$2; shift 2 ;;
        --postern) POSTERN_BIN=$(realpath "$2"); shift 2 ;;
        --keep) KEEP=1; shift ;;
        --argon2) ARGON2_FROM=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        all) MODES+=(sha512-crypt argon2id ldap-bind ldap-lookup sql-pg plain cache-hit); shift ;;
        sha512-crypt|argon2id|ldap-bind|ldap-lookup|sql-pg|plain|cache-hit) MODES+=("$1"); shift ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
[ ${#MODES[@]} -gt 0 ] || die "no MODE given (see --help)"
case $ONLY in ""|dovecot|postern) ;; *) die "--only takes dovecot or postern" ;; esac
case ${ARGON2_FROM:=postern} in postern|dovecot) ;; *) die "--argon2 takes postern or dovecot" ;; esac
BENCH_BIN=$(dirname "$POSTERN_BIN")/postern-bench
if [ "$ONLY" != dovecot ]; then
    [ -x "$POSTERN_BIN" ] && [ -x "$BENCH_BIN" ] \
        || die "$POSTERN_BIN or postern-bench missing: cargo build --release -p postern"
fi
[ -x "$BENCH_BIN" ] || die "$BENCH_BIN missing: cargo build --release -p postern"

need_pkg dovecot-core whois curl python3
for m in "${MODES[@]}"; do
    case $m in
        ldap-*) need_pkg dovecot-ldap slapd ldap-utils ;;
        sql-pg) need_pkg dovecot-pgsql postgresql ;;
        cache-hit) [ "$ONLY" = postern ] || need_pkg dovecot-pgsql postgresql ;;
    esac
done

WORK=$(mktemp -d /tmp/postern-bench.XXXXXX)
# Dovecot's auth workers (user dovecot) read the users file; PostgreSQL runs as postgres.
chmod 755 "$WORK"
trap cleanup EXIT
trap 'exit 130' INT TERM

RESULTS=()   # "mode server req/s p50 p99 extra"

# prepare SERVER SOCKET — the checks and the warm-up before a server is measured.
prepare() {
    local server=$1 socket=$2
    # The server really checks passwords: a wrong one must be refused (answered after the
    # server's failure delay).
    if RUST_BACKTRACE=0 "$BENCH_BIN" --connect "unix:$socket" --user "$(user_name 1)" \
        --password "not-$(user_password 1)" -c 1 -n 1 -d 0.1 > /dev/null 2>&1; then
        die "$server accepted a wrong password for $(user_name 1): check its configuration"
    fi
    # One login alone first: an external directory's user is recorded in Postern's store at its
    # first login, and the runs below measure the steady state.
    bench "$server first login" "$socket" 1 1 0.1 > /dev/null
    bench "$server warm-up" "$socket" "$C" "$N" 1 > /dev/null
}

# measure_rounds MODE — Dovecot and Postern, both up, measured in turn R times (see -r).
measure_rounds() {
    local mode=$1 r line sum dovecot=() postern=()
    prepare dovecot "$DOVECOT_SOCKET"
    prepare postern "$POSTERN_SOCKET"
    for ((r = 1; r <= R; r++)); do
        line=$(bench dovecot "$DOVECOT_SOCKET" "$C" "$N" "$D")
        log "$mode dovecot round $r: $line"
        dovecot+=("$line")
        line=$(bench postern "$POSTERN_SOCKET" "$C" "$N" "$D")
        log "$mode postern round $r: $line"
        postern+=("$line")
    done
    sum=$(over_rounds "${dovecot[@]}")
    RESULTS+=("$mode dovecot $(field "$sum" req_per_s) $(field "$sum" p50_ms) $(field "$sum" p99_ms) rounds=$R")
    sum=$(over_rounds "${postern[@]}")
    RESULTS+=("$mode postern $(field "$sum" req_per_s) $(field "$sum" p50_ms) $(field "$sum" p99_ms) rounds=$R")
}

# measure MODE SERVER SOCKET [HEALTHZ_URL] — warm-up, then the measured run.
measure() {
    local mode=$1 server=$2 socket=$3 healthz=${4:-}
    prepare "$server" "$socket"
    local line
    line=$(bench "$server" "$socket" "$C" "$N" "$D" "$healthz")
    log "$mode $server: $line"
    local extra=""
    if [ "$mode" = argon2id ]; then
        # One verification alone (c=1, n=1) and the limit the cores put on throughput.
        local one p50
        one=$(bench "$server single" "$socket" 1 1 3)
        p50=$(field "$one" p50_ms)
        extra="single_ms=$p50 limit_per_s=$(awk -v c="$(nproc)" -v t="$p50" 'BEGIN { printf "%.1f", c * 1000 / t }')"
        if [ -n "$healthz" ]; then
            extra="$extra healthz_p50_ms=$(field "$line" probe_p50_ms)"
            extra="$extra healthz_p99_ms=$(field "$line" probe_p99_ms)"
            extra="$extra healthz_max_ms=$(field "$line" probe_max_ms)"
        fi
    fi
    RESULTS+=("$mode $server $(field "$line" req_per_s) $(field "$line" p50_ms) $(field "$line" p99_ms) $extra")
}

# The Postern provisioning file for the internal store: every user with its hash as `secret`.
provision_internal() {
    local hashes=$1 out=$2
    while IFS=$'\t' read -r name hash; do
        printf '[[account]]\nname = "%s"\nsecret = "%s"\nroles = "user"\n\n' "$name" "$hash"
    done < "$hashes" > "$out"
}

run_passwd_file() {
    local mode=$1 hashes=$WORK/hashes-$1.tsv
    log "$mode: hashing $K passwords"
    make_hashes "$mode" "$K" "$hashes"
    [ "$mode" != argon2id ] || log "argon2id hashes: $(cut -f2 "$hashes" | head -1 | cut -d'$' -f2-4)"
    if [ "$mode" = argon2id ] && [ "$ARGON2_FROM" = dovecot ]; then
        BENCH_USER_FILE=$WORK/passwords-$mode.tsv
        for i in $(seq 1 "$K"); do printf '%s\t%s\n' "$(user_name "$i")" "$(user_password "$i")"; done \
            > "$BENCH_USER_FILE"
    fi
    if [ "$R" -gt 1 ] && [ -z "$ONLY" ] && [ "$mode" != argon2id ]; then
        tr '\t' ':' < "$hashes" > "$WORK/users-$mode"
        chmod 644 "$WORK/users-$mode"
        start_dovecot "passdb {
  driver = passwd-file
  args = $WORK/users-$mode
}"
        provision_internal "$hashes" "$WORK/provision-$mode.toml"
        rm -rf "$WORK/postern"
        start_postern "" "$WORK/provision-$mode.toml"
        measure_rounds "$mode"
        stop_postern
        stop_dovecot
        return
    fi
    if [ "$ONLY" != postern ]; then
        tr '\t' ':' < "$hashes" > "$WORK/users-$mode"
        chmod 644 "$WORK/users-$mode"
        start_dovecot "passdb {
  driver = passwd-file
  args = $WORK/users-$mode
}"
        measure "$mode" dovecot "$DOVECOT_SOCKET"
        stop_dovecot
    fi
    if [ "$ONLY" != dovecot ]; then
        provision_internal "$hashes" "$WORK/provision-$mode.toml"
        rm -rf "$WORK/postern"
        start_postern "" "$WORK/provision-$mode.toml"
        measure "$mode" postern "$POSTERN_SOCKET" "$POSTERN_HTTP"
        stop_postern
    fi
}

run_ldap() {
    local mode=$1 hashes=$WORK/hashes-ldap.tsv
    [ -f "$hashes" ] || { log "$mode: hashing $K passwords"; make_hashes sha512-crypt "$K" "$hashes"; }
    [ -n "${LDAP_URL:-}" ] || start_slapd "$hashes"
    local bind=no method=lookup
    [ "$mode" = ldap-bind ] && bind=yes method=bind
    if [ "$ONLY" != postern ]; then
        cat > "$WORK/dovecot-ldap.conf.ext" <<EOF
uris = $LDAP_URL
dn = $LDAP_ADMIN
dnpass = $LDAP_ADMIN_PW
auth_bind = $bind
base = ou=people,$LDAP_BASE
scope = onelevel
pass_filter = (&(objectClass=inetOrgPerson)(uid=%u))
pass_attrs = uid=user,userPassword=password
default_pass_scheme = CRYPT
EOF
        chmod 644 "$WORK/dovecot-ldap.conf.ext"
        start_dovecot "passdb {
  driver = ldap
  args = $WORK/dovecot-ldap.conf.ext
}"
        measure "$mode" dovecot "$DOVECOT_SOCKET"
        stop_dovecot
    fi
    if [ "$ONLY" != dovecot ]; then
        rm -rf "$WORK/postern"
        # SPEC §5 keys. Only the LDAP directory is in the chain: listing "internal" first would
        # cost every login an extra (dummy) argon2id verification that Dovecot does not do.
        start_postern "[authentication]
directories = [\"corp\"]

$(ldap_directory "$method" 'attributes = { name = "uid", email = "mail", secret = "userPassword" }
pool-size = 8')"
        measure "$mode" postern "$POSTERN_SOCKET"
        stop_postern
    fi
}

run_sql() {
    local mode=$1 hashes=$WORK/hashes-sql.tsv
    log "$mode: hashing $K passwords"
    make_hashes sha512-crypt "$K" "$hashes"
    start_pg "$hashes"
    if [ "$ONLY" != postern ]; then
        cat > "$WORK/dovecot-sql.conf.ext" <<EOF
driver = pgsql
connect = host=127.0.0.1 port=$PG_PORT dbname=bench user=postgres
default_pass_scheme = SHA512-CRYPT
password_query = SELECT name AS user, password FROM users WHERE name = '%u'
EOF
        chmod 644 "$WORK/dovecot-sql.conf.ext"
        start_dovecot "passdb {
  driver = sql
  args = $WORK/dovecot-sql.conf.ext
}"
        measure "$mode" dovecot "$DOVECOT_SOCKET"
        stop_dovecot
    fi
    if [ "$ONLY" != dovecot ]; then
        rm -rf "$WORK/postern"
        start_postern "[authentication]
directories = [\"panel\"]

[directory.panel]
type = \"sql\"
url = \"postgres://postgres@127.0.0.1:$PG_PORT/bench\"
query-login = \"SELECT name, password AS secret FROM users WHERE name = \$1\"
pool-size = 8
timeout = \"5s\""
        measure "$mode" postern "$POSTERN_SOCKET"
        stop_postern
    fi
}

# Repeated logins of one user with the verification cache on (see the header).
run_cache_hit() {
    local mode=$1 hashes=$WORK/hashes-cache.tsv
    log "$mode: hashing $K passwords"
    make_hashes sha512-crypt "$K" "$hashes"
    if [ "$ONLY" != postern ]; then
        start_pg "$hashes"
        cat > "$WORK/dovecot-sql.conf.ext" <<EOF
driver = pgsql
connect = host=127.0.0.1 port=$PG_PORT dbname=bench user=postgres
default_pass_scheme = SHA512-CRYPT
password_query = SELECT name AS user, password FROM users WHERE name = '%u'
EOF
        chmod 644 "$WORK/dovecot-sql.conf.ext"
        start_dovecot "auth_cache_size = 10M
auth_cache_ttl = 1 hour
passdb {
  driver = sql
  args = $WORK/dovecot-sql.conf.ext
}"
        measure "$mode" dovecot "$DOVECOT_SOCKET"
        stop_dovecot
    fi
    if [ "$ONLY" != dovecot ]; then
        provision_internal "$hashes" "$WORK/provision-$mode.toml"
        rm -rf "$WORK/postern"
        start_postern "[authentication]
cache-size = 100000" "$WORK/provision-$mode.toml"
        measure "$mode" postern "$POSTERN_SOCKET"
        stop_postern
        # The anchor in the same run: the same users with {PLAIN} secrets, no cache.
        local plain=$WORK/hashes-cache-plain.tsv
        make_hashes plain "$K" "$plain"
        provision_internal "$plain" "$WORK/provision-$mode-plain.toml"
        rm -rf "$WORK/postern"
        start_postern "" "$WORK/provision-$mode-plain.toml"
        measure "$mode" postern-plain "$POSTERN_SOCKET"
        stop_postern
    fi
}

for mode in "${MODES[@]}"; do
    case $mode in
        cache-hit) run_cache_hit "$mode" ;;
        sha512-crypt|argon2id|plain) run_passwd_file "$mode" ;;
        ldap-bind|ldap-lookup) run_ldap "$mode" ;;
        sql-pg) run_sql "$mode" ;;
    esac
done

printf '\n%s cores, %s users, %s connections x %s in flight, %ss per run (%s)\n' \
    "$(nproc)" "$K" "$C" "$N" "$D" "$(uname -m)"
printf '%-13s %-13s %10s %9s %9s  %s\n' mode server req/s p50_ms p99_ms extra
for r in "${RESULTS[@]}"; do
    # shellcheck disable=SC2086
    set -- $r
    printf '%-13s %-13s %10s %9s %9s  %s\n' "$1" "$2" "$3" "$4" "$5" "${*:6}"
done
