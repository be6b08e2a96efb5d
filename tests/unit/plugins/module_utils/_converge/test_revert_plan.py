# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Planning a revert (state: reverted): a pure function of what was observed and of the journal's legacy
record, with a Nova domain as libvirt dumps it (data/nova-instance.xml), adopted by the real planner."""

from __future__ import annotations

import json
import os

import pytest
from nova_instance import BASE, DIRECTORY, UUID, changed_lines, nova_domain

from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.adopt_plan import (
    COPY,
    LINK,
    AdoptionObservation,
    DiskMove,
    plan_adoption,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.revert_plan import (
    USES_LEGACY,
    USES_VOLUME,
    DiskRevert,
    RevertObservation,
    legacy_record,
    plan_revert,
    wanted_disk_info,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._nova.layout import LegacyDisk, Skip

POOL = 'nova-disks-pool'
POOL_DIR = '/var/lib/nova/disks'
TARGETS = {'disk': 'vda', 'disk.local': 'vdb', 'disk.config': 'hda'}
FORMATS = {'disk': 'qcow2', 'disk.local': 'raw', 'disk.config': 'raw'}
LEGACY_INFO = json.dumps({os.path.join(DIRECTORY, name): fmt for name, fmt in FORMATS.items()}).encode()


def adopted_info():
    info = json.loads(LEGACY_INFO)
    info.update((os.path.join(POOL_DIR, '%s_%s' % (UUID, name)), fmt) for name, fmt in FORMATS.items())
    return json.dumps(info).encode()


def moves():
    found = []
    for name, fmt in FORMATS.items():
        backing = (BASE, 'raw') if name == 'disk' else (None, None)
        legacy = LegacyDisk(name, TARGETS[name], os.path.join(DIRECTORY, name), fmt, backing=backing[0],
                            backing_format=backing[1])
        move = DiskMove(UUID, legacy, POOL_DIR, 'nova-base-images-pool')
        move.method = LINK
        found.append(move)
    return found


def record():
    """What the adoption keeps before its first step, for the legacy domain."""
    disks = [{'name': move.legacy.name, 'target': move.legacy.target, 'legacy_path': move.legacy.legacy_path,
              'format': move.legacy.format, 'volume': move.volume, 'dest': move.dest} for move in moves()]
    return legacy_record(DIRECTORY, POOL, POOL_DIR, disks, nova_domain(), LEGACY_INFO, 0o644)


def adopted_domain():
    """The legacy domain as the real adoption planner leaves it."""
    plan = plan_adoption(AdoptionObservation(UUID, nova_domain(), False, moves(), json.loads(LEGACY_INFO)), POOL,
                         'file')
    return plan.after


def observe(method=LINK, document=None, disk_info=None, **seen):
    """Every recorded disk seen as ``seen`` (default: adopted - the legacy name our symlink, the volume ours,
    recorded, used by the domain)."""
    state = dict(volume_exists=True, volume_ours=True, volume_recorded=True, domain_uses=USES_VOLUME)
    state.update(seen)
    disks = []
    for recorded in record()['disks']:
        disk = DiskRevert(recorded, method)
        for key, value in state.items():
            setattr(disk, key, value)
        disks.append(disk)
    return RevertObservation(UUID, document or adopted_domain(), record(), disks,
                             adopted_info() if disk_info is None else disk_info)


def actions(plan, disk=None):
    return [step['action'] for step in plan.describe() if step.get('disk') == disk]


def test_the_record_keeps_each_disk_element_and_disk_info_exactly():
    kept = record()
    assert kept['disk_info'].encode() == LEGACY_INFO and kept['disk_info_mode'] == 0o644
    assert kept['pool'] == POOL and kept['pool_dir'] == POOL_DIR and kept['instance_dir'] == DIRECTORY
    vda = kept['disks'][0]
    assert vda['legacy_path'] == os.path.join(DIRECTORY, 'disk') and vda['format'] == 'qcow2'
    assert vda['dest'] == os.path.join(POOL_DIR, '%s_disk' % UUID)
    assert vda['element'].startswith("<disk type=\"file\" device=\"disk\">") and 'slot="0x04"' in vda['element']
    json.dumps(kept)  # it goes into the journal as JSON


def test_a_same_filesystem_revert_links_back_then_removes_and_the_domain_is_as_before():
    plan = plan_revert(observe(), POOL)
    for name in FORMATS:
        assert actions(plan, name) == ['link_back', 'unrecord', 'remove']
    assert [step['action'] for step in plan.describe()] == (
        ['link_back'] * 3 + ['domain', 'disk_info'] + ['unrecord', 'remove'] * 3)
    assert plan.after.canonical() == nova_domain().canonical()  # the round trip ends where it started
    assert len(changed_lines(plan.domain_diff())) == 2 * 3 + 5  # three sources back, the overlay's chain gone
    assert {disk['name']: (disk['from'], disk['to'], disk['method']) for disk in plan.disks} == {
        name: (os.path.join(POOL_DIR, '%s_%s' % (UUID, name)), os.path.join(DIRECTORY, name), LINK)
        for name in FORMATS}


def test_a_cross_filesystem_revert_copies_verifies_and_swaps_back():
    plan = plan_revert(observe(method=COPY), POOL)
    assert actions(plan, 'disk') == ['copy_back', 'verify_back', 'swap_back', 'remove']  # no record on a copy
    undo = [step for step in plan.steps if step.action == 'copy_back']
    assert all(step.undo is not None for step in undo)


def test_what_libvirt_changed_since_the_adoption_stays():
    changed = adopted_domain()
    changed.root.find('devices/disk/address').set('slot', '0x09')
    changed.root.find('memory').text = '4194304'
    plan = plan_revert(observe(document=changed), POOL)
    after = plan.after
    assert after.root.find('devices/disk/address').get('slot') == '0x09' and after.root.find('memory').text == '4194304'
    assert [disk.source_file for disk in after.disks()] == [os.path.join(DIRECTORY, name) for name in FORMATS]
    assert all(disk.element.find('backingStore') is None for disk in after.disks())


def test_a_killed_revert_resumes_from_what_is_there():
    # killed after the link_back of every disk and the domain: the legacy names share the volumes' inodes
    plan = plan_revert(observe(document=nova_domain(), legacy_is_file=True, same_inode=True,
                               domain_uses=USES_LEGACY), POOL)
    assert [step['action'] for step in plan.describe()] == ['disk_info'] + ['unrecord', 'remove'] * 3
    # killed after unrecord: the record is gone, the volume still ours by its inode
    plan = plan_revert(observe(document=nova_domain(), disk_info=LEGACY_INFO, legacy_is_file=True, same_inode=True,
                               volume_recorded=False, domain_uses=USES_LEGACY), POOL)
    assert [step['action'] for step in plan.describe()] == ['remove'] * 3
    # a copy back swapped in, the domain not yet redefined: it equals the volume
    plan = plan_revert(observe(method=COPY, legacy_is_file=True, equal_bytes=True), POOL)
    assert actions(plan, 'disk') == ['remove'] and {'action': 'domain'} in plan.describe()
    # everything done
    done = plan_revert(observe(document=nova_domain(), disk_info=LEGACY_INFO, legacy_is_file=True,
                               volume_exists=False, volume_ours=False, volume_recorded=False,
                               domain_uses=USES_LEGACY), POOL)
    assert not done


@pytest.mark.parametrize('seen, reason', [
    (dict(domain_uses=None), 'neither its pool volume'),
    (dict(volume_ours=False), 'this adoption did not make'),
    (dict(legacy_is_file=True, method=COPY), 'refusing to choose'),
    (dict(volume_exists=False), 'neither'),
])
def test_states_no_revert_leaves_are_refused(seen, reason):
    method = seen.pop('method', LINK)
    with pytest.raises(Skip, match=reason):
        plan_revert(observe(method=method, **seen), POOL)


def test_a_stale_copy_the_domain_no_longer_uses_goes():
    """A revert killed after its domain step, the guest then started on the legacy file: the volume is stale."""
    plan = plan_revert(observe(method=COPY, document=nova_domain(), legacy_is_file=True, equal_bytes=False,
                               domain_uses=USES_LEGACY), POOL)
    assert actions(plan, 'disk') == ['remove']


def test_disk_info_comes_back_byte_for_byte_or_keeps_what_nova_added():
    kept = record()
    assert wanted_disk_info(kept, adopted_info()) == LEGACY_INFO
    assert wanted_disk_info(kept, LEGACY_INFO) == LEGACY_INFO
    info = json.loads(adopted_info())
    info[os.path.join(DIRECTORY, 'disk.rescue')] = 'qcow2'
    wanted = json.loads(wanted_disk_info(kept, json.dumps(info).encode()))
    assert wanted == dict(json.loads(LEGACY_INFO), **{os.path.join(DIRECTORY, 'disk.rescue'): 'qcow2'})
    with pytest.raises(Skip, match='not JSON'):
        wanted_disk_info(kept, b'{nope')
