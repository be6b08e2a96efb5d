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
  - The volumes of file pools (V(dir), V(fs), V(netfs)) are sized from the files themselves, never with
    libvirt's volume info, which re-probes the file and opens the backing file a qcow2 header names. A
    symbolic link in the pool is reported, not followed; a regular file is opened once (C(O_NOFOLLOW)) and its
    size, allocation and record are read through that descriptor. Logical and rbd volumes are sized by libvirt
    (from C(lvs) and librbd, which read no volume's bytes); other pool types' volumes get no sizes.
author:
  - storagepools.libvirt team (@storagepools)
extends_documentation_fragment:
  - storagepools.libvirt.connection
  - storagepools.libvirt.connection.info
options:
  name:
    description: Only this pool. All pools when left out (then O(instances_path) is refused).
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
      - Needs O(name); only the pool the task names is looked at for orphans, never another tool's pools.
      - With a remote O(uri) it is refused, since the instance directories are the libvirt host's own files.
    type: path
  ceph_keyring:
    description:
      - For V(rbd) pools, a keyring on the managed host with the key of the pool's C(source.auth) user; with it
        the recorded metadata of rbd volumes (their image-meta) is read too. Without it, it is None.
    type: path
  refresh:
    description:
      - Refresh active pools before listing volumes, so files created outside libvirt show up.
      - Off by default; a refresh makes libvirt probe every file of a V(dir), V(fs) or V(netfs) pool and follow
        the backing file a qcow2 header names, and a guest writes its own disk's header. So it is refused (the
        task fails before any pool is refreshed) for such a pool that holds guest disks - a volume with
        recorded metadata, a volume named C({instance_uuid}_{disk}), a file some domain uses as a disk or
        backing file - and for any file pool over a remote O(uri), where the records cannot be read.
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
        type:
          description:
            - V(file), V(symlink) (not followed), V(dir) or V(other) on file pools, from C(lstat); libvirt's volume
              type (V(block), V(network)) on logical and rbd pools; None where unknown.
          type: str
        size:
          description: The file's size (C(st_size)) on file pools, the LV or image size otherwise; None for
            anything but a regular file.
          type: int
        capacity:
          description:
            - Virtual size in bytes. On file pools the recorded virtual size (the file size of a volume recorded
              raw without one); None when the volume has no record (see RV(pools.volumes[].note)), since the
              file is never probed for it.
          type: int
        allocation:
          description: Bytes allocated (C(st_blocks) * 512 on file pools).
          type: int
        note:
          description: Why a size is missing (no record, a symbolic link, not a regular file), else None.
          type: str
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
            - Kept with the data - file pools, the C(trusted.storagepools.libvirt) xattr (written only by root); logical pools, the LV's
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
  description: With O(instances_path), the volumes of the pool O(name) whose instance directory is gone.
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
import stat

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.base import backend_for
from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.file import (
    FILE_POOL_TYPES,
    MetadataError,
    read_file_metadata,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._core import names
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.module import run_module
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.connection import (
    is_local_uri,
    lookup_pool,
    missing_libraries,
    open_connection,
    require_local_uri,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.listing import (
    VANISHED,
    domain_xmls,
    or_fail,
    unless_vanished,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.pool import Endpoint, running_definition
from ansible_collections.storagepools.libvirt.plugins.module_utils._nova import layout as nova_layout
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.domain import DomainDocument

# libvirt's volume.info() re-reads the volume first: on a file pool it probes the file and opens the backing
# file a qcow2 header names. For these pool types it reads the lvs listing or librbd, never a volume's bytes.
INFO_POOL_TYPES = ('logical', 'rbd')
VOLUME_TYPES = {0: 'file', 1: 'block', 2: 'dir', 3: 'network', 4: 'netdir', 5: 'ploop'}


def instance_of(volume_name):
    """The instance uuid of a ``{instance_uuid}_{disk}`` volume name, else None."""
    prefix, sep, _disk = volume_name.partition('_')
    return prefix.lower() if sep and nova_layout.is_uuid(prefix) else None


def unknown(note, kind=None):
    return dict(type=kind, size=None, capacity=None, allocation=None, metadata=None, note=note)


def file_volume(path):
    """Type, sizes and record of a file pool's volume, from the file itself, never from libvirt.

    A symlink is reported, not followed; only a regular file is opened (O_NOFOLLOW, O_NONBLOCK) and its
    sizes and record are read through that descriptor. The capacity is the recorded virtual size."""
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        return unknown('the file is gone (libvirt lists what it found at its last refresh)')
    if stat.S_ISLNK(status.st_mode):
        return unknown('a symbolic link: not followed', 'symlink')
    if not stat.S_ISREG(status.st_mode):
        return unknown('not a regular file: not opened', 'dir' if stat.S_ISDIR(status.st_mode) else 'other')
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise StoragePoolsError('volumes: cannot open %s: %s' % (path, exc.strerror))
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):  # replaced since the lstat
            return unknown('not a regular file: not read', 'other')
        try:
            record = read_file_metadata(fd, name=path)
        except (OSError, MetadataError) as exc:
            raise StoragePoolsError('volumes: cannot read the metadata of %s: %s' % (path, exc))
    finally:
        os.close(fd)
    facts = dict(type='file', size=status.st_size, capacity=None, allocation=status.st_blocks * 512,
                 metadata=record, note=None)
    if record is not None and isinstance(record.get('virtual_size'), int):
        facts['capacity'] = record['virtual_size']
    elif record is not None and record.get('format') == 'raw':
        facts['capacity'] = status.st_size
    else:
        facts['note'] = 'no recorded virtual size (a file is never probed for one)'
    return facts


def volume_facts(pool, definition, local, instances_path, ceph_keyring):
    pool_type = definition.type
    records = None
    if pool_type in INFO_POOL_TYPES:  # records of a file pool are read with its sizes (file_volume)
        backend = backend_for(Endpoint.of(None, pool, definition, 'volumes'), 'volumes', ceph_keyring)
        records = backend if backend.records_readable(local) else None
    try:
        return [one_volume(volume, pool_type, local, instances_path, records)
                for volume in sorted(pool.listAllVolumes(0), key=lambda vol: vol.name())]
    finally:
        if records is not None:
            records.close()


def one_volume(volume, pool_type, local, instances_path, records):
    """The facts of one volume; its metadata from the record kept with its data (``records``: the pool's
    backend where records are read apart from the file, else None)."""
    path = volume.path()
    if pool_type in FILE_POOL_TYPES:
        facts = file_volume(path) if local else unknown('a remote uri: files are read on the libvirt host only')
    elif pool_type in INFO_POOL_TYPES:
        kind, capacity, allocation = volume.info()
        facts = dict(type=VOLUME_TYPES.get(kind), size=capacity, capacity=capacity, allocation=allocation,
                     metadata=None, note=None)
        if records is not None:
            try:
                facts['metadata'] = records.read_record(volume.name())
            except ValueError as exc:
                raise StoragePoolsError('volumes: the metadata of %s is not JSON: %s' % (path, exc))
    else:
        facts = unknown('a %s pool: libvirt would probe the volume to size it' % pool_type)
    instance_uuid = instance_of(volume.name())
    orphaned = None
    if instances_path and instance_uuid:
        orphaned = not os.path.isdir(os.path.join(instances_path, instance_uuid))
    facts.update(name=volume.name(), path=path, instance_uuid=instance_uuid, orphaned=orphaned)
    return facts


def domain_disks(conn):
    """({file path: domain}, {(pool, volume): domain}) of every domain's disks, backing chains included."""
    files, volumes = {}, {}
    for text in domain_xmls(conn):  # a domain undefined by someone else while we listed is left out
        document = DomainDocument(text)
        for disk in document.disks():
            for source in disk.element.iter('source'):
                if source.get('file'):
                    files[os.path.normpath(source.get('file'))] = document.name
            if disk.source_volume:
                volumes[disk.source_volume] = document.name
    return files, volumes


def guest_disk(pool, definition, local, disks):
    """Why a file pool holds a guest disk ((volume, reason)), or None: a recorded volume, one named for an
    instance, or a file some domain uses."""
    target = os.path.normpath(definition.target_path or '')
    files, volumes = disks
    for volume in pool.listAllVolumes(0):
        name, path = volume.name(), os.path.normpath(volume.path())
        if local and file_volume(path)['metadata'] is not None:
            return name, 'it has recorded metadata'
        if instance_of(name):
            return name, 'it is named for instance %s' % instance_of(name)
        domain = volumes.get((pool.name(), name)) or files.get(path)
        if domain:
            return name, "domain '%s' uses it" % domain
    for path, domain in sorted(files.items()):
        if os.path.dirname(path) == target:
            return os.path.basename(path), "domain '%s' uses it" % domain
    if not local:
        return '', 'its records cannot be read over a remote uri'
    return None


def check_refresh(conn, pools, local):
    """Refuse a refresh of a file pool holding guest disks, before any pool is refreshed."""
    disks = {}  # domain_disks(conn), read once and only when a file pool is active

    def guest_disk_of(pool):
        definition = running_definition(pool)
        if definition.type not in FILE_POOL_TYPES or not pool.isActive():
            return None
        if not disks:
            disks['all'] = domain_disks(conn)
        return guest_disk(pool, definition, local, disks['all'])

    for pool in pools:
        found = unless_vanished(guest_disk_of, pool)  # undefined by someone else while we listed: run() skips it too
        if found and found is not VANISHED:
            raise StoragePoolsError(
                "refresh: pool '%s' holds guest disks ('%s': %s); a refresh makes libvirt open every file of "
                "the pool and follow the backing file a qcow2 header names, and a guest writes its own disk's "
                "header. Leave refresh off: the volumes this collection makes are listed without one"
                % ((pool.name(),) + found))


def pool_facts(pool, want_volumes, refresh, local, instances_path, ceph_keyring):
    definition = running_definition(pool)
    _state, capacity, allocation, available = pool.info()  # statvfs of the target, or the backend's totals
    active = bool(pool.isActive())
    facts = dict(
        uuid=pool.UUIDString(),
        type=definition.type,
        state='active' if active else 'inactive',
        autostart=bool(pool.autostart()),
        persistent=bool(pool.isPersistent()),
        target=definition.target_path,
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
    if params['instances_path'] and not params['name']:
        raise StoragePoolsError('instances_path: orphans are looked for only in the pool the task names; give '
                                'name (the pool holding the instances\' disks)')
    if params['instances_path']:
        require_local_uri(params['uri'], 'orphans are told by the instance directories', option='instances_path')
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
        want_volumes = params['volumes'] or bool(params['instances_path'])
        if params['refresh'] and want_volumes:
            check_refresh(conn, pools, local)
        result = {}
        args = (want_volumes, params['refresh'], local, params['instances_path'], params['ceph_keyring'])
        for pool in pools:
            if params['name']:
                result[pool.name()] = or_fail("name: reading pool '%s' failed" % params['name'], pool_facts, pool,
                                              *args)
                continue
            facts = unless_vanished(pool_facts, pool, *args)
            if facts is not VANISHED:  # else a pool undefined by someone else while we listed: not ours to report
                result[pool.name()] = facts
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
    run_module(module, run, missing_libraries=missing_libraries)


if __name__ == '__main__':
    main()
