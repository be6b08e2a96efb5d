#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: virt_pool_info
short_description: Facts about libvirt storage pools, their volumes and recorded metadata
version_added: 0.1.0
description:
  - Reads libvirt storage pools, and optionally their volumes, without changing anything.
  - A volume's format is reported only from the metadata this collection recorded with the volume
    (RV(pools.volumes[].metadata)), never from libvirt's probe of the file, which a guest can steer.
author:
  - storagepools.libvirt team (@storagepools)
extends_documentation_fragment:
  - storagepools.libvirt.connection
  - storagepools.libvirt.connection.info
options:
  name:
    description: Only this pool. All pools when left out.
    type: str
  volumes:
    description: Also list the volumes of active pools.
    type: bool
    default: false
  instances_path:
    description:
      - Nova's C(instances_path). With it, each volume named C({instance_uuid}_{disk}) says whether its
        instance directory is gone (RV(pools.volumes[].orphaned)), and RV(orphans) lists those volumes
        (Nova deletes an adopted instance's directory and links, not its pool volumes).
    type: path
  ceph_keyring:
    description:
      - For V(rbd) pools, a keyring on the managed host with the key of the pool's C(source.auth) user; with it
        the recorded metadata of rbd volumes (their image-meta) is read too. Without it, it is None.
    type: path
  refresh:
    description:
      - Refresh active pools before listing volumes, so files created outside libvirt show up.
      - Off by default; a refresh makes libvirt probe every file of a directory pool.
    type: bool
    default: false
seealso:
  - module: storagepools.libvirt.virt_pool_ensure
'''

EXAMPLES = r'''
- name: All pools
  storagepools.libvirt.virt_pool_info:
  register: pools

- name: One pool with its volumes
  storagepools.libvirt.virt_pool_info:
    name: nova-disks-pool
    volumes: true
  register: disks

- name: Show the recorded format of every disk
  ansible.builtin.debug:
    msg: "{{ item.name }}: {{ item.metadata.format | default('not recorded') }}"
  loop: "{{ disks.pools['nova-disks-pool'].volumes }}"
'''

RETURN = r'''
pools:
  description: Pools keyed by name.
  returned: success
  type: dict
  contains:
    uuid:
      description: Pool uuid.
      type: str
    type:
      description: Pool type (dir, fs, netfs, logical, rbd, ...).
      type: str
    state:
      description: V(active) or V(inactive).
      type: str
    autostart:
      description: Whether libvirt starts the pool with the daemon.
      type: bool
    persistent:
      description: Whether the pool is defined (not transient).
      type: bool
    target:
      description: Target path, when the pool type has one.
      type: str
    capacity:
      description: Size in bytes (0 while inactive).
      type: int
    allocation:
      description: Bytes in use (0 while inactive).
      type: int
    available:
      description: Bytes free (0 while inactive).
      type: int
    volumes:
      description: The pool's volumes, with O(volumes=true) and an active pool; None otherwise.
      type: list
      elements: dict
      contains:
        name:
          description: Volume name.
          type: str
        path:
          description: Path (or rbd name) of the volume.
          type: str
        capacity:
          description: Virtual size in bytes.
          type: int
        allocation:
          description: Bytes allocated.
          type: int
        instance_uuid:
          description: The instance a C({instance_uuid}_{disk}) volume belongs to, else None.
          type: str
        orphaned:
          description: With O(instances_path), whether the instance's directory is gone; else None.
          type: bool
        metadata:
          description:
            - The recorded storage metadata (format, virtual size, source, backing), or None
              when the volume has none (for example a file put there by hand).
            - Kept with the data - file pools, the C(user.storagepools.libvirt) xattr; logical pools, the LV's
              tags; rbd pools, the image-meta (read with O(ceph_keyring)).
          type: dict
  sample:
    nova-disks-pool:
      uuid: 5cf989ef-8475-4102-af1f-de0d65b7406b
      type: dir
      state: active
      autostart: true
      persistent: true
      target: /var/lib/nova/disks
      capacity: 270553174016
      allocation: 23359963136
      available: 247193210880
      volumes: null
orphans:
  description: With O(instances_path), the volumes whose instance directory is gone.
  returned: success
  type: list
  elements: dict
  contains:
    pool:
      description: Pool name.
      type: str
    volume:
      description: Volume name.
      type: str
    instance_uuid:
      description: The instance the volume belonged to.
      type: str
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.storagepools.libvirt.plugins.module_utils import lvm, names, nova_layout, xml_tree
from ansible_collections.storagepools.libvirt.plugins.module_utils.connection import (
    error_text,
    libvirt,
    lookup_pool,
    open_connection,
    run_module,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils.metadata import (
    FILE_POOL_TYPES,
    MetadataError,
    read_file_metadata,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils.pool_plan import is_local_uri
from ansible_collections.storagepools.libvirt.plugins.module_utils.rbd_volume import RbdPool


def instance_of(volume_name):
    """The instance uuid of a ``{instance_uuid}_{disk}`` volume name, else None."""
    prefix, sep, _disk = volume_name.partition('_')
    return prefix.lower() if sep and nova_layout.is_uuid(prefix) else None


def volume_facts(pool, definition, local, instances_path, ceph_keyring):
    pool_type = definition.get('type')
    ceph = lv_records = None
    if pool_type == 'rbd' and ceph_keyring:
        ceph = RbdPool(definition, ceph_keyring)
    if pool_type == 'logical' and local:  # every LV's tags in one lvs call
        lv_records = lvm.read_records(xml_tree.child_text(definition, 'source/name'))
    try:
        return [one_volume(volume, pool_type, local, instances_path, ceph, lv_records)
                for volume in sorted(pool.listAllVolumes(0), key=lambda vol: vol.name())]
    finally:
        if ceph is not None:
            ceph.close()


def one_volume(volume, pool_type, local, instances_path, ceph, lv_records):
    """The facts of one volume; its metadata from the record kept with its data."""
    _kind, capacity, allocation = volume.info()
    path = volume.path()
    metadata = None
    if local and pool_type in FILE_POOL_TYPES:
        try:
            metadata = read_file_metadata(path)
        except (OSError, MetadataError) as exc:
            raise StoragePoolsError('volumes: cannot read the metadata of %s: %s' % (path, exc))
    elif lv_records is not None:
        metadata = lv_records.get(volume.name())
    elif ceph is not None:
        try:
            metadata = ceph.read_metadata(volume.name())
        except ValueError as exc:
            raise StoragePoolsError('volumes: the metadata of %s is not JSON: %s' % (path, exc))
    instance_uuid = instance_of(volume.name())
    orphaned = None
    if instances_path and instance_uuid:
        orphaned = not os.path.isdir(os.path.join(instances_path, instance_uuid))
    return dict(name=volume.name(), path=path, capacity=capacity, allocation=allocation,
                instance_uuid=instance_uuid, orphaned=orphaned, metadata=metadata)


def pool_facts(pool, want_volumes, refresh, local, instances_path, ceph_keyring):
    definition = xml_tree.parse(pool.XMLDesc(0), 'pool')
    _state, capacity, allocation, available = pool.info()
    active = bool(pool.isActive())
    facts = dict(
        uuid=pool.UUIDString(),
        type=definition.get('type'),
        state='active' if active else 'inactive',
        autostart=bool(pool.autostart()),
        persistent=bool(pool.isPersistent()),
        target=xml_tree.child_text(definition, 'target/path'),
        capacity=capacity, allocation=allocation, available=available,
        volumes=None,
    )
    if want_volumes and active:
        if refresh:
            pool.refresh(0)
        facts['volumes'] = volume_facts(pool, definition, local, instances_path, ceph_keyring)
    return facts


def run(module):
    params = module.params
    names.check_options(params, {'name': names.pool_name, 'instances_path': names.path, 'ceph_keyring': names.path})
    conn = open_connection(params['uri'])
    try:
        if params['name']:
            pool = lookup_pool(conn, params['name'])
            if pool is None:
                raise StoragePoolsError("name: libvirt has no pool named '%s'" % params['name'])
            pools = [pool]
        else:
            pools = conn.listAllStoragePools(0)
        local = is_local_uri(params['uri'])
        result = {}
        for pool in pools:
            try:
                result[pool.name()] = pool_facts(pool, params['volumes'] or bool(params['instances_path']),
                                                 params['refresh'], local, params['instances_path'],
                                                 params['ceph_keyring'])
            except libvirt.libvirtError as exc:
                if params['name']:
                    raise StoragePoolsError("name: reading pool '%s' failed" % params['name'],
                                            libvirt_error=error_text(exc))
                # a pool undefined by someone else while we listed: not ours to report
    finally:
        conn.close()
    orphans = [dict(pool=name, volume=volume['name'], instance_uuid=volume['instance_uuid'])
               for name, facts in sorted(result.items()) for volume in facts['volumes'] or [] if volume['orphaned']]
    return dict(changed=False, pools=result, orphans=orphans)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type='str'),
            volumes=dict(type='bool', default=False),
            refresh=dict(type='bool', default=False),
            instances_path=dict(type='path'),
            ceph_keyring=dict(type='path', no_log=False),  # a path, not a secret
            uri=dict(type='str', default='qemu:///system'),
        ),
        supports_check_mode=True,
    )
    run_module(module, run)


if __name__ == '__main__':
    main()
