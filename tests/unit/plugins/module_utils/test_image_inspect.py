# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Header checks on images built byte by byte (no tool involved)."""

from __future__ import annotations

import struct

import pytest

from ansible_collections.storagepools.libvirt.plugins.module_utils import image_inspect
from ansible_collections.storagepools.libvirt.plugins.module_utils.image_inspect import ImageRefused


def qcow2_header(version=3, backing=(0, 0), size=1 << 30, crypt=0, incompatible=0, extensions=b''):
    header = b'QFI\xfb' + struct.pack('>IQIIQI', version, backing[0], backing[1], 16, size, crypt)
    header += struct.pack('>IQQIIQ', 0, 0, 0, 0, 0, 0)  # l1, refcount table, snapshots
    assert len(header) == 72
    if version == 3:
        header += struct.pack('>QQQII', incompatible, 0, 0, 4, 104)
    return header + extensions + struct.pack('>II', 0, 0)


def extension(ext_type, data):
    return struct.pack('>II', ext_type, len(data)) + data + b'\x00' * ((8 - len(data) % 8) % 8)


def write(tmp_path, data, name='image'):
    path = tmp_path / name
    path.write_bytes(data.ljust(1 << 16, b'\x00'))
    return str(path)


def vmdk_sparse(create_type='monolithicSparse', extents=('RW 2048 SPARSE "image.vmdk"',)):
    descriptor = ('# Disk DescriptorFile\nversion=1\ncreateType="%s"\n%s\n'
                  % (create_type, '\n'.join(extents))).encode()
    header = b'KDMV' + struct.pack('<II', 1, 3) + struct.pack('<QQQQ', 2048, 128, 1, 20)
    return header.ljust(512, b'\x00') + descriptor


def test_plain_raw_and_qcow2_pass(tmp_path):
    assert image_inspect.inspect(write(tmp_path, b'just guest bytes'), 'raw').format == 'raw'
    info = image_inspect.inspect(write(tmp_path, qcow2_header(size=5 << 30)), 'qcow2')
    assert info.to_dict() == {'format': 'qcow2', 'virtual_size': 5 << 30, 'file_size': 1 << 16}
    assert image_inspect.inspect(write(tmp_path, qcow2_header(version=2)), 'qcow2').virtual_size == 1 << 30


@pytest.mark.parametrize('data, declared, option', [
    (qcow2_header(), 'raw', 'source.format'),
    (b'vhdxfile', 'raw', 'source.format'),
    (b'QED\x00', 'raw', 'source.format'),
    (b'LUKS\xba\xbe', 'raw', 'source.format'),
    (b'\x00' * 0x40 + struct.pack('<I', 0xbeda107f), 'raw', 'source.format'),
    (vmdk_sparse(), 'raw', 'source.format'),
    (b'not an image', 'qcow2', 'source.format'),
    (qcow2_header(backing=(512, 10)), 'qcow2', 'source.path'),
    (qcow2_header(crypt=1), 'qcow2', 'source.path'),
    (qcow2_header(incompatible=1 << 2), 'qcow2', 'source.path'),
    (qcow2_header(incompatible=1 << 1), 'qcow2', 'source.path'),
    (qcow2_header(incompatible=1 << 9), 'qcow2', 'source.path'),
    (qcow2_header(extensions=extension(0x44415441, b'/etc/shadow')), 'qcow2', 'source.path'),
    (qcow2_header(extensions=extension(0x0537be77, b'\x00' * 16)), 'qcow2', 'source.path'),
    (qcow2_header(version=4), 'qcow2', 'source.path'),
    (vmdk_sparse(create_type='monolithicFlat'), 'vmdk', 'source.path'),
    (vmdk_sparse(extents=('RW 2048 SPARSE "a.vmdk"', 'RW 2048 FLAT "/etc/shadow" 0')), 'vmdk', 'source.path'),
    (b'# Disk DescriptorFile\ncreateType="monolithicSparse"\nRW 2048 SPARSE "/etc/shadow"\n', 'vmdk',
     'source.path'),
    (b'whatever', 'vdi', 'source.format'),
])
def test_refusals_name_the_option(tmp_path, data, declared, option):
    with pytest.raises(ImageRefused) as err:
        image_inspect.inspect(write(tmp_path, data), declared)
    assert err.value.msg.startswith(option + ': ')


def test_a_footer_signature_counts_for_raw(tmp_path):
    path = tmp_path / 'image'
    path.write_bytes(b'\x00' * 4096 + b'koly'.ljust(512, b'\x00'))
    with pytest.raises(ImageRefused) as err:
        image_inspect.inspect(str(path), 'raw')
    assert 'dmg' in err.value.msg


def test_an_allowed_sparse_vmdk_passes(tmp_path):
    info = image_inspect.inspect(write(tmp_path, vmdk_sparse('streamOptimized')), 'vmdk')
    assert info.format == 'vmdk' and info.virtual_size == 2048 * 512


def test_a_missing_file_names_source_path(tmp_path):
    with pytest.raises(ImageRefused) as err:
        image_inspect.inspect(str(tmp_path / 'missing'), 'raw')
    assert err.value.msg.startswith('source.path: ')
