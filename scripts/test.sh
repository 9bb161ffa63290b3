#!/usr/bin/env bash
# Runs every test: installs the Debian packages the tests need when missing, builds, then runs
# the whole workspace's tests (unit, property and end-to-end against real servers).
set -euo pipefail
cd "$(dirname "$0")/.."

cleanup=()
trap 'for f in "${cleanup[@]}"; do rm -f "$f"; done' EXIT

need=()
while read -r pkg _; do
  [[ -z "$pkg" || "$pkg" == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done < scripts/apt-packages.txt
if ((${#need[@]})); then
  echo "installing: ${need[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  # Packages must not start system services: every test starts its own private instance.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    cleanup+=(/usr/sbin/policy-rc.d)
  fi
  echo 'slapd slapd/no_configuration boolean true' | $SUDO debconf-set-selections
  echo 'postfix postfix/main_mailer_type select No configuration' | $SUDO debconf-set-selections
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

cargo build --workspace --all-targets
log=$(mktemp)
cleanup+=("$log")
set +e
cargo test --workspace --no-fail-fast -- --test-threads="${POSTERN_TEST_THREADS:-4}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole run (cargo prints one per test binary, the last of which is
# often an empty doc-test run).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
exit "$status"
