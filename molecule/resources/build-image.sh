#!/usr/bin/env bash
# Build (once) the Debian 12 guest image the Molecule scenarios boot: a qcow2
# root filesystem plus the kernel and initrd for direct kernel boot, with
# everything the scenarios need baked in (installing inside a TCG guest takes
# minutes). Cached under $STORAGEPOOLS_IMAGE_CACHE (default /var/cache/storagepools-libvirt), keyed on this
# script's content. Packages come from this machine's own apt sources, handed to mmdebstrap as files (given
# no mirror it would fall back to a built-in one), so a host behind a local mirror builds the same image.
#   build-image.sh  -> prints the cache directory (root.qcow2, vmlinuz, initrd.img, id_ed25519)
set -euo pipefail
exec 3>&1 1>&2  # stdout carries only the cache directory; everything else goes to stderr
key=$(sha256sum "$0" | cut -c1-16)
cache=${STORAGEPOOLS_IMAGE_CACHE:-/var/cache/storagepools-libvirt}/guest-$key
if [ -f "$cache/done" ]; then
    echo "$cache" >&3
    exit 0
fi
command -v mmdebstrap >/dev/null || {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
}
# Images of earlier versions of this script are of no further use (on a fresh machine there are none).
mkdir -p "$(dirname "$cache")"
find "$(dirname "$cache")" -maxdepth 1 -name 'guest-*' ! -name "$(basename "$cache")" -exec rm -rf {} +
rm -rf "$cache" && mkdir -p "$cache" && chmod 0755 "$cache"
work=$(mktemp -d /var/tmp/spl-image-XXXXXX)
trap 'rm -rf "$work"' EXIT
ssh-keygen -q -t ed25519 -N '' -f "$cache/id_ed25519"
packages=(
    linux-image-cloud-amd64 initramfs-tools systemd-sysv udev dbus systemd-resolved openssh-server
    python3 python3-libvirt python3-lxml lvm2 e2fsprogs sudo iproute2 attr
    libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils
)
sources=()
for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -s "$file" ] && sources+=("$file")
done
[ "${#sources[@]}" -gt 0 ] || { echo "build-image.sh: this machine has no apt sources configured" >&2; exit 1; }
# The hooks are run by mmdebstrap's own shell with the root filesystem as $1:
# single quotes are meant (SC2016).
# shellcheck disable=SC2016
mmdebstrap --quiet --variant=apt --include="$(IFS=,; echo "${packages[*]}")" \
    --customize-hook='echo "/dev/vda / ext4 defaults 0 1" > "$1/etc/fstab"' \
    --customize-hook='mkdir -p "$1/etc/systemd/network" && printf "[Match]\nName=e*\n[Network]\nDHCP=yes\n" > "$1/etc/systemd/network/10-eth.network"' \
    --customize-hook='chroot "$1" systemctl enable systemd-networkd systemd-resolved serial-getty@ttyS0 >/dev/null 2>&1' \
    --customize-hook='ln -sf /run/systemd/resolve/stub-resolv.conf "$1/etc/resolv.conf"' \
    --customize-hook='for t in apt-daily.timer apt-daily-upgrade.timer; do chroot "$1" systemctl mask $t >/dev/null 2>&1; done' \
    --customize-hook="mkdir -p \"\$1/root/.ssh\" && cp '$cache/id_ed25519.pub' \"\$1/root/.ssh/authorized_keys\" && chmod 700 \"\$1/root/.ssh\"" \
    --customize-hook='cp "$1"/boot/vmlinuz-* '"$work"'/vmlinuz && cp "$1"/boot/initrd.img-* '"$work"'/initrd.img' \
    bookworm "$work/rootfs" "${sources[@]}"
cp "$work/vmlinuz" "$work/initrd.img" "$cache/"
mkfs.ext4 -q -d "$work/rootfs" "$work/root.ext4" 4G
qemu-img convert -q -c -f raw -O qcow2 "$work/root.ext4" "$cache/root.qcow2"
chmod 0644 "$cache"/root.qcow2 "$cache"/vmlinuz "$cache"/initrd.img
touch "$cache/done"
echo "$cache" >&3
