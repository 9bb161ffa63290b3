# shellcheck shell=bash
# Helpers for benches/dovecot-compare.sh: packages, free ports, private servers (Dovecot's auth
# server, Postern, slapd, PostgreSQL), each started in $WORK and stopped by PID on exit.

log() { printf '%s\n' "== $*" >&2; }
die() { printf '%s\n' "error: $*" >&2; exit 1; }

# need_pkg PACKAGE... — installs the Debian packages that are missing.
need_pkg() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]}"
    [ "$(id -u)" -eq 0 ] || die "run as root to install ${missing[*]} (or install them first)"
    # Keep packages from starting their system services (slapd, postgresql, dovecot).
    local rc_created=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        rc_created=1
    fi
    echo 'slapd slapd/no_configuration boolean true' | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2 \
        || { DEBIAN_FRONTEND=noninteractive apt-get update >&2 &&
             DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2; } \
        || die "apt-get install ${missing[*]} failed"
    [ -n "$rc_created" ] && rm -f /usr/sbin/policy-rc.d
    return 0
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# PIDs and stop commands run by cleanup (only what this script started).
PIDS=()
STOPS=()
cleanup() {
    local s p
    for s in "${STOPS[@]}"; do eval "$s" >/dev/null 2>&1 || true; done
    for p in "${PIDS[@]}"; do stop_pid "$p"; done
    if [ -n "${KEEP:-}" ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}

# stop_pid PID — SIGTERM, up to 10 s to exit, then SIGKILL; reaps it.
stop_pid() {
    local p=$1 i
    kill "$p" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        kill -0 "$p" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
}

# wait_for SECONDS DESCRIPTION COMMAND... — polls COMMAND every 0.1 s.
wait_for() {
    local limit=$1 what=$2; shift 2
    local i
    for ((i = 0; i < limit * 10; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "$what did not come up within ${limit}s"
}

# ---------------------------------------------------------------------------------------------
# Users: user0001 … userK, password pw-N-bench, the same hash given to both servers.

user_name() { printf 'user%04d' "$1"; }
user_password() { printf 'pw-%d-bench' "$1"; }

# make_hashes SCHEME K OUT — writes "name<TAB>{SCHEME}hash" lines. sha512-crypt hashes come from
# mkpasswd (glibc crypt, 5000 rounds, what `doveadm pw -s SHA512-CRYPT` makes); argon2id hashes
# from `postern hash-password` (Postern's parameters for new hashes), prefixed {ARGON2ID} so
# Dovecot reads them; with ARGON2_FROM=dovecot from `doveadm pw -s ARGON2ID` (Dovecot's own
# default, m=65536 KiB, t=3, p=1: a common production setting).
make_hashes() {
    local scheme=$1 k=$2 out=$3
    export POSTERN_BIN SCHEME_ARG=$scheme ARGON2_FROM=${ARGON2_FROM:-postern}
    seq 1 "$k" | xargs -P "$(nproc)" -I{} bash -c '
        i={}; name=$(printf "user%04d" "$i"); pw=$(printf "pw-%d-bench" "$i")
        case $SCHEME_ARG in
          sha512-crypt) h="{SHA512-CRYPT}$(printf %s "$pw" | mkpasswd -m sha-512 -s)" ;;
          argon2id)
            if [ "$ARGON2_FROM" = dovecot ]; then h=$(doveadm pw -s ARGON2ID -p "$pw")
            else h="{ARGON2ID}$(printf %s "$pw" | "$POSTERN_BIN" hash-password)"; fi ;;
          plain) h="{PLAIN}$pw" ;;
        esac
        printf "%s\t%s\n" "$name" "$h"' > "$out.unsorted"
    sort "$out.unsorted" > "$out"
    rm -f "$out.unsorted"
    [ "$(wc -l < "$out")" -eq "$k" ] || die "hash generation produced $(wc -l < "$out") of $k hashes"
    grep -qv $'\t{' "$out" && die "a hash is malformed: $(grep -v $'\t{' "$out" | head -1)"
    return 0
}

# ---------------------------------------------------------------------------------------------
# Dovecot's auth server alone: own base_dir, no protocols, auth-client socket (the protocol
# Postfix speaks). auth_cache stays off (its default) so every request verifies a hash.

# start_dovecot PASSDB_BLOCK — sets DOVECOT_SOCKET.
start_dovecot() {
    local passdb=$1 d=$WORK/dovecot
    # A fresh base_dir: a socket left by the previous run would look ready.
    rm -rf "$d"
    mkdir -p "$d/run"
    cat > "$d/dovecot.conf" <<EOF
base_dir = $d/run
state_dir = $d/run
instance_name = postern-bench-$$
protocols =
log_path = $d/dovecot.log
ssl = no
auth_mechanisms = plain
disable_plaintext_auth = no
$passdb
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent
}
service auth {
  unix_listener auth-client {
    mode = 0666
  }
}
EOF
    dovecot -c "$d/dovecot.conf" -F > "$d/stdout.log" 2>&1 &
    PIDS+=("$!")
    DOVECOT_PID=$!
    DOVECOT_SOCKET=$d/run/auth-client
    wait_for 20 "Dovecot (see $d/dovecot.log)" test -S "$DOVECOT_SOCKET"
}

stop_dovecot() {
    [ -n "${DOVECOT_PID:-}" ] || return 0
    stop_pid "$DOVECOT_PID"
    DOVECOT_PID=""
}

# ---------------------------------------------------------------------------------------------
# Postern: SQLite store in $WORK, dovecot-auth on a unix socket (as Dovecot), HTTP on loopback
# for /healthz. Log level warn: Dovecot logs nothing per successful login either.

# start_postern EXTRA_TOML [PROVISION_FILE] — sets POSTERN_SOCKET and POSTERN_HTTP.
# POSTERN_DOVECOT_LISTENER_KEYS, POSTERN_STORE_KEYS: more keys of the dovecot-auth listener
# (e.g. max-connections) and of [store] (e.g. cache-size).
start_postern() {
    local extra=$1 provision=${2:-} d=$WORK/postern
    mkdir -p "$d"
    local http_port
    http_port=$(free_port)
    POSTERN_SOCKET=$d/auth
    POSTERN_HTTP=127.0.0.1:$http_port
    cat > "$d/postern.toml" <<EOF
[server]
state-dir = "$d/state"

[store]
url = "sqlite://$d/state/postern.db"
${POSTERN_STORE_KEYS:-}

[log]
level = "${POSTERN_LOG_LEVEL:-warn}"

[[listener]]
protocol = "http"
bind = "$POSTERN_HTTP"

[[listener]]
protocol = "dovecot-auth"
bind = "unix:$POSTERN_SOCKET"
mode = "0666"
${POSTERN_DOVECOT_LISTENER_KEYS:-}

$extra
EOF
    mkdir -p "$d/state"
    "$POSTERN_BIN" check-config --config "$d/postern.toml" >&2 \
        || die "postern check-config refused $d/postern.toml (plugin not built in yet?)"
    if [ -n "$provision" ]; then
        "$POSTERN_BIN" apply --config "$d/postern.toml" "$provision" > "$d/apply.log" 2>&1 \
            || die "postern apply failed: $(tail -3 "$d/apply.log")"
    fi
    POSTERN_ADMIN_PASSWORD=bench-admin-$$ "$POSTERN_BIN" serve --config "$d/postern.toml" \
        > "$d/stdout.log" 2> "$d/stderr.log" &
    PIDS+=("$!")
    POSTERN_PID=$!
    wait_for 30 "Postern (see $d/stderr.log)" grep -qx ready "$d/stdout.log"
}

stop_postern() {
    [ -n "${POSTERN_PID:-}" ] || return 0
    stop_pid "$POSTERN_PID"
    POSTERN_PID=""
}

# ---------------------------------------------------------------------------------------------
# A private slapd (back_mdb) holding the users under ou=people,dc=bench,dc=test.

LDAP_BASE="dc=bench,dc=test"
LDAP_ADMIN="cn=admin,$LDAP_BASE"
LDAP_ADMIN_PW="bench-admin-secret"

# start_slapd HASHES — sets LDAP_URL. HASHES: "name<TAB>{SHA512-CRYPT}…" or "{PLAIN}…" lines.
start_slapd() {
    local hashes=$1 d=$WORK/slapd
    mkdir -p "$d/db"
    cat > "$d/slapd.conf" <<EOF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile $d/slapd.pid
argsfile $d/slapd.args
database mdb
maxsize 1073741824
suffix "$LDAP_BASE"
rootdn "$LDAP_ADMIN"
rootpw $LDAP_ADMIN_PW
directory $d/db
index uid eq
index objectClass eq
access to attrs=userPassword by anonymous auth by * none
access to * by * read
EOF
    {
        printf 'dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: bench\no: bench\n\n' "$LDAP_BASE"
        printf 'dn: ou=people,%s\nobjectClass: organizationalUnit\nou: people\n\n' "$LDAP_BASE"
        # slapd verifies {CRYPT} with crypt(3): the same $6$ hash as the other modes. {PLAIN}
        # secrets become slapd's cleartext userPassword.
        local pw
        while IFS=$'\t' read -r name hash; do
            case $hash in
                \{PLAIN\}*) pw=${hash#\{PLAIN\}} ;;
                *) pw="{CRYPT}${hash#\{SHA512-CRYPT\}}" ;;
            esac
            printf 'dn: uid=%s,ou=people,%s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: %s\nmail: %s@bench.test\nuserPassword: %s\n\n' \
                "$name" "$LDAP_BASE" "$name" "$name" "$name" "$name" "$pw"
        done < "$hashes"
    } > "$d/users.ldif"
    slapadd -q -f "$d/slapd.conf" -l "$d/users.ldif" >&2 || die "slapadd failed"
    local port
    port=$(free_port)
    LDAP_URL=ldap://127.0.0.1:$port
    slapd -d 0 -f "$d/slapd.conf" -h "$LDAP_URL/" > "$d/slapd.log" 2>&1 &
    PIDS+=("$!")
    wait_for 20 "slapd (see $d/slapd.log)" \
        ldapsearch -x -H "$LDAP_URL" -D "$LDAP_ADMIN" -w "$LDAP_ADMIN_PW" -b "$LDAP_BASE" -s base
}

# ---------------------------------------------------------------------------------------------
# A private PostgreSQL (run as user postgres, which owns its directory) with table users.

# start_pg HASHES — sets PG_PORT.
start_pg() {
    local hashes=$1 d=$WORK/pg
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    [ -x "$bin/initdb" ] || die "PostgreSQL server binaries not found under /usr/lib/postgresql"
    mkdir -p "$d"
    chmod 755 "$WORK"
    chown postgres:postgres "$d"
    local as_pg=(runuser -u postgres --)
    [ "$(id -u)" -eq 0 ] || as_pg=()
    "${as_pg[@]}" "$bin/initdb" -D "$d/data" -U postgres --auth=trust --no-sync -E UTF8 > "$d/initdb.log" 2>&1 \
        || die "initdb failed: $(tail -3 "$d/initdb.log")"
    PG_PORT=$(free_port)
    "${as_pg[@]}" "$bin/pg_ctl" -D "$d/data" -w -t 60 -l "$d/log" \
        -o "-p $PG_PORT -k $d -c listen_addresses=127.0.0.1 -c max_connections=200" start >&2 \
        || die "PostgreSQL did not start: $(tail -5 "$d/log")"
    STOPS+=("${as_pg[*]} $bin/pg_ctl -D $d/data -m fast -w stop")
    local psql=(psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -q)
    "${psql[@]}" -c 'CREATE DATABASE bench' postgres
    "${psql[@]}" -c 'CREATE TABLE users (name text PRIMARY KEY, password text NOT NULL)' bench
    "${psql[@]}" -c '\copy users FROM STDIN' bench < "$hashes"
}

# ---------------------------------------------------------------------------------------------
# Measurements.

# bench NAME SOCKET C N SECONDS [HOST:PORT] — runs postern-bench, prints its result line; with
# HOST:PORT it also times that listener's /healthz every 100 ms during the run (probe_*_ms).
bench() {
    local name=$1 socket=$2 c=$3 n=$4 secs=$5 probe=() who
    [ -n "${6:-}" ] && probe=(--probe "$6")
    # BENCH_USER_FILE (name<TAB>password lines) spreads the load over its users.
    if [ -n "${BENCH_USER_FILE:-}" ] && [ "$c$n" != 11 ]; then who=(--user-file "$BENCH_USER_FILE")
    else who=(--user "$(user_name 1)" --password "$(user_password 1)"); fi
    local out
    out=$(RUST_BACKTRACE=0 "$BENCH_BIN" --connect "unix:$socket" "${who[@]}" \
        -c "$c" -n "$n" -d "$secs" "${probe[@]}" 2>&1) \
        || die "postern-bench against $name failed: $out"
    printf '%s\n' "$out" | tail -1
}

# ldap_directory METHOD [KEYS] — the `[directory.corp]` table of Postern's configuration for
# start_slapd's private slapd (users by uid under ou=people, auth-method METHOD), then KEYS
# (more `key = value` lines).
ldap_directory() {
    cat <<EOF
[directory.corp]
type = "ldap"
url = "$LDAP_URL"
base-dn = "ou=people,$LDAP_BASE"
bind-dn = "$LDAP_ADMIN"
bind-password = "$LDAP_ADMIN_PW"
auth-method = "$1"
user-filter = "(&(objectClass=inetOrgPerson)(uid={user}))"
timeout = "5s"
${2:-}
EOF
}

# median V... — the middle value (the upper middle of an even count).
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int(NR / 2) + 1] }'; }

# field LINE KEY — the value of KEY= in a postern-bench result line.
field() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# over_rounds LINE... — one side's postern-bench result lines, one per round, taken together:
# "req_per_s=… p50_ms=… p99_ms=…", the rate over every round, p50 and p99 their medians.
over_rounds() {
    local line requests=0 seconds=0 p50=() p99=()
    for line in "$@"; do
        requests=$((requests + $(field "$line" requests)))
        seconds=$(awk -v a="$seconds" -v b="$(field "$line" seconds)" 'BEGIN { print a + b }')
        p50+=("$(field "$line" p50_ms)")
        p99+=("$(field "$line" p99_ms)")
    done
    printf 'req_per_s=%s p50_ms=%s p99_ms=%s\n' \
        "$(awk -v q="$requests" -v s="$seconds" 'BEGIN { printf "%.1f", q / s }')" \
        "$(median "${p50[@]}")" "$(median "${p99[@]}")"
}
