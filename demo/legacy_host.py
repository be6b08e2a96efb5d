# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The demo's fake legacy Nova compute host, made afresh on the local libvirtd.

Removes what an earlier demo made, and only that: the domains and pools
recorded in DIR/demo-state.json (a pool only when its target is inside DIR),
then DIR itself. Then makes DIR/nova with shut-off OS-less domains whose disks
are legacy files: qcow2 overlays on _base (one written by an old qemu, without
backing format), raw ephemeral disks, config drives, disk.info. The POOL names
are the pools the demo's transition will make: recorded before it runs, and
refused when libvirt already has a pool of that name the demo did not make.
Usage: legacy_host.py DIR INSTANCES POOL... (or legacy_host.py --reset DIR: only the removal)
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import xml.etree.ElementTree as ET

import libvirt

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(REPO, '.build', 'collections'), os.path.join(REPO, 'tests', 'integration')]

from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.connection import (  # noqa: E402
    lookup_pool,
    open_connection,
)
from nova_host import NovaHost  # noqa: E402

PREFIX = 'demo-instance'
STATE = 'demo-state.json'


class DemoError(Exception):
    pass


def read_state(root):
    """What the last demo under ``root`` made ({domains: [uuid], pools: [name]}); refuses a ``root`` that
    exists without the demo's record (it is someone else's)."""
    if not os.path.lexists(root):
        return {'domains': [], 'pools': []}
    try:
        with open(os.path.join(root, STATE)) as handle:
            return json.load(handle)
    except (OSError, ValueError) as exc:
        raise DemoError('%s exists but holds no readable %s (%s): not made by the demo; remove it yourself or '
                        'pick another directory' % (root, STATE, exc))


def write_state(root, state):
    path = os.path.join(root, STATE)
    with open(path + '.tmp', 'w') as handle:
        json.dump(state, handle, indent=2)
    os.replace(path + '.tmp', path)


def pool_target(pool):
    path = ET.fromstring(pool.XMLDesc(0)).findtext('target/path') or ''
    return os.path.realpath(path)


def inside(path, root):
    return os.path.commonpath([path, os.path.realpath(root)]) == os.path.realpath(root)


def reset(conn, root):
    """Undefine the domains and pools the last demo recorded (a pool only with its target inside ``root``),
    then remove ``root``."""
    state = read_state(root)
    for uuid in state['domains']:
        try:
            domain = conn.lookupByUUIDString(uuid)
        except libvirt.libvirtError:  # gone already
            continue
        if domain.isActive():
            domain.destroy()
        domain.undefine()
    for name in state['pools']:
        pool = lookup_pool(conn, name)
        if pool is None:
            continue
        if not inside(pool_target(pool), root):
            print('demo: pool %s has its target outside %s: not the demo\'s, left alone' % (name, root))
            continue
        if pool.isActive():
            pool.destroy()
        pool.undefine()
    shutil.rmtree(root, ignore_errors=True)


def main():
    if sys.argv[1] == '--reset':
        conn = open_connection('qemu:///system')
        try:
            reset(conn, sys.argv[2])
        except DemoError as exc:
            sys.exit('demo: %s' % exc)
        finally:
            conn.close()
        return
    root, count, pools = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    conn = open_connection('qemu:///system')
    try:
        reset(conn, root)
        foreign = [name for name in pools if lookup_pool(conn, name) is not None]
        if foreign:
            raise DemoError('libvirt already has pool(s) %s that the demo did not make; the demo leaves them '
                            'alone and stops' % ', '.join(foreign))
        os.makedirs(root, mode=0o755)
        state = {'domains': [], 'pools': pools}  # recorded before the transition makes them
        write_state(root, state)
        host = NovaHost(conn, os.path.join(root, 'nova'), PREFIX)
        for index in range(count):
            state['domains'].append(host.instance(config=index % 2 == 0,
                                                  backing_format=None if index == 0 else 'raw'))
            write_state(root, state)
    except DemoError as exc:
        sys.exit('demo: %s' % exc)
    finally:
        conn.close()
    print('fake legacy Nova host: %s with %d shut-off instances' % (host.instances, count))
    print('nova.conf: %s' % host.nova_conf)


if __name__ == '__main__':
    main()
