# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The cloner's plans, from what was observed: real files in tmp_path, and a dir pool of
libvirt's in-process test driver (``test:///default``) over that directory."""

from __future__ import annotations

import libvirt
import pytest

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import records as metadata
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.volume import cloner_for
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.volume import VolumeDefinition

MiB = 1024 * 1024


@pytest.fixture
def pool(tmp_path):
    """(connection, pool target): an active dir pool 'files' of the test driver on tmp_path/pool."""
    target = tmp_path / 'pool'
    target.mkdir()
    conn = libvirt.open('test:///default')
    conn.storagePoolCreateXML("<pool type='dir'><name>files</name><target><path>%s</path></target></pool>"
                              % target, 0)
    yield conn, target
    destroy_test_pools(conn)


def destroy_test_pools(conn):
    """The test driver keeps its state for the whole process: the pools a test started go with it."""
    for started in conn.listAllStoragePools(0):
        if started.name() != 'default-pool':
            started.destroy()
    conn.close()


def image(tmp_path, name='base.raw', size=4 * MiB):
    path = tmp_path / name
    with open(path, 'wb') as handle:
        handle.truncate(size)
        handle.write(b'data')
    return str(path)


def planned(conn, source, mode='copy', volume_format=None, capacity=None, verify=True, name='v.img'):
    cloner = cloner_for(conn, 'qemu:///system', 'files', name)
    try:
        plan = cloner.plan_clone(source, mode, volume_format, capacity, None, verify)
        return cloner, [step.action for step in plan.steps]
    finally:
        cloner.close()


def test_a_raw_file_into_a_file_pool_is_a_sparse_copy_verified_and_recorded(pool, tmp_path):
    conn, target = pool
    cloner, actions = planned(conn, {'path': image(tmp_path), 'format': 'raw'})
    assert actions == ['create', 'copy', 'verify', 'record'] and cloner.method == 'sparse-copy'
    assert cloner.record['format'] == 'raw' and cloner.record['virtual_size'] == 4 * MiB
    assert cloner.record['source'] == {'path': str(tmp_path / 'base.raw')} and cloner.record['method'] == 'sparse-copy'
    assert cloner.result_volume() == {'name': 'v.img', 'pool': 'files', 'path': str(target / 'v.img'), 'format': 'raw',
                                      'capacity': 4 * MiB, 'backing': None}


def test_a_conversion_is_qemu_img_and_a_cow_volume_a_qcow2_overlay(pool, tmp_path):
    conn, _target = pool
    source = {'path': image(tmp_path), 'format': 'raw'}
    cloner, actions = planned(conn, source, volume_format='qcow2', verify=False)
    assert actions == ['create', 'convert', 'record'] and cloner.method == 'qemu-img-convert'
    cloner, actions = planned(conn, source, mode='cow', capacity=8 * MiB)
    assert actions == ['create', 'record'] and cloner.method == 'qcow2-overlay'  # cow is never verified
    assert cloner.wanted.backing_path == source['path'] and cloner.wanted.backing_format == 'raw'
    assert cloner.result_volume()['backing'] == {'path': source['path'], 'format': 'raw'}
    with pytest.raises(StoragePoolsError, match='^format: a copy-on-write volume on a file pool is a qcow2'):
        planned(conn, source, mode='cow', volume_format='raw')


def test_a_volume_only_grows_and_never_below_its_source(pool, tmp_path):
    conn, _target = pool
    with pytest.raises(StoragePoolsError, match='^capacity: 1048576 bytes is smaller than the source'):
        planned(conn, {'path': image(tmp_path), 'format': 'raw'}, capacity=MiB)


def test_a_source_file_that_is_not_what_it_is_declared_is_refused_before_any_step(pool, tmp_path):
    conn, _target = pool
    path = tmp_path / 'fake.raw'
    path.write_bytes(b'QFI\xfb' + b'\0' * 4092)  # a qcow2 magic in a file declared raw
    with pytest.raises(StoragePoolsError):
        planned(conn, {'path': str(path), 'format': 'raw'})


def made_earlier(conn, target, source, capacity):
    """A volume an earlier run made: libvirt lists it (the test driver's, in memory) and its file carries the
    record that run wrote."""
    conn.storagePoolLookupByName('files').createXML(VolumeDefinition('v.img', capacity, 'raw').to_xml(), 0)
    path = target / 'v.img'
    path.write_bytes(b'')
    record = metadata.make_record('raw', capacity, {'path': source}, method='sparse-copy')
    metadata.write_file_metadata(str(path), record)
    return record


def test_a_rerun_plans_nothing_and_shows_no_diff(pool, tmp_path):
    conn, target = pool
    source = image(tmp_path)
    record = made_earlier(conn, target, source, 4 * MiB)
    cloner, actions = planned(conn, {'path': source, 'format': 'raw'})
    assert actions == [] and cloner.record == record and cloner.method == 'sparse-copy'
    assert cloner.diff() == []


def test_growing_a_volume_plans_resize_and_record_and_diffs_only_the_capacity(pool, tmp_path):
    conn, target = pool
    source = image(tmp_path)
    made_earlier(conn, target, source, 4 * MiB)
    cloner, actions = planned(conn, {'path': source, 'format': 'raw'}, capacity=8 * MiB)
    assert actions == ['resize', 'record'] and cloner.record['virtual_size'] == 8 * MiB
    volume, record = cloner.diff()
    assert volume['before_header'] == "volume 'v.img' of pool 'files' (before)"
    changed = [line for line in volume['after'].splitlines() if line not in volume['before'].splitlines()]
    assert changed == ["  <capacity unit=\"bytes\">%d</capacity>" % (8 * MiB)]
    assert '"virtual_size": %d' % (4 * MiB) in record['before'] and '"virtual_size": %d' % (8 * MiB) in record['after']


def test_a_name_taken_by_a_volume_this_task_did_not_make_is_refused(pool, tmp_path):
    conn, target = pool
    made_earlier(conn, target, '/somewhere/else.raw', 4 * MiB)
    with pytest.raises(StoragePoolsError, match="^name: pool 'files' already has a volume 'v.img'"):
        planned(conn, {'path': image(tmp_path), 'format': 'raw'})


def test_a_new_volume_diffs_from_nothing(pool, tmp_path):
    conn, target = pool
    cloner, _actions = planned(conn, {'path': image(tmp_path), 'format': 'raw'})
    volume, record = cloner.diff()
    assert volume['before'] == '' and "<path>%s</path>" % (target / 'v.img') in volume['after']
    assert record['before'] == '' and '"method": "sparse-copy"' in record['after']


def test_a_pool_without_backend_is_refused_naming_pool(pool):
    conn, _target = pool
    conn.storagePoolCreateXML("<pool type='iscsi'><name>lun</name><source><host name='10.0.0.3'/>"
                              "<device path='iqn.2013-06.com.example:iscsi-pool'/></source>"
                              "<target><path>/dev/disk/by-path</path></target></pool>", 0)
    with pytest.raises(StoragePoolsError, match="^pool: 'lun' is a iscsi pool; this version clones into"):
        cloner_for(conn, 'qemu:///system', 'lun', 'v.img')
