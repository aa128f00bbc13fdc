#!/usr/bin/env bash
# Runs commands the way a newcomer would on a fresh Debian 12: a debootstrap minbase root (cached) with git and a
# fresh clone of this repository, entered in its own mount namespace with pivot_root (so `/` is the namespace's
# root, as on a real machine: a plain chroot is not, and setns() into a container's mount namespace would land
# outside it). /proc, /sys, /dev and cgroups come from the host; pid and network namespaces are the host's.
# All commands run one after the other in one namespace, as on one machine; output streams to stdout.
# Usage: tools/fresh_root.sh 'CMD1' ['CMD2' ...]   (each from the clone's root, as root)
# Env: FRESH_CACHE (cached minbase, default /var/cache/pycontainer-fresh/bookworm-minbase), FRESH_ROOT (work copy).
set -euo pipefail
proj=$(cd "$(dirname "$0")/.." && pwd)
cache=${FRESH_CACHE:-/var/cache/pycontainer-fresh/bookworm-minbase}
root=${FRESH_ROOT:-/var/tmp/pycontainer-fresh-root}

# The Debian mirror this machine's apt already uses (read from its sources).
apt_mirror() {
  { grep -h -oE '^URIs: *[^ ]+' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | sed 's/^URIs: *//'
    awk '$1 == "deb" && $3 !~ /security/ {print $2}' /etc/apt/sources.list 2>/dev/null; } | head -1
}

# Every process whose root is the fresh root (daemons the commands left: registry, monitors, containers).
stop_processes() {
  local pid link
  for pid in /proc/[0-9]*; do
    link=$(readlink "$pid/root" 2>/dev/null) || continue
    case "$link" in "$root"|"$root"/*) kill -9 "${pid#/proc/}" 2>/dev/null || true ;; esac
  done
}

unmount_all() {
  local m
  for m in $(findmnt -rno TARGET | grep -E "^$root(/|$)" | sort -r); do umount -l "$m" 2>/dev/null || true; done
}

if [ ! -x "$cache/bin/bash" ]; then
  command -v debootstrap >/dev/null || {
    apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
  echo "fresh-root: debootstrap minbase bookworm into $cache"
  rm -rf "$cache.tmp" && mkdir -p "$(dirname "$cache")"
  debootstrap --variant=minbase bookworm "$cache.tmp" "$(apt_mirror)" >/tmp/fresh-debootstrap.log 2>&1 \
    || { tail -20 /tmp/fresh-debootstrap.log; exit 2; }
  mv "$cache.tmp" "$cache"
fi

stop_processes; unmount_all
rm -rf "$root" && cp -a "$cache" "$root"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# This machine kind's apt settings for reaching its mirror (e.g. a snapshot's Valid-Until): part of the machine.
grep -l '^Acquire::' /etc/apt/apt.conf.d/* 2>/dev/null | xargs -r cp -t "$root/etc/apt/apt.conf.d/"
# Some machines reach the package registries through a proxy whose CA the host trusts: keep that trust.
mkdir -p "$root/etc/ssl" && { cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/host-ca.crt" 2>/dev/null || true; }
[ -s "$root/etc/ssl/host-ca.crt" ] && printf '[global]\ncert = /etc/ssl/host-ca.crt\n' > "$root/etc/pip.conf"
git clone -q "$proj" "$root/root/project"
trap 'stop_processes; unmount_all' EXIT

# What the commands leave running on the host's network (the demo's container: bridge, nft table; the registry)
# is removed through the engine itself at the end, whatever the outcome; stop_processes ends the rest.
script='cleanup() { cd /root/project; p=.venv/bin/pycontainer; [ -x $p ] && $p rm -f $($p ps -aq) >/dev/null 2>&1
  [ -x .venv/bin/python ] && make -s clean-state >/dev/null 2>&1; true; }; trap cleanup EXIT
set -e; apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git >/dev/null; cd /root/project'
for cmd in "$@"; do
  script+="; echo \"=== fresh-root: $cmd\"; s=\$(date +%s); $cmd; echo \"=== fresh-root: '$cmd' passed in \$((\$(date +%s) - s)) s\""
done
unshare --mount --propagation private /bin/bash -c '
  set -e
  R=$1; shift
  mount --bind "$R" "$R"; mount -t proc proc "$R/proc"
  mount --rbind /sys "$R/sys"; mount --make-rslave "$R/sys"
  mount --rbind /dev "$R/dev"; mount --make-rslave "$R/dev"
  mount -t tmpfs tmpfs "$R/run"; mount -t tmpfs tmpfs "$R/tmp"
  mkdir -p "$R/.oldroot"; cd "$R"; pivot_root . .oldroot; umount -l /.oldroot; rmdir /.oldroot
  extra=""; [ -s /etc/ssl/host-ca.crt ] && extra="PIP_CERT=/etc/ssl/host-ca.crt SSL_CERT_FILE=/etc/ssl/host-ca.crt"
  exec /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb \
    ${CI:+CI=$CI} $extra /bin/bash -c "$1"' _ "$root" "$script"
