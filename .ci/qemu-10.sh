#!/usr/bin/env bash
# Prints the path of a QEMU 10 qemu-system-m68k for the second CI pass, unpacking Debian
# bookworm-backports' build into $QEMU10_DIR (default /opt/qemu-10-ci) the first time.
# Nothing is installed into the system: the .debs are downloaded and extracted with dpkg -x;
# a wrapper points QEMU at its own modules (QEMU_MODULE_DIR) and firmware/data (-L).
# Its shared libraries come from the system QEMU's dependencies, so run it after
# `cargo xtask test` has installed qemu-system-misc. Needs root and the Debian mirror.
set -euo pipefail
dest=${QEMU10_DIR:-/opt/qemu-10-ci}
wrapper=$dest/bin/qemu-system-m68k
if "$wrapper" --version 2>/dev/null | grep -q "version 10\."; then
  echo "$wrapper"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "qemu-10.sh: needs root to download from bookworm-backports" >&2
  exit 1
fi
mirror=$(awk '$1 == "URIs:" && $2 ~ /debian\/?$/ { print $2; exit }' \
  /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
list=/etc/apt/sources.list.d/ci-bookworm-backports.sources
work=$(mktemp -d)
cleanup() {
  rm -rf "$work"
  if [ -f "$list" ]; then
    rm -f "$list"
    apt-get update -qq >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
cat > "$list" <<EOF
Types: deb
URIs: ${mirror:-http://deb.debian.org/debian}
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
apt-get update -qq >/dev/null
(cd "$work" && apt-get -o APT::Sandbox::User=root download -qq \
  qemu-system-misc/bookworm-backports qemu-system-common/bookworm-backports \
  qemu-system-data/bookworm-backports >/dev/null)
rm -rf "$dest.new"
mkdir -p "$dest.new/bin"
for deb in "$work"/*.deb; do dpkg -x "$deb" "$dest.new"; done
# QEMU also scans its built-in module folder, where the system QEMU's modules live and are
# refused ("Only modules from the same build can be loaded"): in a private mount namespace
# (root) the backports modules are bound over that folder; without one, QEMU still runs and
# only warns.
mods=/usr/lib/x86_64-linux-gnu/qemu
cat > "$dest.new/bin/qemu-system-m68k" <<EOF
#!/bin/sh
run="$dest/usr/bin/qemu-system-m68k -L $dest/usr/share/qemu"
if [ -d $mods ] && unshare -m true 2>/dev/null; then
  exec unshare -m sh -c "mount --bind $dest$mods $mods && exec \$run \"\\\$@\"" qemu "\$@"
fi
QEMU_MODULE_DIR=$dest$mods exec \$run "\$@"
EOF
chmod +x "$dest.new/bin/qemu-system-m68k"
rm -rf "$dest"
mv "$dest.new" "$dest"
"$wrapper" --version | head -1 >&2
echo "$wrapper"
