#!/bin/sh
# Installs Outpost on a Debian machine: containerd and runc from Debian, the programs under
# /usr/lib/outpost (outpostd, outpost-logger) and /usr/bin/outpost, the services' images
# under /usr/share/outpost/images, a configuration template at /etc/outpost/config.toml
# (kept if present), and the systemd unit.
#
#   cargo build --release && cargo xtask images
#   sudo deploy/install.sh [--from DIR] [--images DIR] [--no-start]
#
# DIR defaults to target/release, the images to target/images. Run it again to upgrade:
# the programs and images are replaced, the configuration is not.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
from="$here/target/release"
images="$here/target/images"
start=yes
while [ $# -gt 0 ]; do
  case "$1" in
    --from) from=$2; shift 2 ;;
    --images) images=$2; shift 2 ;;
    --no-start) start=no; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" != 0 ]; then echo "run as root (sudo $0)" >&2; exit 1; fi
for program in outpostd outpost outpost-logger; do
  if [ ! -x "$from/$program" ]; then
    echo "$from/$program is missing: build with \`cargo build --release\` (or pass --from DIR)" >&2
    exit 1
  fi
done
for image in identityd agent hub watchdog; do
  if [ ! -f "$images/$image.tar" ]; then
    echo "$images/$image.tar is missing: build the images with \`cargo xtask images\` (or pass --images DIR)" >&2
    exit 1
  fi
done

echo "installing containerd and runc"
if ! dpkg-query -W -f='${Status}' containerd 2>/dev/null | grep -q 'install ok installed'; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq containerd runc
fi

echo "installing programs"
install -d -m 0755 /usr/lib/outpost /usr/share/outpost/images /etc/outpost /var/lib/outpost /var/log/outpost
install -m 0755 "$from/outpostd" "$from/outpost-logger" /usr/lib/outpost/
install -m 0755 "$from/outpost" /usr/bin/outpost
for image in identityd agent hub watchdog; do
  install -m 0644 "$images/$image.tar" /usr/share/outpost/images/
done

if [ -e /etc/outpost/config.toml ]; then
  echo "keeping /etc/outpost/config.toml"
else
  install -m 0600 "$here/deploy/config/config.toml" /etc/outpost/config.toml
  echo "wrote /etc/outpost/config.toml: set [device] id, hub_hostname and key, and [cloud] url"
fi

install -m 0644 "$here/deploy/systemd/outpostd.service" /etc/systemd/system/outpostd.service
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable containerd outpostd >/dev/null
  if [ "$start" = yes ]; then
    if /usr/lib/outpost/outpostd --config /etc/outpost/config.toml --check; then
      systemctl restart outpostd
      echo "outpostd started; \`outpost system status\` shows the services"
    else
      echo "outpostd not started: fix /etc/outpost/config.toml, then \`systemctl start outpostd\`" >&2
    fi
  fi
else
  echo "systemd is not running here; start outpostd with: /usr/lib/outpost/outpostd --config /etc/outpost/config.toml"
fi
