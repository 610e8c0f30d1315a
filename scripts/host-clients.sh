#!/bin/sh
# The real block clients the hardware-in-the-loop tests drive (test/real-clients.test.ts) and the peer
# comparison bench: fio (nbd engine), qemu-io/qemu-img, nbdcopy/nbdinfo/nbdsh, and nbdkit. Installs them from
# Debian's packages when any is missing (needs root and apt-get); otherwise says what to install.
set -eu
need="fio qemu-io qemu-img nbdcopy nbdinfo nbdsh nbdkit"
missing=""
for c in $need; do command -v "$c" >/dev/null 2>&1 || missing="$missing $c"; done
[ -z "$missing" ] && exit 0
packages="fio qemu-utils libnbd-bin python3-libnbd nbdkit"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "host-clients: installing$missing from Debian ($packages)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages >/dev/null
  exit 0
fi
echo "host-clients: missing$missing; install the Debian packages: $packages" >&2
exit 1
