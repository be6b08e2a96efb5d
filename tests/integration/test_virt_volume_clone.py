# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""virt_volume_clone against the real libvirtd, with images made by the tests (hostile ones too)."""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import time

import pytest
from conftest import actions, fill, run_module, sha256, start_module

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.file import (
    XATTR_NAME,
    read_file_metadata,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml import tree as xml_tree

MiB = 1024 * 1024


def clone(check=False, **args):
    return run_module('virt_volume_clone', args, check=check)


def qemu_info(path, image_format):
    out = subprocess.run(['qemu-img', 'info', '--output=json', '-f', image_format, path],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def allocation_map(path):
    """Which guest ranges a qcow2 allocates (data or zero clusters) and which it leaves to nothing."""
    out = subprocess.run(['qemu-img', 'map', '--output=json', '-f', 'qcow2', path],
                         capture_output=True, text=True, check=True).stdout
    return [(extent['start'], extent['length'], extent['present'], extent['data']) for extent in json.loads(out)]


def make_sparse_raw(path, size=256 * MiB):
    with open(path, 'wb') as handle:
        handle.truncate(size)
        for offset in (0, size // 2, size - MiB):
            handle.seek(offset)
            handle.write(os.urandom(MiB))
    return path


@pytest.fixture
def two_pools(pools, workdir):
    """Two active dir pools: (source pool, source dir, destination pool, destination dir)."""
    names = []
    for role in ('src', 'dst'):
        name = pools.new()
        target = os.path.join(workdir, role)
        result = run_module('virt_pool_ensure', dict(name=name, type='dir', target=target, autostart=False))
        assert not result.get('failed'), result
        names += [name, target]
    return names


def import_raw(pool, path, name):
    result = clone(pool=pool, name=name, source={'path': path, 'format': 'raw'})
    assert result['changed'] is True and not result.get('failed'), result
    return result


def test_raw_copy_across_pools_stays_sparse_and_is_recorded(pools, two_pools, workdir):
    src_pool, src_dir, dst_pool, dst_dir = two_pools
    image = make_sparse_raw(os.path.join(workdir, 'image.raw'))
    import_raw(src_pool, image, 'base.raw')
    args = dict(pool=dst_pool, name='copy.raw', source={'pool': src_pool, 'volume': 'base.raw'}, verify=True)

    check = clone(check=True, **args)
    assert actions(check) == ['create', 'copy', 'verify', 'record']
    assert not os.path.exists(os.path.join(dst_dir, 'copy.raw')), 'check mode created the volume'

    made = clone(**args)
    assert made['changed'] is True and made['method'] in ('sparse-copy', 'reflink')
    path = os.path.join(dst_dir, 'copy.raw')
    assert sha256(path) == sha256(image)
    assert os.stat(path).st_blocks * 512 <= 4 * MiB, 'the copy is not sparse'
    record = read_file_metadata(path)
    assert record['format'] == 'raw' and record['virtual_size'] == 256 * MiB
    assert record['source'] == {'pool': src_pool, 'volume': 'base.raw'} and record['backing'] is None
    assert qemu_info(path, record['format'])['virtual-size'] == 256 * MiB
    volume = xml_tree.parse(pools.lookup(dst_pool).storageVolLookupByName('copy.raw').XMLDesc(0))
    assert volume.find('target/format').get('type') == 'raw'
    assert int(volume.findtext('capacity')) == 256 * MiB

    assert clone(**args)['changed'] is False
    assert clone(check=True, **args)['changed'] is False


@pytest.mark.parametrize('first, second', [('raw', 'qcow2'), ('qcow2', 'raw')])
def test_format_conversions_with_explicit_formats(pools, two_pools, workdir, first, second):
    src_pool, _src_dir, dst_pool, dst_dir = two_pools
    image = make_sparse_raw(os.path.join(workdir, 'image.raw'), 64 * MiB)
    # the source volume in format `first`, made from the raw image
    made = clone(pool=src_pool, name='source', format=first, source={'path': image, 'format': 'raw'})
    assert not made.get('failed'), made
    args = dict(pool=dst_pool, name='converted', format=second, verify=True,
                source={'pool': src_pool, 'volume': 'source'})
    result = clone(**args)
    assert result['changed'] is True and result['method'] == 'qemu-img-convert', result
    assert actions(result) == ['create', 'convert', 'verify', 'record']
    path = os.path.join(dst_dir, 'converted')
    record = read_file_metadata(path)
    assert record['format'] == second and record['virtual_size'] == 64 * MiB
    info = qemu_info(path, second)
    assert info['format'] == second and info['virtual-size'] == 64 * MiB and 'backing-filename' not in info
    same = subprocess.run(['qemu-img', 'compare', '-q', '-f', 'raw', '-F', second, image, path], check=False)
    assert same.returncode == 0
    volume = xml_tree.parse(pools.lookup(dst_pool).storageVolLookupByName('converted').XMLDesc(0))
    assert volume.find('target/format').get('type') == second
    assert clone(**args)['changed'] is False


def test_cow_overlay_has_an_explicit_backing_format(pools, two_pools, workdir):
    src_pool, src_dir, dst_pool, dst_dir = two_pools
    import_raw(src_pool, make_sparse_raw(os.path.join(workdir, 'image.raw'), 64 * MiB), 'base.raw')
    args = dict(pool=dst_pool, instance_uuid='6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b', disk='disk', mode='cow',
                capacity=128 * MiB, source={'pool': src_pool, 'volume': 'base.raw'})
    made = clone(**args)
    assert made['method'] == 'qcow2-overlay' and actions(made) == ['create', 'record']
    name = '6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b_disk'
    path = os.path.join(dst_dir, name)
    base = os.path.join(src_dir, 'base.raw')
    assert made['volume'] == {'name': name, 'pool': dst_pool, 'path': path, 'format': 'qcow2',
                              'capacity': 128 * MiB, 'backing': {'path': base, 'format': 'raw'}}
    info = qemu_info(path, 'qcow2')
    assert info['backing-filename'] == base and info['backing-filename-format'] == 'raw'
    assert info['virtual-size'] == 128 * MiB
    record = read_file_metadata(path)
    assert record['backing'] == {'pool': src_pool, 'volume': 'base.raw', 'path': base, 'format': 'raw'}
    volume = xml_tree.parse(pools.lookup(dst_pool).storageVolLookupByName(name).XMLDesc(0))
    assert volume.findtext('backingStore/path') == base
    assert volume.find('backingStore/format').get('type') == 'raw'
    assert clone(**args)['changed'] is False
    args['capacity'] = 256 * MiB
    grown = clone(**args)
    assert actions(grown) == ['resize', 'record'] and qemu_info(path, 'qcow2')['virtual-size'] == 256 * MiB


def test_diff_shows_the_volume_and_its_record_and_nothing_on_a_rerun(two_pools, workdir):
    _src_pool, _src_dir, dst_pool, dst_dir = two_pools
    raw = make_sparse_raw(os.path.join(workdir, 'diffed.raw'), 16 * MiB)
    args = dict(pool=dst_pool, name='diffed.qcow2', format='qcow2', source={'path': raw, 'format': 'raw'})
    check = run_module('virt_volume_clone', args, check=True, diff=True)
    made = run_module('virt_volume_clone', args, diff=True)
    assert check['diff'] == made['diff'] and [entry['before'] for entry in made['diff']] == ['', '']
    volume, record = made['diff']
    assert '<path>%s</path>' % os.path.join(dst_dir, 'diffed.qcow2') in volume['after']
    assert '<format type="qcow2"/>' in volume['after'] and '"method": "qemu-img-convert"' in record['after']
    assert run_module('virt_volume_clone', args, diff=True).get('diff') is None  # a rerun changes nothing
    args['capacity'] = 32 * MiB
    grown = run_module('virt_volume_clone', args, diff=True)
    volume, record = grown['diff']
    changed = [line for line in volume['after'].splitlines() if line not in volume['before'].splitlines()]
    assert changed == ['  <capacity unit="bytes">%d</capacity>' % (32 * MiB)]
    assert json.loads(record['after'])['virtual_size'] == 32 * MiB


def test_image_file_import_with_declared_format_and_image_id(two_pools, workdir):
    _src_pool, _src_dir, dst_pool, dst_dir = two_pools
    raw = make_sparse_raw(os.path.join(workdir, 'image.raw'), 32 * MiB)
    qcow2 = os.path.join(workdir, 'image.qcow2')
    subprocess.run(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', raw, qcow2], check=True)
    args = dict(pool=dst_pool, name='9b5c1f2e7a1c4f0e8d1a2b3c4d5e6f708192a3b4', format='raw',
                source={'path': qcow2, 'format': 'qcow2'}, metadata={'image_id': 'img-1'})
    made = clone(**args)
    assert made['method'] == 'qemu-img-convert'
    path = os.path.join(dst_dir, args['name'])
    assert sha256(path) == sha256(raw)
    assert read_file_metadata(path)['source'] == {'path': qcow2, 'image_id': 'img-1'}
    assert clone(**args)['changed'] is False


def test_image_file_converted_to_qcow2(pools, two_pools, workdir):
    """raw file -> qcow2: libvirt creates the volume, qemu-img converts into it with both formats explicit."""
    _src_pool, _src_dir, dst_pool, dst_dir = two_pools
    raw = make_sparse_raw(os.path.join(workdir, 'image.raw'), 32 * MiB)
    args = dict(pool=dst_pool, name='image.qcow2', format='qcow2', verify=True,
                source={'path': raw, 'format': 'raw'})
    made = clone(**args)
    assert made['method'] == 'qemu-img-convert' and actions(made) == ['create', 'convert', 'verify', 'record']
    path = os.path.join(dst_dir, 'image.qcow2')
    assert sorted(os.listdir(dst_dir)) == ['image.qcow2']
    info = qemu_info(path, 'qcow2')
    assert info['virtual-size'] == 32 * MiB and info['format-specific']['data']['compat'] == '1.1'
    assert subprocess.run(['qemu-img', 'compare', '-q', '-f', 'raw', '-F', 'qcow2', raw, path], check=False).returncode == 0
    # the source's holes stay unallocated in the qcow2, as a plain `qemu-img convert` leaves them
    plain_qcow2 = os.path.join(workdir, 'plain.qcow2')
    subprocess.run(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', raw, plain_qcow2], check=True)
    assert allocation_map(path) == allocation_map(plain_qcow2)
    volume = pools.lookup(dst_pool).storageVolLookupByName('image.qcow2')
    assert "<format type='qcow2'/>" in volume.XMLDesc(0) and volume.path() == path
    plain = pools.lookup(dst_pool).createXML('<volume><name>plain</name><capacity>1024</capacity></volume>', 0)
    assert oct(os.stat(path).st_mode) == oct(os.stat(plain.path()).st_mode)  # what libvirt gives a volume
    assert read_file_metadata(path)['format'] == 'qcow2'
    assert clone(**args)['changed'] is False


# -- hostile images: refused, and the file they name is never read ------------

@pytest.fixture
def canary(workdir):
    """A file hostile images point at; its atime (far in the past) shows any read."""
    path = os.path.join(workdir, 'canary')
    with open(path, 'wb') as handle:
        handle.write(b'host secret\n' * 1000)
    os.utime(path, (946684800, 946684800))  # 2000-01-01: relatime updates it on any read

    def untouched():
        return os.stat(path).st_atime == 946684800
    untouched.path = path
    return untouched


def qcow2_with_backing(path, backing):
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', backing, path, '1M'], check=True)
    return path


def qcow2_with_data_file(path, data_file):
    """A qcow2 whose data lives in ``data_file`` (made against a copy, then pointed at it)."""
    decoy = path + '.data'
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-o', 'data_file=%s' % decoy, path, '1M'],
                   check=True)
    with open(path, 'r+b') as handle:
        header = handle.read(4096)
        start = header.index(decoy.encode())
        handle.seek(start - 8)
        handle.write(struct.pack('>II', 0x44415441, len(data_file)) + data_file.encode()
                     + b'\x00' * ((8 - len(data_file) % 8) % 8) + b'\x00' * 8)
    os.unlink(decoy)
    return path


def vmdk_descriptor(path, extent):
    with open(path, 'w') as handle:
        handle.write('# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n'
                     'createType="monolithicFlat"\n\n# Extent description\nRW 2048 FLAT "%s" 0\n' % extent)
    return path


def sparse_vmdk_with_descriptor(path, edit, capacity=None):
    """A monolithicSparse VMDK made by qemu-img, its embedded descriptor (the one qemu reads, at 0x200)
    rewritten by ``edit``, and maybe its header's capacity (in sectors)."""
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'vmdk', path, '1M'], check=True)
    with open(path, 'r+b') as handle:
        handle.seek(512)
        descriptor = handle.read(20 * 512).split(b'\x00', 1)[0]
        handle.seek(512)
        handle.write(edit(descriptor).ljust(20 * 512, b'\x00'))
        if capacity is not None:
            handle.seek(12)
            handle.write(struct.pack('<Q', capacity))
    return path


def vmdk_with_parent(path, parent):
    return sparse_vmdk_with_descriptor(path, lambda text: text.replace(
        b'parentCID=ffffffff\n', b'parentCID=ffffffff\nparentFileNameHint="%s"\n' % parent.encode()))


def vmdk_flat_extent_at_capacity_zero(path, extent):
    """qemu opens a sparse VMDK of capacity 0 as a descriptor file: the first "createType" anywhere (here in a
    comment) and the RW lines count, so it reads the FLAT extent; an allow-list of the createType line and
    the extent lines it matches sees a monolithicSparse with one sparse extent."""
    return sparse_vmdk_with_descriptor(path, lambda _text: (
        b'# Disk DescriptorFile createType="monolithicFlat"\nversion=1\nCID=12345678\nparentCID=ffffffff\n'
        b'createType="monolithicSparse"\nRDONLY 2048 SPARSE "image.vmdk"\nRW +2048 FLAT "%s" 0\n'
        % extent.encode()), capacity=0)


def qcow2_of_size(path, size):
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', path, '1M'], check=True)
    with open(path, 'r+b') as handle:
        handle.seek(24)
        handle.write(struct.pack('>Q', size))
    return path


@pytest.mark.parametrize('kind', ['raw-with-qcow2-header', 'qcow2-with-backing', 'qcow2-data-file',
                                  'vmdk-extent', 'qcow2-declared-raw', 'symlink-to-a-host-file', 'vmdk-parent',
                                  'vmdk-flat-extent-at-capacity-0', 'qcow2-8-EiB'])
def test_hostile_images_are_refused_and_the_canary_never_read(two_pools, workdir, canary, kind):
    _src_pool, _src_dir, dst_pool, dst_dir = two_pools
    image = os.path.join(workdir, 'hostile-' + kind)
    if kind == 'raw-with-qcow2-header':
        declared, option = 'raw', 'source.format: '
        qcow2_with_backing(image, canary.path)
    elif kind == 'qcow2-with-backing':
        declared, option = 'qcow2', 'source.path: '
        qcow2_with_backing(image, canary.path)
    elif kind == 'qcow2-data-file':
        declared, option = 'qcow2', 'source.path: '
        qcow2_with_data_file(image, canary.path)
    elif kind == 'vmdk-extent':
        declared, option = 'vmdk', 'source.path: '
        vmdk_descriptor(image, canary.path)
    elif kind == 'symlink-to-a-host-file':  # planted where an image was expected: never followed
        declared, option = 'raw', 'source.path: '
        os.symlink(canary.path, image)
    elif kind == 'vmdk-parent':
        declared, option = 'vmdk', 'source.path: '
        vmdk_with_parent(image, canary.path)
    elif kind == 'vmdk-flat-extent-at-capacity-0':
        declared, option = 'vmdk', 'source.path: '
        vmdk_flat_extent_at_capacity_zero(image, canary.path)
    elif kind == 'qcow2-8-EiB':
        declared, option = 'qcow2', 'source.path: %s declares a virtual size of %d bytes' % (image, 8 << 60)
        qcow2_of_size(image, 8 << 60)
    else:
        declared, option = 'raw', 'source.format: '
        subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', image, '1M'], check=True)
    assert canary(), 'making the image read the canary'
    for mode in ('copy', 'cow'):
        # a copy to raw: a volume format this collection writes, so nothing but the inspection stops it
        dest_format = {'format': 'raw'} if mode == 'copy' and declared == 'vmdk' else {}
        result = clone(pool=dst_pool, name='hostile', mode=mode, source={'path': image, 'format': declared},
                       **dest_format)
        assert result['failed'] is True, result
        assert result['msg'].startswith(option), result['msg']
        assert not os.path.exists(os.path.join(dst_dir, 'hostile'))
    assert canary(), 'the canary was read'


def test_a_conversion_never_takes_libvirts_cached_probe_of_the_source(pools, two_pools, workdir, canary):
    """libvirt keeps the format it probed at the last pool start/refresh: a guest's header written then must
    not decide how the recorded-raw source is read (qemu-img runs with -f raw, on the file it inspected)."""
    src_pool, src_dir, dst_pool, dst_dir = two_pools
    image = make_sparse_raw(os.path.join(workdir, 'image.raw'), 8 * MiB)
    import_raw(src_pool, image, 'guest.raw')  # recorded raw
    path = os.path.join(src_dir, 'guest.raw')
    with open(path, 'rb') as handle:
        first_mib = handle.read(MiB)
    header = qcow2_with_backing(os.path.join(workdir, 'header.qcow2'), canary.path)
    with open(header, 'rb') as handle, open(path, 'r+b') as disk:  # the guest writes a qcow2 header
        disk.write(handle.read())
    pools.lookup(src_pool).refresh(0)  # as libvirt's own pool start does
    cached = xml_tree.parse(pools.lookup(src_pool).storageVolLookupByName('guest.raw').XMLDesc(0))
    assert cached.find('target/format').get('type') == 'qcow2', 'libvirt did not cache its probe'
    with open(path, 'r+b') as disk:  # and raw data again: the inspection sees raw bytes
        disk.write(first_mib)
    os.utime(canary.path, (946684800, 946684800))  # libvirt's refresh read it; from here on nothing may

    result = clone(pool=dst_pool, name='converted', format='qcow2', verify=True,
                   source={'pool': src_pool, 'volume': 'guest.raw'})
    assert not result.get('failed') and result['changed'] is True, result
    assert result['method'] == 'qemu-img-convert', result
    converted = os.path.join(dst_dir, 'converted')
    assert subprocess.run(['qemu-img', 'compare', '-q', '-f', 'raw', '-F', 'qcow2', image, converted],
                          check=False).returncode == 0, 'the source was not read as raw'
    assert 'backing-filename' not in qemu_info(converted, 'qcow2')
    assert canary(), 'the canary was read'


def test_a_streamoptimized_vmdk_is_accepted(two_pools, workdir):
    _src_pool, _src_dir, dst_pool, dst_dir = two_pools
    raw = make_sparse_raw(os.path.join(workdir, 'image.raw'), 8 * MiB)
    vmdk = os.path.join(workdir, 'image.vmdk')
    subprocess.run(['qemu-img', 'convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized',
                    raw, vmdk], check=True)
    result = clone(pool=dst_pool, name='from-vmdk', format='raw', source={'path': vmdk, 'format': 'vmdk'})
    assert result['changed'] is True, result
    assert sha256(os.path.join(dst_dir, 'from-vmdk')) == sha256(raw)


# -- errors: clear, nothing partial left, the source untouched ----------------

def test_errors_name_the_option_and_leave_nothing(conn, pools, two_pools, workdir):
    src_pool, src_dir, dst_pool, dst_dir = two_pools
    image = make_sparse_raw(os.path.join(workdir, 'image.raw'), 16 * MiB)
    import_raw(src_pool, image, 'base.raw')
    before = sorted(os.listdir(dst_dir))

    def refused(option, **args):
        result = clone(**args)
        assert result['failed'] is True, result
        assert result['msg'].startswith(option), result['msg']
        assert sorted(os.listdir(dst_dir)) == before

    source = {'pool': src_pool, 'volume': 'base.raw'}
    pools.lookup(dst_pool).createXML("<volume><name>taken</name><capacity>1024</capacity></volume>", 0)
    before = sorted(os.listdir(dst_dir))
    refused('name: ', pool=dst_pool, name='taken', source=source)
    refused('name: ', pool=dst_pool, name='../escape', source=source)
    refused('name: ', pool=dst_pool, name='.hidden', source=source)
    refused('instance_uuid: ', pool=dst_pool, instance_uuid='not-a-uuid', disk='disk', source=source)
    refused('source.path: ', pool=dst_pool, name='v', source={'path': os.path.join(workdir, 'missing'),
                                                              'format': 'raw'})
    refused('source.volume: ', pool=dst_pool, name='v', source={'pool': src_pool, 'volume': 'missing'})
    refused('capacity: ', pool=dst_pool, name='v', source=source, capacity=MiB)
    refused('source.format: ', pool=dst_pool, name='v', source={'path': image, 'format': 'vdi'})
    refused('source.format: ', pool=dst_pool, name='v', source={'pool': src_pool, 'volume': 'base.raw',
                                                                'format': 'qcow2'})
    unknown = clone(pool=dst_pool, name='v', format='vdi', source=source)
    assert unknown['failed'] is True and 'format' in unknown['msg'] and 'vdi' in unknown['msg']
    pools.lookup(src_pool).destroy()
    refused('source.pool: ', pool=dst_pool, name='v', source=source)
    pools.lookup(src_pool).create(0)
    assert sha256(os.path.join(src_dir, 'base.raw')) == sha256(image)


def small_fs_pool(pools, workdir, loop_device):
    """A fresh 64 MiB ext4 fs pool: (name, mount)."""
    name = pools.new()
    device = loop_device(mkfs='mkfs.ext4')  # 64 MiB
    mount = os.path.join(workdir, 'small')
    os.mkdir(mount)
    made = run_module('virt_pool_ensure', dict(name=name, type='fs', target=mount, build='never',
                                               source={'device': [device]}, autostart=False))
    assert not made.get('failed'), made
    return name, mount


def dense_file(path, size_mib):
    with open(path, 'wb') as handle:
        for _block in range(size_mib):
            handle.write(os.urandom(MiB))
    return path


def test_a_clone_that_cannot_fit_is_refused_before_anything_is_made(pools, workdir, loop_device):
    small, mount = small_fs_pool(pools, workdir, loop_device)
    dense = dense_file(os.path.join(workdir, 'dense.raw'), 96)
    digest = sha256(dense)
    before, free = sorted(os.listdir(mount)), os.statvfs(mount).f_bavail
    for name, dest_format in (('too-big.raw', 'raw'), ('too-big.qcow2', 'qcow2')):
        result = clone(pool=small, name=name, format=dest_format, source={'path': dense, 'format': 'raw'})
        assert result['failed'] is True, result
        assert re.match(r"pool: volume '%s' needs 96\.\d MiB \(\d+ bytes\) plus a margin" % re.escape(name),
                        result['msg']), result
        assert "pool '%s' (%s) has only" % (small, mount) in result['msg'] and 'available' in result['msg']
        assert not result.get('actions') and not result.get('rolled_back'), result
        assert sorted(os.listdir(mount)) == before and os.statvfs(mount).f_bavail == free
        with pytest.raises(Exception):
            pools.lookup(small).storageVolLookupByName(name)
    assert sha256(dense) == digest
    # thin: a sparse source needs its data, not its size (256 MiB with 3 MiB of data fits in 64 MiB)
    sparse = make_sparse_raw(os.path.join(workdir, 'sparse.raw'))
    fits = clone(pool=small, name='sparse.raw', source={'path': sparse, 'format': 'raw'})
    assert fits.get('failed') is not True, fits
    assert sha256(os.path.join(mount, 'sparse.raw')) == sha256(sparse)


def test_enospc_mid_copy_removes_the_partial_volume(pools, workdir, loop_device):
    """The space check passes, then another writer fills the pool before the copy: ENOSPC all the same."""
    small, mount = small_fs_pool(pools, workdir, loop_device)
    dense = dense_file(os.path.join(workdir, 'dense.raw'), 24)
    digest = sha256(dense)
    before = sorted(os.listdir(mount))
    args = dict(pool=small, name='squeezed.raw', source={'path': dense, 'format': 'raw'})
    paused = start_module('virt_volume_clone', args, {'STORAGEPOOLS_PAUSE_AT': 'copy'})
    volume = os.path.join(mount, 'squeezed.raw')
    deadline = time.monotonic() + 60
    while not os.path.exists(volume) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert os.path.exists(volume), 'the volume was not created'
    filler = fill(mount)  # during the 5 s pause before the copy
    out, err = paused.communicate(timeout=120)
    result = json.loads(out)
    assert 'Traceback' not in out + err
    assert result['failed'] is True and result['msg'].startswith('pool: '), result
    assert 'No space left on device at %s' % volume in result['msg'], result
    assert [step['action'] for step in result['rolled_back']] == ['create']
    os.unlink(filler)
    assert sorted(os.listdir(mount)) == before
    assert sha256(dense) == digest
    with pytest.raises(Exception):
        pools.lookup(small).storageVolLookupByName('squeezed.raw')


def test_same_filesystem_copy_is_a_reflink_where_the_filesystem_has_it(pools, workdir, loop_device):
    name = pools.new()
    device = loop_device(mkfs='mkfs.xfs', size_mib=320, mkfs_options=('-f', '-m', 'reflink=1'))
    mount = os.path.join(workdir, 'xfs')
    os.mkdir(mount)
    made = run_module('virt_pool_ensure', dict(name=name, type='fs', target=mount, build='never',
                                               source={'device': [device]}, autostart=False))
    assert not made.get('failed'), made
    image = make_sparse_raw(os.path.join(workdir, 'image.raw'), 64 * MiB)
    first = import_raw(name, image, 'base.raw')
    assert first['method'] == 'sparse-copy'  # from ext4: no extents to share
    second = clone(pool=name, name='copy.raw', source={'pool': name, 'volume': 'base.raw'}, verify=True)
    assert second['method'] == 'reflink', second
    assert sha256(os.path.join(mount, 'copy.raw')) == sha256(image)


def test_the_record_survives_a_pool_refresh_and_shows_in_virt_pool_info(pools, two_pools, workdir):
    src_pool, src_dir, _dst_pool, _dst_dir = two_pools
    import_raw(src_pool, make_sparse_raw(os.path.join(workdir, 'image.raw'), 8 * MiB), 'base.raw')
    pools.lookup(src_pool).refresh(0)
    info = run_module('virt_pool_info', dict(name=src_pool, volumes=True))
    volume = info['pools'][src_pool]['volumes'][0]
    assert volume['name'] == 'base.raw' and volume['metadata']['format'] == 'raw'
    assert volume['metadata'] == read_file_metadata(os.path.join(src_dir, 'base.raw'))


def test_check_mode_of_every_method_creates_nothing(two_pools, workdir):
    src_pool, src_dir, dst_pool, dst_dir = two_pools
    image = make_sparse_raw(os.path.join(workdir, 'image.raw'), 8 * MiB)
    import_raw(src_pool, image, 'base.raw')
    source = {'pool': src_pool, 'volume': 'base.raw'}
    for extra in ({}, {'format': 'qcow2'}, {'mode': 'cow'}):
        result = clone(check=True, pool=dst_pool, name='v', source=source, **extra)
        assert result['changed'] is True and actions(result)
    result = clone(check=True, pool=dst_pool, name='v', format='qcow2', source={'path': image, 'format': 'raw'})
    assert result['method'] == 'qemu-img-convert'
    assert os.listdir(dst_dir) == []
    assert os.getxattr(os.path.join(src_dir, 'base.raw'), XATTR_NAME)  # the import was recorded
