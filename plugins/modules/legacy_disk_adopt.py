#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: legacy_disk_adopt
short_description: Move Nova instances' legacy disk files into a libvirt pool and point their domains at them
version_added: 0.1.0
description:
  - "For each shut-off Nova instance, moves its legacy disks (C(<instances_path>/<uuid>/disk*)) into the
    disks pool as volumes C({uuid}_{name}) and edits the domain's own inactive XML in place: only those
    disks' type, source and backingStore change; addresses, device order, machine type and everything
    else stay as libvirt wrote them."
  - On the same filesystem nothing is copied (method V(link) - the file gets its pool name by a hard link, then the
    legacy path becomes a symlink to it); another filesystem is a sparse copy, fsync and byte compare before the
    legacy file goes (method V(copy)).
  - Formats come from Nova's C(disk.info) and the domain's C(<driver type>), which must agree; nothing is
    probed. A raw disk's content is the guest's and is never read. A qcow2 overlay keeps its base in
    C(_base) (the cache pool), with the backing format written into its header when missing and an explicit
    C(<backingStore>) in the domain.
  - Nova keeps working on an adopted instance. Every legacy path stays, as an absolute symlink to the pool
    volume, and C(disk.info) gains the pool paths with the same formats. See the collection's
    C(docs/adoption.md) for what each Nova operation does afterwards.
  - Crash safe. Every step is journalled in O(state_dir) before it runs and a rerun resumes; a host lock
    serialises runs.
  - Into a file pool (dir, fs, netfs) adoption is complete in one run; running instances are skipped unless
    O(running=live).
  - "Into an rbd or a logical pool it is a two-phase host cutover, because Nova's C(images_type) is
    host-wide. The first run imports every shut-off instance's disks as raw images C(<ceph pool>/<uuid>_<name>)
    or thick LVs C(/dev/<vg>/<uuid>_<name>) (an overlay is flattened with its C(_base) file), compares each
    with its source, records it (image-meta, LV tags), and points the domain at them as
    C(<disk type='network' protocol='rbd'>) with the pool's Ceph auth, or C(<disk type='block'>). The
    legacy files stay. After nova.conf holds the values in RV(nova_conf_settings) and nova-compute restarted,
    a run with O(finalize=true) removes the legacy files (only those unchanged since their import). With LVM
    the config drive stays a file, as Nova's lvm backend keeps it."
  - Instances already on the pool (a host that ran with C(images_type=rbd) or C(lvm)) need no move; their
    volumes only gain a record.
  - "O(state=reverted) undoes the adoption of shut-off instances of a file pool: each disk file comes back at
    its legacy path (a hard link on the same filesystem; a verified copy of the volume's current data from
    another one), C(disk.info) and the domain's disks as they were before the adoption (only the disks' type,
    source and backingStore change back; whatever libvirt changed in the domain since stays), and the pool
    volume goes, through libvirt. What the layout was comes from the journal the adoption kept in
    O(state_dir), never from the instance directory."
  - "O(state=reverted) of an rbd or logical cutover points the domain back at the legacy files and removes the
    images. A legacy file that still reads as its image is used as it is; the data of an image the guest wrote
    since its import (or, with O(force=true), whose legacy file finalize removed) is first copied back into a
    new file in the legacy format (a qcow2 overlay is re-created on its unchanged C(_base) file), compared with
    the image, and only then renamed over the legacy name."
  - Each instance's run is planned first from what is observed (the domain's XML, the files, the records, the
    journal), as the list of journalled steps returned in RV(instances.actions); check mode returns that plan and
    writes nothing. With C(--diff), the changes to each domain's XML are shown, compared in a canonical form
    (indentation, quote style and attribute order are not changes).
author:
  - storagepools.libvirt team (@storagepools)
extends_documentation_fragment:
  - storagepools.libvirt.connection
  - storagepools.libvirt.connection.planned_pools
  - storagepools.libvirt.connection.adopt_actions
options:
  instances:
    description: Instance uuids to adopt, or the single string V(all) for every instance directory found.
    type: list
    elements: str
    default: [all]
  exclude:
    description:
      - Instance uuids this run leaves alone (reported as skipped), e.g. instances an operator reverted and
        keeps out of later transitions.
    type: list
    elements: str
    default: []
  state:
    description:
      - V(adopted) moves the legacy disks into the disks pool; V(reverted) undoes that for instances adopted
        into a file pool or imported into an rbd or logical pool (running instances are skipped with a reason).
    type: str
    choices: [adopted, reverted]
    default: adopted
  instances_path:
    description: Nova's C(instances_path).
    type: path
    default: /var/lib/nova/instances
  disks_pool:
    description: The pool the disks go to (active).
    type: str
    default: nova-disks-pool
  cache_pool:
    description: The pool of the image cache (C(_base)); named in the recorded metadata of overlays.
    type: str
    default: nova-base-images-pool
  disk_type:
    description:
      - V(file) points each disk at the volume's path (C(<disk type='file'>)), which a legacy-configured Nova
        can still snapshot; V(volume) gives C(<disk type='volume'>).
      - Ignored for rbd and logical disks pools, whose disks are what Nova writes - C(<disk type='network'>)
        (libvirt cannot start a volume disk of an rbd pool) and C(<disk type='block'>).
    type: str
    choices: [file, volume]
    default: file
  running:
    description:
      - What to do with running instances. V(skip) reports them with a reason.
      - V(live) copies each disk into the pool with a block copy (shallow onto the same C(_base) file for
        overlays) while the guest runs, pivots to it, and then makes the persistent definition match. The
        qemu process is never stopped.
    type: str
    choices: [skip, live]
    default: skip
  live_timeout:
    description: With O(running=live), seconds a disk's block copy may take before it is cancelled (the guest
      then keeps running on its legacy file).
    type: int
    default: 3600
  nova_conf:
    description: Nova's configuration file, read for C(force_raw_images) and C(remote_filesystem_transport).
    type: path
    default: /etc/nova/nova.conf
  force:
    description:
      - Adopt even when nova.conf sets C(remote_filesystem_transport=rsync) (rsync skips symlinks, so a cold
        migration would lose the disks).
      - With O(state=reverted) of an rbd or logical disks pool, revert also instances whose legacy files are gone
        (removed by O(finalize=true)) by copying each image's data back into a new legacy file (verified before
        the domain is switched); without it they are skipped with the reason. Refused for a file disks pool.
    type: bool
    default: false
  finalize:
    description:
      - rbd and logical disks pools only. Remove the legacy files of instances already imported. Refused unless
        O(nova_conf) holds the values of RV(nova_conf_settings) (a host still on file disks would otherwise
        regenerate domains pointing at removed files). A legacy file whose size or mtime changed since its
        import is never removed; its instance is reported as skipped.
    type: bool
    default: false
  ceph_keyring:
    description:
      - rbd disks pool only. A keyring on the managed host with the key of the pool's C(source.auth) user;
        librbd and qemu-img read it (the key never appears on a command line).
      - Defaults to C(/etc/ceph/ceph.client.<user>.keyring).
    type: path
  state_dir:
    description:
      - Where the journal and the host lock live. Made (0700, parents as needed) when missing.
      - It, its C(journal) directory and its C(lock) file must be owned by root and not writable by group or
        others, and none may be a symlink; otherwise the task fails before it acts. A journal file that is not
        valid JSON fails the task too, naming the file; check that no run is under way, then move it aside.
    type: path
    default: /var/lib/storagepools-libvirt
  lock_timeout:
    description: Seconds to wait for another run on this host to finish.
    type: int
    default: 600
'''

EXAMPLES = r'''
- name: Adopt every shut-off instance of this compute host
  storagepools.libvirt.legacy_disk_adopt:
  register: adoption

- name: Import every shut-off instance into the rbd pool (phase 1 of an rbd cutover)
  storagepools.libvirt.legacy_disk_adopt:
    disks_pool: nova-disks-pool
    ceph_keyring: /etc/ceph/ceph.client.nova.keyring
  register: imported

- name: After nova.conf holds imported.nova_conf_settings and nova-compute restarted, remove the legacy files
  storagepools.libvirt.legacy_disk_adopt:
    disks_pool: nova-disks-pool
    ceph_keyring: /etc/ceph/ceph.client.nova.keyring
    finalize: true

- name: Undo the adoption of one instance (shut off), and keep it out of later adoption runs
  storagepools.libvirt.legacy_disk_adopt:
    instances: [6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b]
    state: reverted

- name: Adopt two instances, with volume disks
  storagepools.libvirt.legacy_disk_adopt:
    instances:
      - 6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b
      - 0b3b6a2b-5a34-4b8e-9d3e-4f8e6f0e2b11
    disk_type: volume
'''

RETURN = r'''
instances:
  description: Per instance uuid, what happened.
  returned: success
  type: dict
  contains:
    result:
      description: V(adopted), V(already_adopted), V(skipped) or V(failed); with O(state=reverted), V(reverted),
        V(not_adopted) (its disks are its legacy files), V(skipped) or V(failed).
      type: str
    reason:
      description: Why an instance was skipped or failed.
      type: str
    disks:
      description: The disks moved (or to be moved in check mode).
      type: list
      elements: dict
      contains:
        name:
          description: The legacy disk name (disk, disk.local, ...).
          type: str
        from:
          description: The legacy path (now a symlink to the volume); with O(state=reverted) the volume.
          type: str
        to:
          description: The volume's path in the disks pool (C(<ceph pool>/<image>) on rbd); with
            O(state=reverted) the legacy path.
          type: str
        method:
          description: V(link) (same filesystem, a hard link, nothing copied), V(copy) (copied, verified, then the
            source removed), V(live-copy) (block copy of a running guest, then pivot), V(rbd-import) or V(lvm-import)
            (a raw rbd image or LV of the guest's view, compared with its source). With O(state=reverted) of an
            rbd or logical pool V(un-import) (the legacy file still holds the data) or V(copy) (copied back).
          type: str
        format:
          description: The legacy disk's format, from disk.info and the domain (rbd images and LVs are raw).
          type: str
    actions:
      description:
        - The journalled steps of the instance's run, in order (in check mode, the steps a real run would take).
        - Each is one of V(register), V(link), V(copy), V(verify), V(blockcopy), V(record), V(rebase), V(swap)
          (file pools), V(discard), V(import), V(verify), V(record), V(remove) (rbd and logical pools), then
          V(disk_info) and V(domain); these are also the names in the journal under O(state_dir).
        - With O(state=reverted) V(link_back) (same filesystem) or V(copy_back), V(verify_back), V(swap_back)
          per disk, then V(domain), V(disk_info), and per disk V(unrecord) and V(remove). An rbd or logical
          pool's revert takes V(copy_back), V(verify_back), V(swap_back) only for disks whose data is copied
          back, then V(domain), V(disk_info), V(remove).
      type: list
      elements: dict
      contains:
        action:
          description: The step.
          type: str
        disk:
          description: The legacy disk (or, for a record or remove of the cutover, the volume) it is for; absent
            for the per-instance steps.
          type: str
    domain_diff:
      description: Unified diff of the domain's inactive XML before and after, both in a canonical form (indented
        two spaces, attributes sorted), so it holds only the changed disks' lines. Null when the domain stays.
      type: str
    removed:
      description: rbd and logical disks pools with O(finalize=true) only. The legacy files removed.
      type: list
      elements: str
nova_conf_settings:
  description:
    - rbd and logical disks pools only. The nova.conf values under which Nova regenerates exactly the disks
      the cutover wrote, per section. Set them (and restart nova-compute) before the O(finalize=true) run.
    - "logical: C({libvirt: {images_type: lvm, images_volume_group: <vg>}})."
  returned: when the disks pool is an rbd or logical pool
  type: dict
  sample:
    libvirt: {images_type: rbd, images_rbd_pool: vms, rbd_user: nova, rbd_secret_uuid: 4a5e...}
    DEFAULT: {force_raw_images: 'True'}
diff:
  description: With C(--diff), per instance whose domain changes, its canonical inactive XML before and after.
  returned: changed and diff mode
  type: list
  elements: dict
summary:
  description: How many instances ended in each result (with O(state=reverted) V(reverted), V(not_adopted), V(skipped), V(failed)).
  returned: success
  type: dict
  sample: {adopted: 3, already_adopted: 10, skipped: 1, failed: 0}
'''

import contextlib

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.base import backend_for
from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.records import FILE_POOL_TYPES
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.adoption import (
    adopter_for,
    each_instance,
    instance_list,
    uuid_list,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.revert import CutoverReverter, Reverter
from ansible_collections.storagepools.libvirt.plugins.module_utils._core import names
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.journal import HostLock
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.module import run_module, summarise
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.progress import progress_for
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.connection import (
    missing_libraries,
    open_connection,
    require_local_uri,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.pool import Endpoint
from ansible_collections.storagepools.libvirt.plugins.module_utils._nova import layout as nova_layout

RESULTS = {'adopted': ('adopted', 'already_adopted', 'skipped', 'failed'),
           'reverted': ('reverted', 'not_adopted', 'skipped', 'failed')}


def reverter_for(conn, params, check_mode):
    """The Reverter of a file disks pool, or the CutoverReverter of an rbd or logical one (before finalize)."""
    pool = Endpoint(conn, params['disks_pool'], 'disks_pool')
    for option, default in (('finalize', False), ('running', 'skip')):
        if params[option] != default:
            raise StoragePoolsError('%s: state=reverted takes shut-off instances back; leave %s '
                                    'at its default' % (option, option))
    nova_conf = nova_layout.NovaConf(params['nova_conf'])
    if pool.type in ('rbd', 'logical'):
        target = backend_for(pool, 'disks_pool', params['ceph_keyring'])
        target.names()  # connect now: a wrong keyring or an unreachable Ceph fails the task, not each instance
        return CutoverReverter(conn, params['instances_path'], pool, target, params['state_dir'], nova_conf,
                               check_mode, params['force'])
    if pool.type not in FILE_POOL_TYPES:
        raise StoragePoolsError("disks_pool: '%s' is a %s pool; state=reverted undoes adoptions into dir, fs, "
                                "netfs, logical and rbd pools" % (params['disks_pool'], pool.type))
    if params['force']:
        raise StoragePoolsError('force: with state=reverted it lets an rbd or logical pool copy its images back '
                                'where finalize removed the legacy files; a file pool keeps every volume\'s data, '
                                'leave force at its default')
    return Reverter(conn, params['instances_path'], pool, params['state_dir'], nova_conf, check_mode)


def run(module):
    params = module.params
    names.check_options(params, {'disks_pool': names.pool_name, 'cache_pool': names.pool_name,
                                 'instances_path': names.path, 'nova_conf': names.path, 'state_dir': names.path,
                                 'ceph_keyring': names.path})
    require_local_uri(params['uri'], 'adoption reads the instance directories and moves their disks')
    uuids = instance_list(params)
    excluded = set(uuid_list('exclude', params['exclude']))
    reverting = params['state'] == 'reverted'
    if module.check_mode:
        lock = contextlib.nullcontext()
    else:
        lock = HostLock(params['state_dir'], params['lock_timeout'])
    conn = open_connection(params['uri'])
    try:
        adopter = (reverter_for if reverting else adopter_for)(conn, params, module.check_mode)
        settings = adopter.nova_settings()
        adopter.progress = progress_for(params['state_dir'], 'legacy_disk_adopt', module.check_mode)
        try:
            with lock, adopter.progress:  # the lock made state_dir
                results = each_instance(adopter, uuids, excluded)
        finally:
            adopter.close()
    finally:
        conn.close()
    summary = summarise(results, RESULTS[params['state']])
    outcome = dict(changed=summary[params['state']] > 0, instances=results, summary=summary)
    if settings is not None:
        outcome['nova_conf_settings'] = settings
    if module._diff and adopter.diffs:
        outcome['diff'] = adopter.diffs
    if summary['failed']:
        raise StoragePoolsError('%(failed)d instance(s) failed; see instances' % summary, **outcome)
    return outcome


def main():
    module = AnsibleModule(
        argument_spec=dict(
            instances=dict(type='list', elements='str', default=['all']),
            exclude=dict(type='list', elements='str', default=[]),
            state=dict(type='str', default='adopted', choices=['adopted', 'reverted']),
            instances_path=dict(type='path', default='/var/lib/nova/instances'),
            disks_pool=dict(type='str', default='nova-disks-pool'),
            cache_pool=dict(type='str', default='nova-base-images-pool'),
            disk_type=dict(type='str', default='file', choices=['file', 'volume']),
            running=dict(type='str', default='skip', choices=['skip', 'live']),
            live_timeout=dict(type='int', default=3600),
            nova_conf=dict(type='path', default='/etc/nova/nova.conf'),
            force=dict(type='bool', default=False),
            finalize=dict(type='bool', default=False),
            ceph_keyring=dict(type='path', no_log=False),  # a path, not a secret
            state_dir=dict(type='path', default='/var/lib/storagepools-libvirt'),
            lock_timeout=dict(type='int', default=600),
            planned_pools=dict(type='list', elements='dict'),
            uri=dict(type='str', default='qemu:///system'),
        ),
        supports_check_mode=True,
    )
    run_module(module, run, missing_libraries=missing_libraries)


if __name__ == '__main__':
    main()
