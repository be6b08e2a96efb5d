# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Planning a cutover onto a logical pool: a pure function of what was observed. The pool is a logical pool
of libvirt's own test driver (test:///default), the domain data/nova-instance.xml."""

from __future__ import annotations

import os
import uuid

import pytest
from nova_instance import BASE, DIRECTORY, UUID, changed_lines, nova_domain

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.base import backend_for
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.cutover_plan import (
    CutoverObservation,
    ImageImport,
    plan_cutover,
    point_domain,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.connection import libvirt
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.pool import Endpoint
from ansible_collections.storagepools.libvirt.plugins.module_utils._nova.layout import LegacyDisk


@pytest.fixture(scope='module')
def target():
    conn = libvirt.open('test:///default')
    vg = 'nova-vg-%s' % uuid.uuid4().hex[:8]
    pool = conn.storagePoolDefineXML("<pool type='logical'><name>%s</name><source><name>%s</name>"
                                     "<format type='lvm2'/></source><target><path>/dev/%s</path></target></pool>"
                                     % (vg, vg, vg), 0)
    pool.create(0)
    yield backend_for(Endpoint(conn, vg, 'disks_pool'), 'disks_pool')
    pool.destroy()
    pool.undefine()
    conn.close()


def imports(target, state='absent'):
    disks = [LegacyDisk('disk', 'vda', os.path.join(DIRECTORY, 'disk'), 'qcow2', backing=BASE, backing_format='raw'),
             LegacyDisk('disk.local', 'vdb', os.path.join(DIRECTORY, 'disk.local'), 'raw')]
    return [ImageImport(legacy, target.volume_name(UUID, legacy.name), state) for legacy in disks
            if target.moves(legacy)]


def observe(target, state='absent', document=None, removals=(), kept=None, unrecorded=()):
    document = document or nova_domain()
    items = imports(target, state)
    return CutoverObservation(UUID, document, point_domain(document, items, target), items, list(unrecorded),
                              list(removals), kept)


def test_an_import_plans_each_disk_then_the_domain(target):
    plan = plan_cutover(observe(target), target)
    assert plan.describe() == [
        {'action': 'import', 'disk': 'disk'}, {'action': 'verify', 'disk': 'disk'},
        {'action': 'record', 'disk': 'disk'},
        {'action': 'import', 'disk': 'disk.local'}, {'action': 'verify', 'disk': 'disk.local'},
        {'action': 'record', 'disk': 'disk.local'},
        {'action': 'domain'}]
    assert [(disk['name'], disk['method'], disk['to']) for disk in plan.disks] == [
        (name, 'lvm-import', '%s/%s_%s' % (target.dev_dir, UUID, name.replace('_', '__')))
        for name in ('disk', 'disk.local')]
    assert plan.removed == []


def test_the_config_drive_stays_a_file_and_the_domain_gets_block_disks(target):
    plan = plan_cutover(observe(target), target)
    lines = changed_lines(plan.domain_diff())
    # removed and added: the overlay's <disk type>, <driver type> (qcow2 -> raw) and <source>; the raw
    # disk's <disk type> and <source>
    assert len(lines) == 2 * (3 + 2), plan.domain_diff()
    assert '+      <source dev="%s/%s_disk"/>' % (target.dev_dir, UUID) in lines
    assert '+      <driver cache="none" name="qemu" type="raw"/>' in lines
    assert plan.after.disk('hda').source_file == os.path.join(DIRECTORY, 'disk.config')


def test_a_killed_import_is_discarded_first_and_every_import_undoes_itself(target):
    plan = plan_cutover(observe(target, state='redo'), target)
    assert [step['action'] for step in plan.describe() if step.get('disk') == 'disk'] == [
        'discard', 'import', 'verify', 'record']
    assert [step.action for step in plan.steps if step.undo is not None] == ['discard', 'import'] * 2
    assert [step.undo for step in plan.steps if step.action == 'domain'] == [None]


def test_an_imported_instance_plans_nothing_until_finalize(target):
    once = plan_cutover(observe(target), target)
    again = plan_cutover(observe(target, state='done', document=once.after), target)
    assert not again and again.domain_diff() is None
    legacy = [(os.path.join(DIRECTORY, name), target.volume_name(UUID, name)) for name in ('disk', 'disk.local')]
    final = plan_cutover(observe(target, state='done', document=once.after, removals=legacy,
                                 kept={os.path.join(DIRECTORY, 'disk.config'): 'raw'}), target)
    assert final.describe() == [{'action': 'remove', 'disk': image} for _path, image in legacy] + [
        {'action': 'disk_info'}]
    assert final.removed == [path for path, _image in legacy] and final.disks == []


def test_volumes_already_in_use_only_gain_a_record(target):
    image = target.volume_name(UUID, 'disk')
    plan = plan_cutover(observe(target, state='done', unrecorded=[(image, {'method': 'in-place'})]), target)
    assert plan.describe()[0] == {'action': 'record', 'disk': image}
