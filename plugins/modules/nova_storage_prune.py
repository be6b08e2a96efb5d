#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: nova_storage_prune
short_description: Reclaim the pool volumes Nova leaves behind, through a quarantine that can be restored
version_added: 0.2.0
description:
  - One call per host. Nova does not know the pools this collection adopted its disks into; its delete removes
    the instance directory (with our symlinks) and the domain, and a resize or cold migration removes the source
    directory, so the pool volumes stay behind. This module finds them and reclaims them.
  - An orphan is a volume of O(disks_pool) named C({instance_uuid}_{disk}) whose instance has no domain (by
    uuid) on this host or a peer, that no instance directory (C(<uuid>), C(<uuid>_resize), C(<uuid>_del))
    links by a legacy path that is a symlink to it or by a C(disk.info) entry, that no disk of any domain on this
    host or a peer references (by path, pool and volume, block device or rbd name, backing chains included),
    and that no other volume's record names as its backing. Everything else is kept, with the reason in
    RV(reclaimed).
  - The age clock of an orphan starts when a run first sees it orphaned (recorded root-only under
    O(state_dir)), never at the file's mtime. A volume is reclaimed once orphaned for O(orphan_min_age).
  - Reclaiming quarantines, then purges. File pools move the file (a rename, in constant time; data, owner and record stay
    with it) into O(quarantine_dir), a root-only directory on the same filesystem outside the pool's target
    (libvirt lists every file in a dir pool). Logical pools rename the LV with the prefix
    C(storagepools-quarantine.) and tag it with the expiry. rbd pools move the image into the Ceph trash with
    the expiry as its deferment. A later run purges what expired; O(restore) brings a volume back.
  - Symlinks under O(instances_path) (the nova user owns it) are read, never followed; an instance directory
    that is a symlink is ignored (RV(ignored)).
  - With O(bases), the bases of the image cache pool O(cache_pool) (Nova's C(_base) as a dir pool, or the
    bases C(nova_image_cache) imported into an rbd or logical pool) are pruned too; docs/image-cache.md has
    the rules. A base is kept while a volume's record names it as its backing, an rbd image is a clone of its
    protected snapshot C(storagepools-base), an LV is a snapshot of it, a domain's disk or backing chain or an
    overlay's qcow2 header names it, or Nova takes it for in use (the sha1 of an image id in a domain's Nova
    metadata, on this host or a peer). Nothing is probed.
  - An unused base is quarantined once unused for Nova's age of its kind
    (O(remove_unused_original_minimum_age_seconds), O(remove_unused_resized_minimum_age_seconds)). A file of
    C(_base) goes only when Nova's own manager would remove it too (its age is its mtime, and never below the
    ages of O(nova_conf)), under Nova's lock for that base (C(<instances_path>/locks/nova-<base>)), with the
    rule checked again while the lock is held. An rbd base goes when its snapshot has no clone (unprotected,
    then moved into the trash; a restore protects it again), an LV base when no LVM snapshot uses it. An rbd
    or logical base was last used when a run last saw it in use (root-only under O(state_dir)).
  - The cache pool's quarantine is its backend's, for a file pool C(.<target name>.quarantine) beside its
    target (O(quarantine_dir) is the disks pool's). RV(reclaimed) has an entry per base, and O(restore) takes
    base names too. A cache pool that is not defined is not considered (with a warning).
author:
  - storagepools.libvirt team (@storagepools)
extends_documentation_fragment:
  - storagepools.libvirt.connection
  - storagepools.libvirt.connection.prune_actions
options:
  instances_path:
    description: Nova's C(instances_path).
    type: path
    default: /var/lib/nova/instances
  disks_pool:
    description: The pool of the instances' disks (active).
    type: str
    default: nova-disks-pool
  cache_pool:
    description: The image-cache pool whose bases O(bases) prunes (it may be O(disks_pool) itself).
    type: str
    default: nova-base-images-pool
  orphans:
    description: Reclaim orphaned volumes. With V(false) they are reported as kept.
    type: bool
    default: true
  orphan_min_age:
    description: Seconds a volume must have been seen orphaned before it is reclaimed.
    type: int
    default: 3600
  bases:
    description: Prune unused image-cache bases of O(cache_pool). With V(false) no base is considered.
    type: bool
    default: true
  remove_unused_original_minimum_age_seconds:
    description: Seconds an original base (C(<sha1>)), and a swap or ephemeral one, must be unused before it is
      quarantined (Nova's option of that name; for a file of C(_base), nova.conf's value when that is larger).
    type: int
    default: 86400
  remove_unused_resized_minimum_age_seconds:
    description: Seconds a resized base (C(<sha1>_<GiB>)) must be unused before it is quarantined (Nova's option
      of that name; for a file of C(_base), nova.conf's value when that is larger).
    type: int
    default: 3600
  max_used_percent:
    description: When the cache pool is fuller than this percentage, the unused bases still kept for their age
      are quarantined too, the least recently used first, until it is not. Bases in use never go. Quarantined
      data takes its space until purged (V(0) for O(quarantine) purges at once).
    type: int
  quarantine:
    description: Seconds reclaimed data is kept restorable before a later run purges it; V(0) purges at once.
    type: int
    default: 604800
  quarantine_dir:
    description:
      - File pools only, the disks pool's. Where quarantined files go; it must be on the filesystem of the pool's target and
        outside it, and is made root-only (0700) when missing. A symlink, or a directory not root's alone, is
        refused.
      - Defaults to C(.<target name>.quarantine) beside the pool's target directory.
    type: path
  restore:
    description: Names of quarantined volumes to bring back (same name, record and data). They are not
      reclaimed again in this run; their orphan clock starts afresh.
    type: list
    elements: str
  peers:
    description: libvirt URIs of the other hosts sharing O(instances_path). A volume any of their domains
      references is never an orphan. Each must answer, or nothing is reclaimed.
    type: list
    elements: str
  shared_instances_path:
    description:
      - V(auto) detects a shared O(instances_path) by its filesystem type (nfs, cifs, glusterfs, ceph and the
        like, from C(/proc/self/mountinfo)); V(shared) declares it shared; V(local) declares that no other host
        mounts it.
      - On a shared O(instances_path) the task is refused unless O(peers) are given.
    type: str
    choices: [auto, shared, local]
    default: auto
  nova_conf:
    description: Nova's configuration file (C([image_cache]) ages and C(remove_unused_base_images), for the files
      of C(_base)).
    type: path
    default: /etc/nova/nova.conf
  ceph_keyring:
    description: For an rbd O(disks_pool), a keyring with the key of the pool's C(source.auth) user.
    type: path
  state_dir:
    description: Root-only directory of the host lock, the journal, the orphans' first-seen times and the rbd
      and logical bases' last-used times.
    type: path
    default: /var/lib/storagepools-libvirt
  lock_timeout:
    description: Seconds to wait for another run holding the host lock.
    type: int
    default: 600
seealso:
  - module: storagepools.libvirt.virt_pool_info
  - module: storagepools.libvirt.virt_volume_clone
'''

EXAMPLES = r'''
- name: Reclaim what deleted and migrated instances left in the disks pool (kept restorable for a week)
  storagepools.libvirt.nova_storage_prune:
    disks_pool: nova-disks-pool
  register: pruned

- name: Bring one back
  storagepools.libvirt.nova_storage_prune:
    restore:
      - 6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b_disk

- name: Prune the image cache too, keeping it under 80% full (bases unused for a day, resized ones for an hour)
  storagepools.libvirt.nova_storage_prune:
    cache_pool: nova-base-images-pool
    max_used_percent: 80

- name: A shared instances_path, with the other compute hosts asked too
  storagepools.libvirt.nova_storage_prune:
    peers:
      - qemu+ssh://root@compute-2/system
      - qemu+ssh://root@compute-3/system
'''

RETURN = r'''
reclaimed:
  description: Per volume of the disks pool, per base of the cache pool and per quarantined volume, what the
    run did (would do in check mode) and why.
  returned: success
  type: list
  elements: dict
  contains:
    pool:
      description: The pool (O(disks_pool) or O(cache_pool)).
      type: str
    volume:
      description: The volume's name (a base's is its C(_base) name).
      type: str
    reason:
      description: Why it is kept, or why it is reclaimed.
      type: str
    bytes:
      description: What the volume takes (what reclaiming it frees).
      type: int
    action:
      description: V(quarantined), V(purged), V(restored), V(kept) (or V(failed), with the reason). A base found in
        use when checked again under Nova's lock is V(kept), with that reason.
      type: str
summary:
  description: How many volumes ended in each action, and the bytes quarantined, purged and restored.
  returned: success
  type: dict
  sample: {kept: 150, quarantined: 6, purged: 0, restored: 0, failed: 0, quarantined_bytes: 1073741824,
           purged_bytes: 0, restored_bytes: 0}
actions:
  description: The journalled steps of the run, in order (in check mode, the steps a real run would take).
  returned: success
  type: list
  elements: dict
ignored:
  description: Entries of O(instances_path) named like instance directories that are not real directories (a
    symlink planted there); nothing they point at counts.
  returned: success
  type: list
  elements: str
diff:
  description: With --diff, where each reclaimed or restored volume is before and after.
  returned: changed and diff mode
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.storagepools.libvirt.plugins.module_utils._converge import prune as reclaim
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.prune_plan import FAILED, diff_text
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
    names.check_options(params, {'disks_pool': names.pool_name, 'cache_pool': names.pool_name,
                                 'instances_path': names.path, 'state_dir': names.path, 'nova_conf': names.path,
                                 'quarantine_dir': names.path, 'ceph_keyring': names.path})
    for option in ('orphan_min_age', 'quarantine', 'lock_timeout', 'remove_unused_original_minimum_age_seconds',
                   'remove_unused_resized_minimum_age_seconds'):
        if params[option] < 0:
            raise StoragePoolsError('%s: give a number of seconds, 0 or more' % option)
    if params['max_used_percent'] is not None and not 0 <= params['max_used_percent'] <= 100:
        raise StoragePoolsError('max_used_percent: give a percentage, 0 to 100')
    for name in params['restore'] or ():
        names.volume_name(name, 'restore')
    require_local_uri(params['uri'], 'pruning reads the instance directories and moves the volumes')
    params['peers'] = params['peers'] or []
    conn = open_connection(params['uri'])
    try:
        outcome = reclaim.prune(conn, params, module.check_mode)
    finally:
        conn.close()
    decisions = outcome['decisions']
    result = dict(changed=any(decision.changes for decision in decisions),
                  reclaimed=[decision.result() for decision in decisions], summary=reclaim.summary_of(decisions),
                  actions=outcome['actions'], ignored=outcome['ignored'])
    if module._diff and result['changed']:
        result['diff'] = diff_text(decisions)
    if outcome.get('cache_missing'):
        module.warn("cache_pool: no pool '%s' is defined; no base was considered" % params['cache_pool'])
    if any(decision.action == FAILED for decision in decisions):
        raise StoragePoolsError('%(failed)d volume(s) failed; see reclaimed' % result['summary'], **result)
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            instances_path=dict(type='path', default='/var/lib/nova/instances'),
            disks_pool=dict(type='str', default='nova-disks-pool'),
            cache_pool=dict(type='str', default='nova-base-images-pool'),
            orphans=dict(type='bool', default=True),
            orphan_min_age=dict(type='int', default=3600),
            bases=dict(type='bool', default=True),
            remove_unused_original_minimum_age_seconds=dict(type='int', default=86400),
            remove_unused_resized_minimum_age_seconds=dict(type='int', default=3600),
            max_used_percent=dict(type='int'),
            quarantine=dict(type='int', default=604800),
            quarantine_dir=dict(type='path'),
            restore=dict(type='list', elements='str'),
            peers=dict(type='list', elements='str'),
            shared_instances_path=dict(type='str', default='auto', choices=['auto', 'shared', 'local']),
            nova_conf=dict(type='path', default='/etc/nova/nova.conf'),
            ceph_keyring=dict(type='path', no_log=False),  # a path, not a secret
            state_dir=dict(type='path', default='/var/lib/storagepools-libvirt'),
            lock_timeout=dict(type='int', default=600),
            uri=dict(type='str', default='qemu:///system'),
        ),
        supports_check_mode=True,
    )
    run_module(module, run, missing_libraries=missing_libraries, reclaimed=[])


if __name__ == '__main__':
    main()
