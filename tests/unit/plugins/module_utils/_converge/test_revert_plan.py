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
    plan_cutover_revert,
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


# -- a cutover into a logical (LVM) or rbd pool: the revert points the domain back, copying images back as needed

VG_DIR = '/dev/nova-vg'


def cutover_record(kind):
    """What the cutover keeps before its import: LVM moves all but the config drive (Nova keeps it a file)."""
    names = ('disk', 'disk.local') if kind == 'logical' else tuple(FORMATS)
    disks = []
    for name in names:
        volume = '%s_%s' % (UUID, name)
        disks.append({'name': name, 'target': TARGETS[name], 'legacy_path': os.path.join(DIRECTORY, name),
                      'format': FORMATS[name], 'backing': BASE if name == 'disk' else None,
                      'backing_format': 'raw' if name == 'disk' else None, 'volume': volume,
                      'dest': os.path.join(VG_DIR, volume) if kind == 'logical' else 'vms/%s' % volume,
                      'virtual_size': 1 << 30, 'owner': [64123, 64123], 'mode': 0o644})
    return legacy_record(DIRECTORY, POOL, None, disks, nova_domain(), LEGACY_INFO, 0o644)


def imported_domain(kind, names):
    """The legacy domain with ``names`` pointed at their LVs or rbd images, as the cutover's point does."""
    document = nova_domain()
    for name in names:
        disk = document.disk(TARGETS[name])
        if kind == 'logical':
            disk.point_at_block(os.path.join(VG_DIR, '%s_%s' % (UUID, name)))
        else:
            disk.point_at_rbd('vms/%s_%s' % (UUID, name), [('10.0.0.1', '6789')], 'nova', 'a' * 8 + '-' + 'b' * 27)
    return document


def observe_cutover(kind, disk_info=LEGACY_INFO, per_disk=None, **seen):
    """Every recorded disk imported and in use (the legacy file as imported, reading as its image), changed by
    ``seen`` for all disks and ``per_disk`` {name: {attribute: value}} for some."""
    record = cutover_record(kind)
    disks = []
    for recorded in record['disks']:
        disk = DiskRevert(recorded, 'un-import')
        state = dict(legacy_is_file=True, legacy_unchanged=True, equal_bytes=True, volume_exists=True,
                     volume_ours=True, domain_uses=USES_VOLUME)
        state.update(seen)
        state.update((per_disk or {}).get(disk.name, {}))
        for key, value in state.items():
            setattr(disk, key, value)
        disks.append(disk)
    in_use = [disk.name for disk in disks if disk.domain_uses == USES_VOLUME]
    return RevertObservation(UUID, imported_domain(kind, in_use), record, disks, disk_info)


@pytest.mark.parametrize('kind', ['logical', 'rbd'])
def test_an_image_the_guest_wrote_since_its_import_is_copied_back_first(kind):
    plan = plan_cutover_revert(observe_cutover(kind, per_disk={'disk.local': dict(equal_bytes=False)}), POOL)
    removes = [('remove', name) for name in (('disk', 'disk.local') if kind == 'logical' else FORMATS)]
    assert [(step['action'], step.get('disk')) for step in plan.describe()] == [
        ('copy_back', 'disk.local'), ('verify_back', 'disk.local'), ('swap_back', 'disk.local'),
        ('domain', None)] + removes
    assert {disk['name']: disk['method'] for disk in plan.disks}['disk.local'] == COPY
    assert {disk['name']: disk['method'] for disk in plan.disks}['disk'] == 'un-import'
    assert plan.after.canonical() == nova_domain().canonical()  # the round trip ends where it started
    assert [step for step in plan.steps if step.action == 'copy_back'][0].undo is not None


@pytest.mark.parametrize('kind', ['logical', 'rbd'])
def test_after_finalize_only_force_copies_back_and_disk_info_gets_its_entries_again(kind):
    record = cutover_record(kind)
    moved = set(disk['legacy_path'] for disk in record['disks'])
    finalized = json.dumps({path: fmt for path, fmt in json.loads(LEGACY_INFO).items() if path not in moved}).encode()
    observed = observe_cutover(kind, disk_info=finalized, legacy_is_file=False, legacy_unchanged=False,
                               equal_bytes=False)
    with pytest.raises(Skip, match=r'is gone \(removed by finalize\?\).*Set force'):
        plan_cutover_revert(observed, POOL)
    plan = plan_cutover_revert(observed, POOL, force=True)
    names = [disk['name'] for disk in record['disks']]
    assert [(step['action'], step.get('disk')) for step in plan.describe()] == [
        (action, name) for name in names for action in ('copy_back', 'verify_back', 'swap_back')] + [
        ('domain', None), ('disk_info', None)] + [('remove', name) for name in names]
    assert wanted_disk_info(record, finalized) == LEGACY_INFO


@pytest.mark.parametrize('kind', ['logical', 'rbd'])
def test_a_killed_copy_back_resumes_from_what_is_there(kind):
    # killed after swap_back: the legacy name is the verified copy (changed since the import, reads as the image)
    plan = plan_cutover_revert(observe_cutover(kind, legacy_unchanged=False), POOL)
    assert 'copy_back' not in actions(plan, 'disk') and {'action': 'domain'} in plan.describe()
    # killed after the domain step: the images are stale, only removed
    plan = plan_cutover_revert(observe_cutover(kind, legacy_unchanged=False, equal_bytes=False,
                                               domain_uses=USES_LEGACY), POOL)
    assert [step['action'] for step in plan.describe()] == ['remove'] * len(plan.disks)
    # killed before the first copy: planned again as at first (with force after finalize)
    plan = plan_cutover_revert(observe_cutover(kind, legacy_is_file=False, equal_bytes=False), POOL, force=True)
    assert actions(plan, 'disk') == ['copy_back', 'verify_back', 'swap_back', 'remove']


@pytest.mark.parametrize('seen, reason', [
    (dict(legacy_unchanged=False, equal_bytes=False), 'changed after its import .* refusing to choose'),
    (dict(volume_exists=False), 'which is gone'),
    (dict(domain_uses=USES_LEGACY, legacy_is_file=False), 'which the domain uses, is gone'),
    (dict(volume_ours=False), 'this adoption did not make'),
])
def test_states_a_cutover_revert_never_guesses_are_refused_even_with_force(seen, reason):
    with pytest.raises(Skip, match=reason):
        plan_cutover_revert(observe_cutover('logical', **seen), POOL, force=True)
