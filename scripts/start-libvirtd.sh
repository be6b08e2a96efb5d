#!/usr/bin/env bash
# Start virtlogd + libvirtd without systemd (PID 1 here is not systemd) unless a
# daemon already answers on qemu:///system. Safe to call when one runs: a shared
# daemon is reused, never restarted.
set -euo pipefail
answers() { timeout 5 virsh -c qemu:///system list >/dev/null 2>&1; }
if answers; then
    exit 0
fi
mkdir -p /var/run/libvirt /var/log/libvirt
pgrep -x virtlogd >/dev/null || virtlogd -d
pgrep -x libvirtd >/dev/null || libvirtd -d
# QEMU runs as libvirt-qemu; /dev/kvm (when present) must be reachable for it.
if [ -e /dev/kvm ]; then chgrp kvm /dev/kvm && chmod 0660 /dev/kvm; fi
for _ in $(seq 1 600); do
    answers && exit 0
    sleep 0.1
done
echo "libvirtd did not answer on qemu:///system within 60 s; see /var/log/libvirt" >&2
exit 1
