#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: virt_volume_clone
short_description: Make a libvirt volume from another volume or an image file, with recorded metadata
version_added: 0.1.0
description:
  - Makes one volume in a libvirt pool as a full copy (O(mode=copy)) or a copy-on-write overlay
    (O(mode=cow)) of a source volume or an image file.
  - The source's format is read from the metadata this collection recorded with it, or declared in
    O(source.format); it is never probed. A file source is opened once (a symbolic link or anything but a
    regular file is refused) and its header is checked in Python against the declared format; a "raw" image
    carrying another format's header, a qcow2 with a backing file, an external data file or encryption, a
    VMDK with extents, a parent or a create type other than monolithicSparse/streamOptimized, and a virtual
    size the destination cannot hold are refused. Every tool then reads that same open file
    (C(/proc/self/fd/N)) and is given the formats explicitly.
  - Every volume made gets recorded metadata (format, virtual size, source, backing) kept with the data,
    in the C(trusted.storagepools.libvirt) extended attribute of the volume file (written only by root).
  - Destinations are file pools (V(dir), V(fs), V(netfs)), V(logical) and V(rbd) pools, on the libvirt host
    itself.
  - "On a logical pool volumes are thick raw LVs made by libvirt: V(copy) writes the source with
    C(qemu-img convert -n -f <format> -O raw), which writes zeroes where the source has none, and zeroes the
    LV's tail, so no stale data of the volume group shows through; V(cow) is an LVM snapshot (libvirt's
    backingStore) of a volume of the same pool. The size is rounded up to whole extents. The recorded
    metadata is kept in the LV's own tags."
  - On an rbd pool, V(copy) imports an image file or a file-pool volume with librbd (only data is written,
    so sparse stays sparse; other formats through C(qemu-img convert -f <format> -O raw) into the image),
    and V(cow) clones an image of the same pool from its protected snapshot C(storagepools-base), which is
    created and protected when missing. libvirt has neither primitive for rbd. The recorded metadata of an
    rbd volume is kept in the image's own image-meta.
  - "A source volume on another libvirt host (O(source.uri)) arrives through libvirt streams: a sparse download
    from that connection, written into the new volume by the module itself (only data written, holes left holes,
    a fixed buffer whatever the size, fsync; no pool refresh), with no SSH, scp, rsync or staging copy. The
    destination (O(uri)) must be local. The source is only read. See the notes for the record and the formats."
  - "An image by URL (O(source.url) with O(source.checksum) and O(source.format)) is downloaded on the managed host
    into O(staging_dir), its sha256 checked as it arrives, inspected as its declared format like any image file,
    then written into the pool as an image file is (librbd for rbd pools, where its protected snapshot
    C(storagepools-base) is made for clones) and recorded with the url and the digest. See the notes."
  - A source volume in an rbd pool (copied into a file or logical pool, or another rbd pool) is read as raw
    through qemu's rbd driver with C(qemu-img convert -f raw); its header is first checked through librbd
    like a file's (an image whose bytes are another format is refused).
author:
  - storagepools.libvirt team (@storagepools)
extends_documentation_fragment:
  - storagepools.libvirt.connection
  - storagepools.libvirt.connection.volume_actions
options:
  pool:
    description: The destination pool (active).
    type: str
    required: true
  name:
    description:
      - The new volume's name. It must not start with C(.) and must not contain C(/), a colon, C(@), a
        backslash, C(=) (qemu's rbd filename separators) or control characters. Source volume names likewise.
      - Either this or O(instance_uuid) with O(disk).
    type: str
  instance_uuid:
    description: With O(disk), names the volume C({instance_uuid}_{disk}) (Nova's naming); the uuid is checked.
    type: str
  disk:
    description: The disk's name, for example V(disk), V(disk.local), V(disk.swap), V(disk.config).
    type: str
  state:
    description:
      - V(present) makes the volume. V(absent) removes it the way M(storagepools.libvirt.nova_storage_prune)
        reclaims a volume - quarantined (restorable with nova_storage_prune's C(restore)) for O(quarantine)
        seconds, deleted at once with O(quarantine=0). Refused while any domain on this host references the
        volume (by path, by pool and volume, in a backing chain) or the record of a volume of an active pool
        of this host names it as its backing.
    type: str
    choices: [present, absent]
    default: present
  quarantine:
    description: With O(state=absent), seconds the removed volume is kept restorable; V(0) deletes it.
    type: int
    default: 604800
  quarantine_dir:
    description: With O(state=absent) on a file pool, the quarantine directory (see nova_storage_prune).
    type: path
  state_dir:
    description: With O(state=absent), the root-only directory of the host lock and the journal.
    type: path
    default: /var/lib/storagepools-libvirt
  staging_dir:
    description:
      - With O(source.url), the directory the image is downloaded into; made 0700 when missing, refused when it
        is a symlink or anyone but root may write it. It holds nothing once a run ends (a run killed
        mid-download leaves the partial file, which the rerun resumes and removes; one killed while writing the
        pool volume leaves it recorded C(partial=true), and the rerun removes it and writes the image again).
      - Defaults to C(<state_dir>/staging).
    type: path
  source:
    description: Where the data comes from. Required with O(state=present).
    type: dict
    suboptions:
      uri:
        description:
          - The libvirt URI of the host the source volume is on, when that is another libvirt host than O(uri)
            (for example V(qemu+tls://compute-2/system)). Its volume (O(source.pool), O(source.volume)) is
            received through a libvirt download stream (V(VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM)); only
            V(copy) mode. Source and destination pools may be V(dir), V(fs), V(netfs) or V(logical); an rbd pool
            on either side is refused (libvirt has no streams for rbd volumes).
          - Omitted, or equal to O(uri), the source volume is on the destination's host.
        type: str
      pool:
        description: Pool of a source volume (with O(source.volume)).
        type: str
      volume:
        description: Name of the source volume.
        type: str
      path:
        description: Absolute path of an image file on the libvirt host (for example a Nova C(_base) entry).
        type: path
      url:
        description:
          - An image to download (V(http) or V(https)), checked against O(source.checksum) and inspected as
            O(source.format); only V(copy) mode. HTTP goes through ansible.module_utils.urls, so proxies
            (C(https_proxy), C(no_proxy)), TLS and netrc behave as for C(ansible.builtin.get_url).
          - Give credentials in O(source.url_username) and O(source.url_password), not in the URL (the URL is
            recorded and shown without them, but Ansible logs the task's arguments).
        type: str
      checksum:
        description:
          - "With O(source.url), required, V(sha256:<64 hex digits>): the digest of the image. The download is
            refused when its bytes do not have it. A volume of O(name) recorded with this digest is the image
            (changed=false, whatever URL it came from); one recorded with another digest, or none, is never
            overwritten."
          - "With O(source.uri), optional: the digest the bytes streamed from the other host must have (every byte,
            holes as zeroes, as in the image file they make). A stream whose bytes differ is refused and its volume
            removed; the digest is recorded as C(checksum), so a later import of the same image by URL is a cache
            hit on this host too."
        type: str
      url_username:
        description: With O(source.url), the user of HTTP basic authentication (sent without waiting for a challenge).
        type: str
      url_password:
        description: With O(source.url), the password of HTTP basic authentication.
        type: str
      validate_certs:
        description: With O(source.url), whether an https server's certificate is checked.
        type: bool
        default: true
      timeout:
        description: With O(source.url), seconds the server may send nothing (to connect, or at any point of the body).
        type: int
        default: 30
      max_size:
        description:
          - With O(source.url), the most bytes the download may have; a larger Content-Length is refused before
            the body is read, a longer body as soon as it passes the bound.
          - Defaults to O(capacity) when given, else 1 TiB.
        type: int
      format:
        description:
          - The source's format (V(raw), V(qcow2), V(vmdk)). Required for O(source.path), O(source.url) and for a
            source volume without recorded metadata; must agree with the record when both exist.
          - A source on another host (O(source.uri)) whose record this process cannot read (libvirt carries no
            record; it is read only where the source host's files are on this host, a C(qemu+unix) or local
            URI) needs it; its header is then read through the stream connection and checked against it.
        type: str
  mode:
    description:
      - V(copy) makes a full, independent copy (reflink or sparse copy for raw to raw, C(qemu-img convert)
        into the volume libvirt made for a conversion). The source is read as its recorded or declared format,
        never as the format libvirt probed (libvirt's createXMLFrom would), and through the file descriptor
        its inspection read, so a file swapped in afterwards is never read.
      - V(cow) makes a qcow2 overlay whose backing file and backing format are explicit (file pools), or an
        rbd clone of a protected snapshot (rbd pools).
    type: str
    choices: [copy, cow]
    default: copy
  format:
    description: The new volume's format; defaults to the source's for V(copy) and V(qcow2) for V(cow).
    type: str
    choices: [raw, qcow2]
  capacity:
    description: Virtual size in bytes; defaults to the source's. It may only grow the volume.
    type: int
  metadata:
    description: "Extra facts recorded with the volume's source, for example C({image_id: ...})."
    type: dict
  file_mode:
    description:
      - File pools only. The permission bits (octal, for example V('0644')) of the file the run creates for the new
        volume (libvirt's C(<permissions><mode>)), instead of libvirt's V(0600); for example so that Nova, as its own
        user, can read a base it did not download. Group and others get no write bit. A volume that exists is left
        as it is.
    type: str
  ceph_keyring:
    description:
      - rbd pools only (destination or source). A keyring on the managed host with the key of the pool's
        C(source.auth) user, which librbd and qemu use (the key never appears on a command line).
      - Defaults to C(/etc/ceph/ceph.client.<user>.keyring).
    type: path
  verify:
    description: After a copy, compare the new volume with its source (byte compare for raw files, C(qemu-img compare)
      with explicit formats otherwise, through qemu's rbd driver for rbd volumes). For a source on another host
      (O(source.uri)), a digest of the bytes received is compared with a digest of the new volume read back through
      the destination's libvirt (and a conversion is compared with C(qemu-img compare)); a mismatch removes the
      new volume.
    type: bool
    default: false
notes:
  - "In --diff mode the module returns what the run changes (or would change in check mode): the volume's
    definition as canonical XML of what is recorded (name, capacity, format, path, backing; never libvirt's
    probe of the file) and the recorded metadata, each before and after. A new volume has an empty before; a
    rerun that changes nothing returns no diff."
  - "A source on another host (O(source.uri)): its record (format, size, source, metadata) travels with the data
    as the new record's C(source_record) where it can be read, and decides the format; a volume recorded raw
    arrives as raw data whatever its bytes look like (a guest's qcow2 header is never interpreted). Where the
    source has no readable record, O(source.format) is declared and checked against the bytes. The same format
    arrives byte for byte (method V(stream)); another O(format) streams into a temporary volume
    C(<name>.stream-partial), converts it with C(qemu-img convert -f <source> -O <format>) and removes it (method
    V(stream-convert)). Until its record is written, every volume the run makes carries a record with
    C(partial=true); a rerun after a kill removes such volumes of the same source and starts again."
  - "A destination on another host (an upload stream) is not offered: libvirt refreshes the whole destination pool
    after every upload, probing every file of a dir pool (and so opening the backing files named in
    guest-written headers), and the record cannot be written there; run the task on the destination host."
  - "An image by URL (O(source.url)): the staging file is C(storagepools-<sha256>.partial), created O_EXCL 0600 and
    never opened through a symlink. A rerun after a kill resumes it with a C(Range) request once it has checked it
    is its own (a regular root-only file with one link); a server that ignores C(Range) sends it all again. Once the
    digest matches, the file's name is removed and the image is inspected and read through the one descriptor the
    run holds; a refusal (digest, HTTP status, timeout, O(source.max_size), the image's inspection) removes it too,
    and leaves no volume. The record's C(source) is C({url, checksum, format}) (the URL without credentials) and its
    C(checksum) the digest. Check mode downloads nothing: it plans the steps V(download) and V(import), the
    capacity shown is O(capacity) (the image's own size is known only once downloaded); a real run also returns the
    steps of the import (create, the copy or conversion, verify, record)."
seealso:
  - module: storagepools.libvirt.virt_pool_info
'''

EXAMPLES = r'''
- name: A Nova base image imported into the cache pool as recorded raw volume
  storagepools.libvirt.virt_volume_clone:
    pool: nova-base-images-pool
    name: 9b5c1f2e7a1c4f0e8d1a2b3c4d5e6f708192a3b4
    source:
      path: /var/tmp/downloads/cirros.qcow2
      format: qcow2
    format: raw
    metadata:
      image_id: 2f7c1a0e-3b4d-4c5e-8f90-a1b2c3d4e5f6

- name: A cloud image downloaded, its digest checked, into the cache pool as a raw volume
  storagepools.libvirt.virt_volume_clone:
    pool: nova-base-images-pool
    name: cirros-0.6.2
    format: raw
    source:
      url: https://images.example.org/cirros-0.6.2-x86_64-disk.img
      checksum: "sha256:{{ cirros_sha256 }}"
      format: qcow2

- name: A root disk as copy-on-write overlay on the cached image
  storagepools.libvirt.virt_volume_clone:
    pool: nova-disks-pool
    instance_uuid: 6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b
    disk: disk
    mode: cow
    capacity: 21474836480
    source:
      pool: nova-base-images-pool
      volume: 9b5c1f2e7a1c4f0e8d1a2b3c4d5e6f708192a3b4

- name: A volume of another compute host, received through libvirt streams and verified
  storagepools.libvirt.virt_volume_clone:
    pool: nova-disks-pool
    name: 6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b_disk
    verify: true
    source:
      uri: qemu+tls://compute-2.example.org/system
      pool: nova-disks-pool
      volume: 6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b_disk
      format: qcow2

- name: A full, verified copy converted to qcow2
  storagepools.libvirt.virt_volume_clone:
    pool: archive
    name: vm1-disk.qcow2
    format: qcow2
    verify: true
    source:
      pool: nova-disks-pool
      volume: 6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b_disk
'''

RETURN = r'''
reclaimed:
  description: With O(state=absent), the volume removed, as nova_storage_prune reports it (pool, volume,
    reason, bytes, action V(quarantined) or V(purged)); empty when there was nothing to remove.
  returned: state absent
  type: list
  elements: dict
volume:
  description: The volume after the run (in check mode, as the run would make it); None with O(state=absent).
  returned: success
  type: dict
  contains:
    name:
      description: Volume name.
      type: str
    pool:
      description: Pool name.
      type: str
    path:
      description: Path of the volume file.
      type: str
    format:
      description: The volume's format (as recorded, never probed).
      type: str
    capacity:
      description: Virtual size in bytes.
      type: int
    backing:
      description: The backing file and its format of a copy-on-write volume, else None.
      type: dict
method:
  description: With O(state=present), how the data was (or would be) made; V(reflink), V(sparse-copy), V(qemu-img-convert),
    V(qcow2-overlay), V(lvm-snapshot), V(rbd-import), V(rbd-clone), or, from another host, V(stream) or
    V(stream-convert). In check mode a raw copy says
    V(sparse-copy) even where the real run would manage a reflink.
  returned: state present
  type: str
  sample: sparse-copy
metadata:
  description: The metadata recorded with the volume. From another host (O(source.uri)) it holds
    C(source_record), the source's own record (None where it could not be read). From O(source.url) its
    C(source) is C({url, checksum, format}) and C(checksum) the image's digest.
  returned: state present
  type: dict
diff:
  description: With --diff, the volume definition (canonical XML) and the record, before and after; only
    what changes, nothing when nothing does.
  returned: diff mode, when the volume is made or grown
  type: list
  elements: dict
actions:
  description: The ordered plan the run carried out, or would carry out in check mode.
  returned: always
  type: list
  elements: dict
libvirt_error:
  description: libvirt's (or the storage tool's) own message when it refused a step.
  returned: failure
  type: str
'''

import os
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.naming import instance_volume_name
from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.records import FILE_POOL_TYPES
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.prune import remove_volume
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.volume import cloner_for
from ansible_collections.storagepools.libvirt.plugins.module_utils._core import names
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.module import run_module
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.progress import NO_PROGRESS, progress_for
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.connection import (
    missing_libraries,
    open_connection,
    require_local_uri,
)


def volume_name(params):
    if params['name'] is not None:
        return params['name']
    return instance_volume_name(params['instance_uuid'], params['disk'])


def remove(module, name):
    """state: absent: the volume quarantined (or deleted), as nova_storage_prune reclaims one."""
    params = module.params
    if params['quarantine'] < 0:
        raise StoragePoolsError('quarantine: give a number of seconds, 0 or more')
    require_local_uri(params['uri'], 'state absent moves the volume file into quarantine')
    conn = open_connection(params['uri'])
    try:
        result = remove_volume(conn, params, name, module.check_mode)
    finally:
        conn.close()
    diff = result.pop('diff', None)
    if module._diff and diff:
        result['diff'] = diff
    return result


def run(module):
    params = module.params
    names.check_options(params, {'pool': names.pool_name, 'name': names.volume_name, 'source.pool': names.pool_name,
                                 'source.volume': names.volume_name, 'source.path': names.path,
                                 'source.uri': names.text, 'source.url': names.text, 'staging_dir': names.path,
                                 'ceph_keyring': names.path, 'state_dir': names.path, 'quarantine_dir': names.path})
    name = volume_name(params)
    file_mode = params['file_mode']
    if file_mode is not None and (re.match(r'^0?[0-7]{3}$', file_mode) is None or int(file_mode, 8) & 0o022):
        raise StoragePoolsError("file_mode: %r is not octal permission bits without a write bit for group and others "
                                "(for example '0644')" % file_mode)
    if params['state'] == 'absent':
        return remove(module, name)
    source = params['source']
    if source is None:
        raise StoragePoolsError('source: state present makes a volume from a source; give source')
    if source.get('url'):  # -- source {url, checksum, format}: checked in _images/download.py
        pass
    elif bool(source.get('path')) == bool(source.get('volume')):
        raise StoragePoolsError('source: give either path (with format), pool and volume, or url (with checksum and '
                                'format)')
    if source.get('volume') and not source.get('pool'):
        raise StoragePoolsError('source.pool: a source volume needs its pool')
    if source.get('checksum') and not (source.get('url') or source.get('uri')):
        raise StoragePoolsError('source.checksum: a digest is checked for an image by URL (source.url) or a volume '
                                'streamed from another libvirt host (source.uri)')
    if source.get('uri') and source.get('path'):
        raise StoragePoolsError('source.uri: a source on another libvirt host is one of its volumes; give '
                                'source.pool and source.volume, not source.path')
    if source.get('path') and not source.get('format'):
        raise StoragePoolsError('source.format: an image file needs its declared format (raw, qcow2, vmdk)')
    # Up front, before any connection: VolumeCloner refuses the same for every caller.
    require_local_uri(params['uri'], 'source.path is a file' if source.get('path') else
                      'cloning writes the volume and its record')
    conn = open_connection(params['uri'])
    try:
        cloner = cloner_for(conn, params['uri'], params['pool'], name, params['ceph_keyring'])
        cloner.progress = progress_for(params['state_dir'], 'virt_volume_clone', module.check_mode)
        cloner.staging_dir = params['staging_dir'] or os.path.join(params['state_dir'], 'staging')  # source.url
        if file_mode is not None:
            if cloner.backend.endpoint.type not in FILE_POOL_TYPES:
                raise StoragePoolsError("file_mode: pool '%s' is a %s pool; file_mode is for file pools (%s)"
                                        % (params['pool'], cloner.backend.endpoint.type, ', '.join(FILE_POOL_TYPES)))
            cloner.file_mode = '%04o' % int(file_mode, 8)
        try:
            plan = cloner.plan_clone(source, params['mode'], params['format'], params['capacity'],
                                     params['metadata'], params['verify'])
            # a copy shows its progress (progress_info); a rerun with nothing to do writes no status
            with cloner.progress if plan else NO_PROGRESS:
                plan.apply(module.check_mode)
            result = dict(changed=bool(plan), actions=plan.describe() + list(cloner.imported),
                          volume=cloner.result_volume(),
                          method=cloner.method, metadata=cloner.record)
            if module._diff and plan:
                result['diff'] = cloner.diff()
            return result
        finally:
            cloner.close()
    finally:
        conn.close()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            pool=dict(type='str', required=True),
            name=dict(type='str'),
            instance_uuid=dict(type='str'),
            disk=dict(type='str'),
            state=dict(type='str', default='present', choices=['present', 'absent']),
            quarantine=dict(type='int', default=604800),
            quarantine_dir=dict(type='path'),
            state_dir=dict(type='path', default='/var/lib/storagepools-libvirt'),
            source=dict(type='dict', options=dict(
                uri=dict(type='str'),
                pool=dict(type='str'),
                volume=dict(type='str'),
                path=dict(type='path'),
                format=dict(type='str'),
                # -- source {url, checksum, format}: an image by URL (_images/download.py)
                url=dict(type='str'),
                checksum=dict(type='str'),
                url_username=dict(type='str'),
                url_password=dict(type='str', no_log=True),
                validate_certs=dict(type='bool', default=True),
                timeout=dict(type='int', default=30),
                max_size=dict(type='int'),
                # -- end of source {url, checksum, format}
            )),
            staging_dir=dict(type='path'),
            mode=dict(type='str', default='copy', choices=['copy', 'cow']),
            format=dict(type='str', choices=['raw', 'qcow2']),
            capacity=dict(type='int'),
            metadata=dict(type='dict'),
            file_mode=dict(type='str'),
            verify=dict(type='bool', default=False),
            ceph_keyring=dict(type='path', no_log=False),  # a path, not a secret
            uri=dict(type='str', default='qemu:///system'),
        ),
        supports_check_mode=True,
        mutually_exclusive=[('name', 'instance_uuid'), ('name', 'disk')],
        required_one_of=[('name', 'instance_uuid')],
        required_together=[('instance_uuid', 'disk')],
    )
    run_module(module, run, missing_libraries=missing_libraries, actions=[])


if __name__ == '__main__':
    main()
