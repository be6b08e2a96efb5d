#!/usr/bin/env bash
# Install everything the tests and the demo need on a fresh Debian 12 machine
# (run as root), and nothing twice: apt only for missing packages, the venv only
# when tests/requirements.txt changed.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
    libvirt-daemon-system libvirt-clients
    libvirt-daemon-driver-storage-rbd
    qemu-utils qemu-system-x86 qemu-block-extra
    python3-libvirt python3-lxml python3-venv
    lvm2 attr uuid-runtime e2fsprogs xfsprogs
    shellcheck
    ceph-mon ceph-osd ceph-mgr ceph-common python3-rados python3-rbd
    mmdebstrap dnsmasq-base iptables
    chromium fonts-dejavu-core
)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

VENV=.venv
stamp="$VENV/.requirements.sha256"
want=$(sha256sum tests/requirements.txt | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: creating $VENV"
    rm -rf "$VENV"
    # Debian's libvirt bindings import only in /usr/bin/python3: see them from the venv.
    /usr/bin/python3 -m venv --system-site-packages "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r tests/requirements.txt
    echo "$want" > "$stamp"
fi

# Nova's own code for the tests where Nova is the client, in a venv of its own (see
# tests/nova-requirements.txt); only Debian's libvirt bindings are linked into it.
NOVA_VENV=.venv-nova
stamp="$NOVA_VENV/.requirements.sha256"
want=$(sha256sum tests/nova-requirements.txt | cut -d' ' -f1)
if [ ! -x "$NOVA_VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: creating $NOVA_VENV"
    rm -rf "$NOVA_VENV"
    /usr/bin/python3 -m venv "$NOVA_VENV"
    "$NOVA_VENV/bin/pip" install -q --disable-pip-version-check -r tests/nova-requirements.txt
    bindings="$NOVA_VENV/libvirt-bindings"
    mkdir -p "$bindings"
    ln -sf /usr/lib/python3/dist-packages/libvirt.py /usr/lib/python3/dist-packages/libvirtmod.cpython-311-*.so \
        /usr/lib/python3/dist-packages/libvirt_qemu.py /usr/lib/python3/dist-packages/libvirtmod_qemu.cpython-311-*.so \
        "$bindings/"
    "$NOVA_VENV/bin/python" -c 'import site; print(site.getsitepackages()[0])' | xargs -I{} sh -c "echo $PWD/$bindings > {}/libvirt-bindings.pth"
    "$NOVA_VENV/bin/python" -W ignore -c 'import libvirt, nova.virt.libvirt.imagecache, nova.virt.libvirt.driver'
    echo "$want" > "$stamp"
fi

# ansible-builder for the execution-environment test, in a venv of its own.
scripts/tool-venv.sh .build/builder-venv tests/builder-requirements.txt

# The collection is importable as ansible_collections.storagepools.libvirt from
# .build/collections (the repository root is the collection root).
mkdir -p .build/collections/ansible_collections/storagepools
ln -sfn "$PWD" .build/collections/ansible_collections/storagepools/libvirt

# ansible-test --venv fetches get-pip.py from a host outside the package
# registries; give it our offline stand-in under the name it looks for.
pip_version=$("$VENV/bin/python" - <<'PY'
import re, ansible_test, os
src = open(os.path.join(os.path.dirname(ansible_test.__file__), '_internal', 'python_requirements.py')).read()
print(re.search(r"pip='([0-9.]+)'", src).group(1))
PY
)
mkdir -p "$HOME/.ansible/test/cache"
cp scripts/get-pip-offline.py "$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
