#!/usr/bin/env bash
# Every benchmark of README "Performance", once, one after the other on a quiet machine:
#
#   benches/all.sh [OUT_DIR]        (default: a new /tmp/postern-bench-all.XXXXXX)
#
# Writes each benchmark's whole output to OUT_DIR/NAME.log and the tail of each, with the load
# average when it began, to OUT_DIR/summary. A benchmark that fails is recorded (rc=N in its
# log and the summary) and the others still run; the exit status is 1 if any failed.
# Build first:  cargo build --release -p postern --bins
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-$(mktemp -d /tmp/postern-bench-all.XXXXXX)}
mkdir -p "$OUT"
FAILED=0
run() {
    local name=$1 rc; shift
    printf '== %s %s (load %s)\n' "$(date +%T)" "$name" "$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$OUT/summary"
    timeout 1200 "$@" > "$OUT/$name.log" 2>&1
    rc=$?
    echo "rc=$rc" >> "$OUT/$name.log"
    [ "$rc" -eq 0 ] || FAILED=1
    tail -12 "$OUT/$name.log" >> "$OUT/summary"
}
run plain "$HERE/dovecot-compare.sh" -k 100 -c 4 -n 8 -d 5 -r 3 plain
run cache-hit "$HERE/dovecot-compare.sh" -k 200 -c 4 -n 8 -d 10 cache-hit
run session "$HERE/session-compare.sh" -d 10
run argon2id "$HERE/dovecot-compare.sh" -k 50 -d 10 --argon2 dovecot argon2id
run start "$HERE/footprint.sh" start
run idle "$HERE/footprint.sh" -r 6 idle
run accounts "$HERE/footprint.sh" -r 5 accounts
run ldap "$HERE/footprint.sh" -r 5 ldap
echo "results: $OUT/summary"
exit "$FAILED"
