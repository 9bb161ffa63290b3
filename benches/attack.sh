#!/usr/bin/env bash
# The attacks of the hardening issue (15), replayed against the release binary on loopback,
# each while a real user logs in; the real user's login must answer OK within a second of its
# time on the idle daemon.
#
#   benches/attack.sh [--postern BIN] [--margin SECONDS] [--keep]
#
# Postern runs privately in a temporary directory (SQLite store, HTTP on 127.0.0.1, dovecot-auth
# on a unix socket, hash-queue limits at their defaults) with five argon2id users (Postern's
# parameters for new hashes, so the hash queue matters). In order (benches/attack-load.py):
#   - 500 POST /auth/login whose sockets close right after sending (from 127.0.0.9);
#   - one dovecot-auth connection sending 2,000 × (AUTH with credentials, CANCEL);
#     both floods must be refused in part by the queue's bounds, and the hang-ups count as
#     failures (127.0.0.9 is throttled afterwards);
#   - 100 wrong passwords for one account at once from 100 addresses: at most
#     max-failures-per-account-total (20) answered 401, the rest 429, and the owner still logs in
#     from the address it logged in from before;
#   - 10 wrong passwords from one address: the owner logs in from another; that address is
#     refused, also for the name in capitals;
#   - 500 connections from one address dripping request heads, one chunked body that never
#     ends: /healthz answers within a second.
# Build first:  cargo build --release -p postern
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=benches/lib.sh
. "$HERE/lib.sh"

KEEP="" MARGIN=1
POSTERN_BIN=$ROOT/target/release/postern
while [ $# -gt 0 ]; do
    case $1 in
        --postern) POSTERN_BIN=$(realpath "$2"); shift 2 ;;
        --margin) MARGIN=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
[ -x "$POSTERN_BIN" ] || die "$POSTERN_BIN missing: cargo build --release -p postern"
need_pkg python3

WORK=$(mktemp -d /tmp/postern-attack.XXXXXX)
chmod 755 "$WORK"
trap cleanup EXIT
trap 'exit 130' INT TERM

log "hashing the passwords of 5 users (argon2id)"
make_hashes argon2id 5 "$WORK/hashes.tsv"
while IFS=$'\t' read -r name hash; do
    printf '[[account]]\nname = "%s"\nsecret = "%s"\nroles = "user"\n\n' "$name" "$hash"
done < "$WORK/hashes.tsv" > "$WORK/provision.toml"
POSTERN_LOG_LEVEL=info start_postern "" "$WORK/provision.toml"
log "postern pid $POSTERN_PID, http $POSTERN_HTTP, work $WORK"

printf '%s cores (%s), %s\n' "$(nproc)" "$(uname -m)" "$("$POSTERN_BIN" --version)"
rc=0
python3 "$HERE/attack-load.py" --http "$POSTERN_HTTP" --socket "$POSTERN_SOCKET" \
    --margin "$MARGIN" || rc=$?
if ! kill -0 "$POSTERN_PID" 2>/dev/null || grep -qi panic "$WORK/postern/stderr.log"; then
    printf 'FAIL  postern died or logged a panic (see %s)\n' "$WORK/postern/stderr.log"
    rc=1
fi
[ "$rc" -eq 0 ] || KEEP=1
exit "$rc"
