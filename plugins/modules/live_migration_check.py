#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: live_migration_check
short_description: Whether a destination host is ready for Nova's block live migration of adopted instances
version_added: 0.2.0
description:
  - Read only. For each instance, compares its domain on the source (O(uri)) with the pools and volumes of the
    destination (O(destination_uri)) the way Nova's block live migration will use them (docs/live-migration.md).
  - Nova migrates with libvirt's incremental block copy and sends the domain XML with the pool paths unchanged,
    and the destination's libvirt then refuses to precreate a missing disk. So every disk in a pool must already
    exist on the destination at the same path - the same pool (same target) active, the volume there with the
    same format and size, a qcow2 one over the same backing file, which must exist there too.
  - Disks Nova does not copy (readonly or shareable ones, such as the config drive) must hold the source's bytes
    on the destination; they are compared by SHA-256, read through libvirt on each side.
  - A C(type=volume) disk is refused (RV(instances.refused)) - Nova neither lists nor copies it.
  - RV(instances.after_migration) says what must be done on the destination after the migration (Nova leaves no
    legacy links there).
author:
  - storagepools.libvirt team (@storagepools)
extends_documentation_fragment:
  - storagepools.libvirt.connection
  - storagepools.libvirt.connection.info
options:
  destination_uri:
    description: The libvirt URI of the destination host, for example C(qemu+ssh://root@compute2/system).
    type: str
    required: true
  instances:
    description: The instances to check, by domain uuid or name.
    type: list
    elements: str
    required: true
  instances_path:
    description:
      - Nova's C(instances_path) (the same on both hosts). A disk still at its legacy path in
        C(<instances_path>/<uuid>/) is created there by Nova itself and needs nothing.
    type: path
    default: /var/lib/nova/instances
  require_ready:
    description: Fail (a preflight) unless every instance is ready; the message lists what is missing or refused.
    type: bool
    default: false
seealso:
  - module: storagepools.libvirt.legacy_disk_adopt
  - module: storagepools.libvirt.virt_pool_ensure
'''

EXAMPLES = r'''
- name: Preflight before live-migrating two adopted instances to compute2
  storagepools.libvirt.live_migration_check:
    destination_uri: qemu+ssh://root@compute2/system
    instances:
      - 6f1c2a0e-4a7b-4f0e-9d59-3c1c8f0e2b11
      - instance-0000002a
    require_ready: true
'''

RETURN = r'''
ready:
  description: Whether every instance is ready to migrate.
  returned: always
  type: bool
instances:
  description: Per instance uuid, the check.
  returned: always
  type: dict
  contains:
    ready:
      description: No problem and nothing refused.
      type: bool
    problems:
      description: What the destination lacks (each fixable before the migration).
      type: list
      elements: str
    refused:
      description: What no preparation makes safe.
      type: list
      elements: str
    disks:
      description:
        - Per disk - target, device, type, path, copied (whether Nova's migration copies it), made_by_nova (a
          legacy path Nova creates itself), needs (the volume to precreate), problems, refused.
      type: list
      elements: dict
    after_migration:
      description: What to do on the destination once the instance runs there.
      type: list
      elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.live_migration import check_destination
from ansible_collections.storagepools.libvirt.plugins.module_utils._core import names
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.module import run_module
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.connection import (
    missing_libraries,
    open_connection,
    require_local_uri,
)


def run(module):
    params = module.params
    names.check_options(params, {'instances_path': names.path})
    # The source's instance directories are read here; the destination is any host libvirt reaches.
    require_local_uri(params['uri'], 'the check reads the instance directories of the source')
    if not params['instances']:
        raise StoragePoolsError('instances: name at least one instance (uuid or domain name)')
    source = open_connection(params['uri'])
    try:
        destination = open_connection(params['destination_uri'])
        try:
            checks = [check_destination(source, destination, instance, params['instances_path'])
                      for instance in params['instances']]
        finally:
            destination.close()
    finally:
        source.close()
    ready = all(item['ready'] for item in checks)
    if params['require_ready'] and not ready:
        reasons = ['%s: %s' % (item['uuid'], reason) for item in checks for reason in item['refused'] + item['problems']]
        raise StoragePoolsError('require_ready: the destination is not ready for a block live migration: '
                                + '; '.join(reasons))
    return dict(changed=False, ready=ready, instances={item['uuid']: item for item in checks})


def main():
    module = AnsibleModule(
        argument_spec=dict(
            destination_uri=dict(type='str', required=True),
            instances=dict(type='list', elements='str', required=True),
            instances_path=dict(type='path', default='/var/lib/nova/instances'),
            require_ready=dict(type='bool', default=False),
            uri=dict(type='str', default='qemu:///system'),
        ),
        supports_check_mode=True,
    )
    run_module(module, run, missing_libraries=missing_libraries)


if __name__ == '__main__':
    main()
