#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: nova_image_cache
short_description: Record Nova's image cache (_base) in its pool, and import it into a logical or rbd pool
version_added: 0.1.0
description:
  - "Nova's image cache C(<instances_path>/_base) is the cache pool (a dir pool on C(_base), see
    M(storagepools.libvirt.virt_pool_ensure)); nothing in it moves. This module gives every base there
    its recorded metadata (format, virtual size, source), in one call for the whole host."
  - With O(dest_pool) naming an rbd pool, every base is also imported as an rbd image of the same name,
    compared with its source, recorded (image-meta) and given a protected snapshot C(storagepools-base),
    the parent of copy-on-write clones (M(storagepools.libvirt.virt_volume_clone) with
    O(storagepools.libvirt.virt_volume_clone#module:mode=cow)).
  - With O(dest_pool) naming a logical pool, every base is also imported as a thick LV of the same name
    (zeroes where the base has none), compared with its source and recorded (LV tags); copy-on-write clones
    of it are LVM snapshots.
  - "A base's format is never probed: it comes from its own record, else from the backing format the
    host's qcow2 overlays name for it in their headers (they must agree), else from nova.conf
    C(force_raw_images) (default true: Nova cached every image as raw). Then the bytes are checked
    against it: a base declared raw that carries another format's header, a qcow2 with a backing file or
    a data file, a VMDK with extents are refused and reported."
  - Bases that legacy instances still use stay where they are; imports copy.
author:
  - storagepools.libvirt team (@storagepools)
extends_documentation_fragment:
  - storagepools.libvirt.connection
  - storagepools.libvirt.connection.planned_pools
attributes:
  check_mode:
    description: Computes the same results as a real run and writes nothing.
    support: full
  diff_mode:
    description: No diff; RV(images) says what each base gets.
    support: none
options:
  instances_path:
    description: Nova's C(instances_path); the bases are in its C(_base).
    type: path
    default: /var/lib/nova/instances
  cache_pool:
    description: The cache pool, a pool whose target is C(<instances_path>/_base).
    type: str
    default: nova-base-images-pool
  dest_pool:
    description: A logical or rbd pool to import every base into. Without it the cache stays (only) in
      C(_base).
    type: str
  ceph_keyring:
    description:
      - With an rbd O(dest_pool), a keyring on the managed host with the key of the pool's C(source.auth)
        user (the key never appears on a command line). Defaults to C(/etc/ceph/ceph.client.<user>.keyring).
    type: path
  nova_conf:
    description: Nova's configuration file, read for C(force_raw_images).
    type: path
    default: /etc/nova/nova.conf
'''

EXAMPLES = r'''
- name: Record every base of the image cache in place (dir backend)
  storagepools.libvirt.nova_image_cache:

- name: Import the image cache into the rbd pool, with protected snapshots for clones
  storagepools.libvirt.nova_image_cache:
    dest_pool: nova-disks-pool
    ceph_keyring: /etc/ceph/ceph.client.nova.keyring
'''

RETURN = r'''
images:
  description: Per base file name, what it got.
  returned: success
  type: dict
  contains:
    result:
      description: V(changed) (recorded and/or imported), V(unchanged), V(skipped) or V(failed).
      type: str
    reason:
      description: Why a base was skipped or failed.
      type: str
    format:
      description: The base's format (recorded; never probed).
      type: str
    virtual_size:
      description: Its virtual size in bytes.
      type: int
    volume:
      description: With O(dest_pool), the imported volume {name, pool, path, format, capacity, backing}.
      type: dict
    actions:
      description: The ordered plan for the base (record, create, convert or import, verify, snapshot, ...)
        that the run carried out, or would carry out in check mode.
      type: list
      elements: dict
summary:
  description: How many bases ended in each result.
  returned: success
  type: dict
  sample: {changed: 2, unchanged: 48, skipped: 1, failed: 0}
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.image_cache import ImageCache
from ansible_collections.storagepools.libvirt.plugins.module_utils._core import names
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.module import each_item, run_module, summarise
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.connection import (
    missing_libraries,
    open_connection,
    require_local_uri,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.pool import (
    endpoint_or_planned,
    planned_definitions,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._nova import layout as nova_layout

RESULTS = ('changed', 'unchanged', 'skipped', 'failed')


def run(module):
    params = module.params
    names.check_options(params, {'cache_pool': names.pool_name, 'dest_pool': names.pool_name,
                                 'instances_path': names.path, 'nova_conf': names.path, 'ceph_keyring': names.path})
    require_local_uri(params['uri'], 'the bases are files')
    nova_conf = nova_layout.NovaConf(params['nova_conf'])
    planned = planned_definitions(params['planned_pools'] if module.check_mode else None, 'planned_pools')
    conn = open_connection(params['uri'])
    try:
        pool = endpoint_or_planned(conn, params['cache_pool'], 'cache_pool', planned, 'planned_pools')
        base_dir = os.path.join(os.path.normpath(params['instances_path']), nova_layout.BASE_DIR)
        if pool.target != base_dir:
            raise StoragePoolsError("cache_pool: pool '%s' has target %s, not %s" % (pool.name, pool.target, base_dir))
        if params['dest_pool'] is not None:
            dest = endpoint_or_planned(conn, params['dest_pool'], 'dest_pool', planned, 'planned_pools')
            if dest.type not in ('logical', 'rbd'):
                raise StoragePoolsError("dest_pool: '%s' is a %s pool; the cache is imported into logical and "
                                        "rbd pools (a dir cache stays in _base)" % (dest.name, dest.type))
        cache = ImageCache(conn, params['uri'], params['instances_path'], nova_conf, module.check_mode,
                           params['dest_pool'], params['ceph_keyring'])
        try:
            images = each_item(cache.bases(), cache.ensure, {'format': None, 'virtual_size': None, 'volume': None,
                                                             'actions': []})
        finally:
            cache.close()
    finally:
        conn.close()
    summary = summarise(images, RESULTS)
    outcome = dict(changed=summary['changed'] > 0, images=images, summary=summary)
    if summary['failed']:
        raise StoragePoolsError('%(failed)d base(s) failed; see images' % summary, **outcome)
    return outcome


def main():
    module = AnsibleModule(
        argument_spec=dict(
            instances_path=dict(type='path', default='/var/lib/nova/instances'),
            cache_pool=dict(type='str', default='nova-base-images-pool'),
            dest_pool=dict(type='str'),
            ceph_keyring=dict(type='path', no_log=False),  # a path, not a secret
            nova_conf=dict(type='path', default='/etc/nova/nova.conf'),
            planned_pools=dict(type='list', elements='dict'),
            uri=dict(type='str', default='qemu:///system'),
        ),
        supports_check_mode=True,
    )
    run_module(module, run, missing_libraries=missing_libraries)


if __name__ == '__main__':
    main()
