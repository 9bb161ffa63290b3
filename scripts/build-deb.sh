#!/bin/sh
# Builds postern_VERSION-1_ARCH.deb with dpkg-deb from a staged tree (no debhelper needed):
# the binary in /usr/sbin, the units, sysusers and tmpfiles files in their systemd places, the
# minimal annotated configuration (a conffile), man pages and shell completions generated from
# the binary itself, the guides, license and changelog.
#
#   scripts/build-deb.sh [--binary PATH] [--out DIR]
#
# Without --binary it builds `cargo build --release -p postern` first (slow on a small
# machine: the tests pass the debug binary they already have). Prints the .deb's path.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/target/deb"
bin=""
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) bin="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        *) echo "usage: $0 [--binary PATH] [--out DIR]" >&2; exit 1 ;;
    esac
done
if [ -z "$bin" ]; then
    (cd "$root" && cargo build --release -p postern >&2)
    bin="${CARGO_TARGET_DIR:-$root/target}/release/postern"
fi

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n 1)
debversion="$version-1"
arch=$(dpkg --print-architecture)
stage="$out/stage"
rm -rf "$stage"
mkdir -p "$stage/DEBIAN"
umask 022

install -D -m 0755 "$bin" "$stage/usr/sbin/postern"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$stage/usr/sbin/postern"
install -D -m 0644 "$root/systemd/postern.service" "$stage/lib/systemd/system/postern.service"
install -D -m 0644 "$root/systemd/postern.socket" "$stage/lib/systemd/system/postern.socket"
install -D -m 0644 "$root/systemd/postern.sysusers" "$stage/usr/lib/sysusers.d/postern.conf"
install -D -m 0644 "$root/packaging/postern.tmpfiles" "$stage/usr/lib/tmpfiles.d/postern.conf"
install -D -m 0644 "$root/packaging/postern.toml" "$stage/etc/postern/postern.toml"

# Man pages and completions from the clap definitions of this very binary.
gen="$out/generated"
rm -rf "$gen"
"$stage/usr/sbin/postern" generate-docs "$gen"
for section in 5 8; do
    mkdir -p "$stage/usr/share/man/man$section"
    for page in "$gen/man$section"/*; do
        gzip -9n -c "$page" > "$stage/usr/share/man/man$section/$(basename "$page").gz"
    done
done
install -D -m 0644 "$gen/completions/postern" "$stage/usr/share/bash-completion/completions/postern"
install -D -m 0644 "$gen/completions/_postern" "$stage/usr/share/zsh/vendor-completions/_postern"
install -D -m 0644 "$gen/completions/postern.fish" "$stage/usr/share/fish/vendor_completions.d/postern.fish"

doc="$stage/usr/share/doc/postern"
install -D -m 0644 "$root/packaging/debian/copyright" "$doc/copyright"
install -D -m 0644 "$root/README.md" "$doc/README.md"
mkdir -p "$doc/docs" "$doc/examples/prometheus" "$doc/examples/grafana"
install -m 0644 "$root"/docs/*.md "$doc/docs/"
install -m 0644 "$root/etc/postern.toml" "$root/etc/provision.example.toml" "$doc/examples/"
install -m 0644 "$root"/etc/prometheus/*.yml "$doc/examples/prometheus/"
install -m 0644 "$root"/etc/grafana/*.json "$doc/examples/grafana/"
date=$(date -R -d "@${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)}")
printf 'postern (%s) unstable; urgency=medium\n\n  * Built from the Postern repository; see README.md for what changed.\n\n -- Postern Maintainers <maintainers@postern.example.org>  %s\n' \
    "$debversion" "$date" | gzip -9n > "$doc/changelog.Debian.gz"

for script in postinst prerm postrm; do
    install -m 0755 "$root/packaging/debian/$script" "$stage/DEBIAN/$script"
done
echo /etc/postern/postern.toml > "$stage/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<CONTROL
Package: postern
Version: $debversion
Architecture: $arch
Maintainer: Postern Maintainers <maintainers@postern.example.org>
Installed-Size: $size
Depends: libc6 (>= 2.36), libgcc-s1 (>= 4.2), adduser, init-system-helpers (>= 1.54), procps
Recommends: systemd
Suggests: postfix | exim4-daemon-heavy, nginx-core, prometheus
Section: mail
Priority: optional
Description: authentication daemon for mail servers and web applications
 Postern checks passwords and tokens for Postfix and Exim (the Dovecot
 authentication protocol), Cyrus SASL applications (saslauthd), the nginx
 mail proxy (auth_http) and web applications behind a reverse proxy
 (forward authentication), against its own store, LDAP or SQL directories.
 It computes each account's roles and permissions, throttles password
 guessing, and exposes Prometheus metrics.
CONTROL
(cd "$stage" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) > "$stage/DEBIAN/md5sums"

deb="$out/postern_${debversion}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >&2
echo "$deb"
