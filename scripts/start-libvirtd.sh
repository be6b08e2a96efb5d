#!/usr/bin/env bash
# Start virtlogd + libvirtd without systemd (PID 1 here is not systemd) unless a
# daemon already answers on qemu:///system. Safe to call when one runs: a shared
# daemon is reused, never restarted. Daemons are known by their pidfiles (the
# system defaults), never by process name: another libvirtd on this machine (a
# second host in its own namespace) is not ours to count.
set -euo pipefail
answers() { timeout 5 virsh -c qemu:///system list >/dev/null 2>&1; }
if answers; then
    exit 0
fi
mkdir -p /var/run/libvirt /var/log/libvirt
running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
running /run/virtlogd.pid || virtlogd -d -p /run/virtlogd.pid
running /run/libvirtd.pid || libvirtd -d -p /run/libvirtd.pid
# QEMU runs as libvirt-qemu; /dev/kvm (when present) must be reachable for it.
if [ -e /dev/kvm ]; then chgrp kvm /dev/kvm && chmod 0660 /dev/kvm; fi
for _ in $(seq 1 600); do
    answers && exit 0
    sleep 0.1
done
echo "libvirtd did not answer on qemu:///system within 60 s; see /var/log/libvirt" >&2
exit 1
