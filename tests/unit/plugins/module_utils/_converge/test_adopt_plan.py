# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Planning an adoption into a file pool: a pure function of what was observed, with a Nova domain as
libvirt dumps it (data/nova-instance.xml) as input."""

from __future__ import annotations

import os

import pytest
from nova_instance import BASE, DIRECTORY, UUID, changed_lines, nova_domain

from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.adopt import COPY, LINK, LIVE_COPY
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.adopt_plan import (
    AdoptionObservation,
    DiskMove,
    plan_adoption,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._nova.layout import LegacyDisk

POOL = 'nova-disks-pool'
POOL_DIR = '/var/lib/nova/disks'
NAMES = ('disk', 'disk.local', 'disk.config')


def legacy_disk(name, needs_backing_format=False):
    target = {'disk': 'vda', 'disk.local': 'vdb', 'disk.config': 'hda'}[name]
    if name == 'disk':
        return LegacyDisk(name, target, os.path.join(DIRECTORY, name), 'qcow2', backing=BASE, backing_format='raw',
                          needs_backing_format=needs_backing_format)
    return LegacyDisk(name, target, os.path.join(DIRECTORY, name), 'raw')


def disk_info(adopted=False):
    info = dict((os.path.join(DIRECTORY, name), 'qcow2' if name == 'disk' else 'raw') for name in NAMES)
    if adopted:
        info.update((os.path.join(POOL_DIR, '%s_%s' % (UUID, name)), fmt) for name, fmt in
                    (('disk', 'qcow2'), ('disk.local', 'raw'), ('disk.config', 'raw')))
    return info


def observe(method, document=None, info=None, needs_backing_format=False, **seen):
    """What Adopter.observe returns for the domain of data/nova-instance.xml, every disk seen as ``seen``."""
    moves = []
    for name in NAMES:
        move = DiskMove(UUID, legacy_disk(name, needs_backing_format), POOL_DIR, 'nova-base-images-pool',
                        in_pool=seen.get('in_pool', False))
        move.method = method
        for key, value in seen.items():
            setattr(move, key, value)
        moves.append(move)
    return AdoptionObservation(UUID, document or nova_domain(), method == LIVE_COPY, moves,
                               disk_info() if info is None else info)


def actions(plan, disk=None):
    described = plan.describe()
    if disk is None:
        return [step['action'] for step in described]
    return [step['action'] for step in described if step.get('disk') == disk]


def test_a_fresh_instance_on_the_same_filesystem_is_linked_recorded_and_swapped():
    plan = plan_adoption(observe(LINK), POOL, 'file')
    for name in NAMES:
        assert actions(plan, name) == ['register', 'link', 'record', 'swap']
    assert plan.describe()[-2:] == [{'action': 'disk_info'}, {'action': 'domain'}]
    assert [(disk['name'], disk['method'], disk['to']) for disk in plan.disks] == [
        (name, 'link', '%s/%s_%s' % (POOL_DIR, UUID, name)) for name in NAMES]


def test_the_domain_diff_holds_only_the_real_changes():
    plan = plan_adoption(observe(LINK), POOL, 'file')
    lines = changed_lines(plan.domain_diff())
    # per disk its source line, and for the overlay an explicit one-level backingStore (5 lines)
    assert len(lines) == 2 * len(NAMES) + 5, plan.domain_diff()
    assert '+      <source file="%s/%s_disk"/>' % (POOL_DIR, UUID) in lines
    assert '-      <source file="%s/disk"/>' % DIRECTORY in lines
    assert '+        <source file="%s"/>' % BASE in lines
    assert not [line for line in lines if 'address' in line or 'driver' in line]


def test_volume_disks_name_the_pool_and_the_volume():
    plan = plan_adoption(observe(LINK), POOL, 'volume')
    after = plan.after.disk('vdb')
    assert after.source_volume == (POOL, '%s_disk.local' % UUID) and after.type == 'volume'
    assert '+    <disk device="disk" type="volume">' in changed_lines(plan.domain_diff())


def test_an_overlay_without_a_backing_format_in_its_header_is_rebased():
    plan = plan_adoption(observe(LINK, needs_backing_format=True), POOL, 'file')
    assert actions(plan, 'disk') == ['register', 'link', 'record', 'rebase', 'swap']
    assert actions(plan, 'disk.local') == ['register', 'link', 'record', 'swap']


@pytest.mark.parametrize('seen, left', [
    ({'dest_exists': True}, ['link', 'record', 'swap']),  # killed after register
    ({'dest_exists': True, 'same_inode': True}, ['record', 'swap']),  # killed after link
    ({'dest_exists': True, 'same_inode': True, 'record': {'adopting': {'size': 1}}}, ['record', 'swap']),
    ({'dest_exists': True, 'same_inode': True, 'record': {'method': 'link'}}, ['swap']),  # killed after record
    ({'dest_exists': True, 'same_inode': True, 'record': {'method': 'link'}, 'linked': True}, []),
])
def test_a_rerun_plans_only_what_a_killed_run_left(seen, left):
    plan = plan_adoption(observe(LINK, **seen), POOL, 'file')
    for name in NAMES:
        assert actions(plan, name) == left


def test_an_adopted_instance_plans_nothing():
    once = plan_adoption(observe(LINK), POOL, 'file')
    done = {'dest_exists': True, 'same_inode': True, 'record': {'method': 'link'}, 'linked': True, 'in_pool': True}
    again = plan_adoption(observe(LINK, document=once.after, info=disk_info(adopted=True), **done), POOL, 'file')
    assert not again and again.describe() == [] and again.domain_diff() is None
    assert again.disks == []  # nothing to report either


def test_a_disk_in_the_pool_without_its_link_is_finished_and_reported():
    once = plan_adoption(observe(LINK), POOL, 'file')
    seen = {'dest_exists': True, 'record': {'method': 'link'}, 'in_pool': True}
    plan = plan_adoption(observe(LINK, document=once.after, info=disk_info(adopted=True), **seen), POOL, 'file')
    assert actions(plan) == ['swap'] * len(NAMES)
    assert [disk['name'] for disk in plan.disks] == list(NAMES)


def test_a_copy_is_verified_and_discarded_when_it_fails():
    plan = plan_adoption(observe(COPY), POOL, 'file')
    for name in NAMES:
        assert actions(plan, name) == ['register', 'copy', 'verify', 'swap']
    copy_steps = [step for step in plan.steps if step.action == 'copy']
    assert all(step.undo is not None for step in copy_steps)
    assert all(step.undo is None for step in plan.steps if step.action != 'copy')


def test_a_verified_copy_of_the_unchanged_legacy_file_is_not_copied_again():
    seen = {'dest_exists': True, 'fresh_copy': True, 'record': {'method': 'copy'}}
    plan = plan_adoption(observe(COPY, **seen), POOL, 'file')
    assert actions(plan, 'disk') == ['swap']


def test_a_running_guest_is_block_copied():
    plan = plan_adoption(observe(LIVE_COPY), POOL, 'file')
    for name in NAMES:
        assert actions(plan, name) == ['register', 'blockcopy', 'swap']
    assert [disk['method'] for disk in plan.disks] == ['live-copy'] * len(NAMES)


def test_planning_runs_nothing():
    """The steps call their operations only when applied: here there are none at all."""
    plan = plan_adoption(observe(LINK), POOL, 'file')
    with pytest.raises(AttributeError):
        plan.steps[0].do()
