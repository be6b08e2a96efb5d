# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The demo's fake legacy Nova compute host, made afresh on the local libvirtd.

Removes what an earlier demo left (its domains, its pools, its directory),
then makes DIR/nova with shut-off OS-less domains whose disks are legacy
files: qcow2 overlays on _base (one written by an old qemu, without backing
format), raw ephemeral disks, config drives, disk.info. Usage:
legacy_host.py DIR INSTANCES
"""

from __future__ import annotations

import os
import shutil
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(REPO, '.build', 'collections'), os.path.join(REPO, 'tests', 'integration')]

from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.connection import (
    open_connection  # noqa: E402,
)
from nova_host import NovaHost  # noqa: E402

PREFIX = 'demo-instance'


def reset(conn, root):
    for domain in conn.listAllDomains(0):
        if domain.name().startswith(PREFIX + '-'):
            if domain.isActive():
                domain.destroy()
            domain.undefine()
    for pool in conn.listAllStoragePools(0):
        if pool.name().startswith('demo-'):
            if pool.isActive():
                pool.destroy()
            pool.undefine()
    shutil.rmtree(root, ignore_errors=True)


def main():
    root, count = sys.argv[1], int(sys.argv[2])
    conn = open_connection('qemu:///system')
    reset(conn, root)
    os.makedirs(root, mode=0o755)
    host = NovaHost(conn, os.path.join(root, 'nova'), PREFIX)
    for index in range(count):
        host.instance(config=index % 2 == 0, backing_format=None if index == 0 else 'raw')
    print('fake legacy Nova host: %s with %d shut-off instances' % (host.instances, count))
    print('nova.conf: %s' % host.nova_conf)


if __name__ == '__main__':
    main()
