# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The cloner's plans, from what was observed: real files in tmp_path, and a dir pool of
libvirt's in-process test driver (``test:///default``) over that directory."""

from __future__ import annotations

import gc
import subprocess

import libvirt
import pytest

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import records as metadata
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.volume import cloner_for
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.volume_plan import (
    explain_write,
    record_text,
)
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
    """The test driver keeps its state for the whole process: the pools a test started go with it.

    The test's garbage goes now too: a libvirt object freed by the cycle collector resets libvirt's last error,
    and a collection that falls between a failed lookup and its libvirtError would lose the error's code."""
    for started in conn.listAllStoragePools(0):
        if started.name() != 'default-pool':
            started.destroy()
    conn.close()
    gc.collect()


def image(tmp_path, name='base.raw', size=4 * MiB):
    path = tmp_path / name
    with open(path, 'wb') as handle:
        handle.truncate(size)
        handle.write(b'data')
    return str(path)


def planned(conn, source, mode='copy', volume_format=None, capacity=None, verify=True, name='v.img',
            extra_metadata=None):
    cloner = cloner_for(conn, 'qemu:///system', 'files', name)
    try:
        plan = cloner.plan_clone(source, mode, volume_format, capacity, extra_metadata, verify)
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


def test_only_raw_and_qcow2_volumes_are_written(pool, tmp_path):
    conn, _target = pool
    with pytest.raises(StoragePoolsError, match="^format: 'vmdk' is not a volume format this collection writes"):
        planned(conn, {'path': image(tmp_path), 'format': 'raw'}, volume_format='vmdk')


def test_a_volume_an_earlier_run_made_larger_is_never_shrunk(pool, tmp_path):
    conn, target = pool
    source = image(tmp_path)
    made_earlier(conn, target, source, 8 * MiB)
    with pytest.raises(StoragePoolsError, match='^capacity: volume v.img is 8388608 bytes; volumes only grow'):
        planned(conn, {'path': source, 'format': 'raw'})


def test_a_file_with_the_right_record_that_libvirt_does_not_list_is_not_taken_for_ours(pool, tmp_path):
    """The name is taken (a file is there) but libvirt has no volume of it: not a volume this task made."""
    conn, target = pool
    source = image(tmp_path)
    path = target / 'v.img'
    path.write_bytes(b'')
    record = metadata.make_record('raw', 4 * MiB, {'path': source}, method='sparse-copy')
    metadata.write_file_metadata(str(path), record)
    with pytest.raises(StoragePoolsError, match="^name: pool 'files' already has a volume 'v.img'"):
        planned(conn, {'path': source, 'format': 'raw'})


def test_extra_metadata_is_recorded_but_an_image_id_is_not_the_parent_s(pool, tmp_path):
    conn, _target = pool
    source = image(tmp_path)
    cloner, _actions = planned(conn, {'path': source, 'format': 'raw'}, mode='cow',
                               extra_metadata={'image_id': 'c0ffee', 'nova_base': 'b'})
    assert cloner.record['source'] == {'path': source, 'image_id': 'c0ffee', 'nova_base': 'b'}
    assert cloner.record['backing'] == {'path': source, 'format': 'raw', 'nova_base': 'b'}
    assert cloner.wanted.allocation == 0 and cloner.wanted.capacity == 4 * MiB


def test_a_full_destination_is_named_as_the_pool_with_where_the_write_stopped(pool, tmp_path):
    conn, target = pool
    cloner, _actions = planned(conn, {'path': image(tmp_path), 'format': 'raw'})
    copy = cloner.plan.steps[1]
    assert copy.action == 'copy'
    failure = copy.failure(OSError(28, 'No space left on device'))
    expected = ("pool: copy %s into 'v.img' (reflink or sparse copy) failed. No space left on device at %s: the "
                "destination pool ran out of space" % (tmp_path / 'base.raw', target / 'v.img'))
    assert str(failure).startswith(expected)
    other = copy.failure(OSError(5, 'Input/output error'))  # not a full disk: the step's own option, no hint
    assert str(other) == "pool: copy %s into 'v.img' (reflink or sparse copy) failed" % (tmp_path / 'base.raw')


def test_explain_write_knows_a_full_disk_from_any_other_failure():
    assert explain_write(OSError(28, 'No space left on device'), '/pool/v.img')[0] == 'pool'
    from_qemu_img = StoragePoolsError('convert failed', libvirt_error='qemu-img: error while writing at byte 0: '
                                                                      'No space left on device')
    option, hint = explain_write(from_qemu_img)
    assert option == 'pool' and 'at the destination:' in hint
    assert explain_write(OSError(13, 'Permission denied')) is None
    assert explain_write(StoragePoolsError('refused')) is None


def test_a_record_shows_as_sorted_indented_json_and_none_as_nothing():
    assert record_text(None) == ''
    assert record_text({'b': 1, 'a': {'c': 2}}) == '{\n  "a": {\n    "c": 2\n  },\n  "b": 1\n}\n'


def test_a_cow_volume_diffs_its_backing_from_nothing(pool, tmp_path):
    conn, _target = pool
    source = image(tmp_path)
    cloner, _actions = planned(conn, {'path': source, 'format': 'raw'}, mode='cow')
    volume, record = cloner.diff()
    assert "<backingStore>" in volume['after'] and "<path>%s</path>" % source in volume['after']
    assert "<format type=\"raw\"/>" in volume['after'] and '"format": "qcow2"' in record['after']


# -- the source, resolved: a file or a volume of a pool ----------------------------------------------------------

def source_volume(conn, target, name='src.img', record=None, size=4 * MiB):
    """A volume of pool 'files' as libvirt lists it, its file written here (the test driver keeps no files)."""
    conn.storagePoolLookupByName('files').createXML(VolumeDefinition(name, size, 'raw').to_xml(), 0)
    path = image(target, name, size)
    if record is not None:
        metadata.write_file_metadata(path, record)
    return path


def test_a_volume_source_takes_its_format_from_its_record(pool):
    conn, target = pool
    path = source_volume(conn, target, record=metadata.make_record('raw', 4 * MiB, {'path': '/images/a.raw'}))
    cloner, actions = planned(conn, {'pool': 'files', 'volume': 'src.img'})
    assert actions == ['create', 'copy', 'verify', 'record'] and cloner.source.format == 'raw'
    assert cloner.source.path == path and cloner.record['source'] == {'pool': 'files', 'volume': 'src.img'}


def test_a_volume_source_s_record_and_the_task_must_agree_on_its_format(pool):
    conn, target = pool
    source_volume(conn, target, record=metadata.make_record('qcow2', 4 * MiB, {'path': '/images/a.qcow2'}))
    with pytest.raises(StoragePoolsError, match='^source.format: .*src.img is recorded as qcow2, the task declares'):
        planned(conn, {'pool': 'files', 'volume': 'src.img', 'format': 'raw'})


def test_a_source_without_recorded_or_declared_format_is_refused(pool):
    conn, target = pool
    source_volume(conn, target)
    with pytest.raises(StoragePoolsError, match='^source.format: .*src.img has no recorded format; declare it'):
        planned(conn, {'pool': 'files', 'volume': 'src.img'})


def test_a_source_names_an_absolute_path_or_a_volume_libvirt_lists(pool):
    conn, _target = pool
    with pytest.raises(StoragePoolsError, match="^source.path: 'base.raw' must be an absolute path"):
        planned(conn, {'path': 'base.raw', 'format': 'raw'})
    with pytest.raises(StoragePoolsError, match="^source.volume: pool 'files' has no volume 'nope.img'"):
        planned(conn, {'pool': 'files', 'volume': 'nope.img', 'format': 'raw'})
    with pytest.raises(StoragePoolsError, match="^source.pool: libvirt has no pool named 'elsewhere'"):
        planned(conn, {'pool': 'elsewhere', 'volume': 'nope.img', 'format': 'raw'})


def test_a_source_of_a_pool_type_without_backend_is_refused(pool):
    conn, _target = pool
    lun = conn.storagePoolCreateXML("<pool type='iscsi'><name>lun</name><source><host name='10.0.0.3'/>"
                                    "<device path='iqn.2013-06.com.example:iscsi-pool'/></source>"
                                    "<target><path>/dev/disk/by-path</path></target></pool>", 0)
    lun.createXML(VolumeDefinition('unit:0:0:1', MiB, 'raw').to_xml(), 0)
    with pytest.raises(StoragePoolsError, match="^source.pool: 'lun' is a iscsi pool; this version clones from file "
                                                "and logical pools"):
        planned(conn, {'pool': 'lun', 'volume': 'unit:0:0:1', 'format': 'raw'})


def test_cloning_runs_on_the_libvirt_host_only(pool):
    conn, _target = pool
    with pytest.raises(StoragePoolsError, match='^uri: cloning writes the volume and its record on the libvirt host'):
        cloner_for(conn, 'qemu+ssh://elsewhere/system', 'files', 'v.img')


def test_a_qcow2_source_is_converted_into_a_raw_volume(pool, tmp_path):
    conn, _target = pool
    path = str(tmp_path / 'base.qcow2')
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', path, str(4 * MiB)], check=True)
    cloner, actions = planned(conn, {'path': path, 'format': 'qcow2'}, volume_format='raw')
    assert actions == ['create', 'convert', 'verify', 'record'] and cloner.method == 'qemu-img-convert'
    assert cloner.source.info.virtual_size == 4 * MiB and cloner.wanted.format == 'raw'
