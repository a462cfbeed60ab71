#!/bin/sh
# A simulated Outpost device: its own containerd, then outpostd, which runs the device's
# services as containers. PID 1 is docker-init (compose `init: true`), which forwards
# SIGTERM here; outpostd then stops the modules and the services. With arguments, runs them
# instead (for one-off commands in the image).
if [ $# -gt 0 ]; then exec "$@"; fi
set -e

# Without `privileged`, docker mounts /sys and the cgroup hierarchies read-only; runc needs
# them writable to create the modules' cgroups. (`remount,bind,rw` flips only this mount.)
if grep -q ' /sys sysfs ro[ ,]' /proc/mounts; then mount -o remount,rw /sys; fi
for d in /sys/fs/cgroup/*; do
  if grep -q " $d cgroup ro[ ,]" /proc/mounts; then mount -o remount,bind,rw "$d"; fi
done

mkdir -p /run/containerd /var/lib/containerd /var/lib/outpost /var/log/outpost
rm -f /run/containerd/containerd.sock
containerd --config /etc/containerd/config.toml >>/var/log/outpost/containerd.log 2>&1 &
containerd_pid=$!
i=0
until [ -S /run/containerd/containerd.sock ]; do
  i=$((i + 1))
  if [ "$i" -gt 300 ]; then echo "containerd did not start; see /var/log/outpost/containerd.log" >&2; exit 1; fi
  sleep 0.1
done

outpostd --config /etc/outpost/config.toml &
outpostd_pid=$!
trap 'kill -TERM "$outpostd_pid"' TERM INT

# Modules' images come with the device (no registry is reachable): imported once the agent
# serves. (The agent sees outpostd's image directory, so the paths are the same for it.)
(
  i=0
  until outpost list >/dev/null 2>&1; do
    i=$((i + 1)); [ "$i" -gt 600 ] && exit 0; sleep 0.5
  done
  for archive in /usr/share/outpost/images/modules/*.tar; do
    [ -e "$archive" ] && outpost import "$archive" >/dev/null
  done
) &

wait "$outpostd_pid" || status=$?
wait "$outpostd_pid" 2>/dev/null || true
kill -TERM "$containerd_pid" 2>/dev/null || true
wait "$containerd_pid" 2>/dev/null || true
exit "${status:-0}"
