# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What side_effect.yml's steps did, as seen inside the guest: one JSON per stage for tests/test_lvm.py.

    python3 observe.py STAGE [--no-lv-data]

writes /root/side-effect/STAGE.json: every LV of nova-vg (tags, origin, and the sha256 of its whole
content unless --no-lv-data), what libvirt lists in the disks pool (its list as the modules left it: no
refresh here), every entry under instances_path (lstat, without following a link; a regular file's
sha256), and every domain's inactive XML by uuid.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys

import libvirt

VG = 'nova-vg'
POOL = 'nova-disks-pool'
INSTANCES = '/var/lib/nova/instances'
OUT = '/root/side-effect'


def sha256(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def logical_volumes(data):
    out = subprocess.run(['lvs', '--noheadings', '--separator', '|', '-o', 'lv_name,lv_tags,origin', VG],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    found = {}
    for line in out.splitlines():
        name, tags, origin = line.strip().split('|')
        found[name] = {'tags': sorted(tag for tag in tags.split(',') if tag), 'origin': origin,
                       'sha256': sha256('/dev/%s/%s' % (VG, name)) if data else None}
    return found


def instance_files():
    found = {}
    for directory, subdirectories, files in os.walk(INSTANCES):  # os.walk follows no link by default
        for name in subdirectories + files:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            entry = {'mode': stat.S_IMODE(info.st_mode), 'ino': info.st_ino, 'mtime_ns': info.st_mtime_ns,
                     'size': info.st_size}
            if stat.S_ISLNK(info.st_mode):
                entry['link'] = os.readlink(path)
            elif stat.S_ISREG(info.st_mode):
                entry['sha256'] = sha256(path)
            else:
                entry['directory'] = stat.S_ISDIR(info.st_mode)
            found[path] = entry
    return found


def main(stage, data=True):
    conn = libvirt.open('qemu:///system')
    try:
        listed = sorted(conn.storagePoolLookupByName(POOL).listVolumes())
        flags = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE
        domains = dict((domain.UUIDString(), domain.XMLDesc(flags)) for domain in conn.listAllDomains(0))
    finally:
        conn.close()
    observed = {'lvs': logical_volumes(data), 'listed': listed, 'files': instance_files(), 'domains': domains}
    os.makedirs(OUT, mode=0o700, exist_ok=True)
    with open(os.path.join(OUT, '%s.json' % stage), 'w', encoding='utf-8') as handle:
        json.dump(observed, handle, indent=1, sort_keys=True)


if __name__ == '__main__':
    main(sys.argv[1], data='--no-lv-data' not in sys.argv[2:])
