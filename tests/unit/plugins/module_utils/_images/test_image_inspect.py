# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Header checks on images built byte by byte, and on real qemu-img output patched to be hostile."""

from __future__ import annotations

import re
import struct

import pytest
from qemu_images import qemu_image  # noqa: F401 pylint: disable=unused-import

from ansible_collections.storagepools.libvirt.plugins.module_utils._images import inspect as image_inspect
from ansible_collections.storagepools.libvirt.plugins.module_utils._images.inspect import ImageRefused


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
    descriptor = ('# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="%s"\n%s\n'
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


# -- real images (qemu-img) patched to carry one hostile field ---------------------------------------------------

VMDK4 = struct.Struct('<4sIIQQQQIQQQ')
VMDK4_FIELDS = ('magic', 'version', 'flags', 'capacity', 'grain', 'descriptor_offset', 'descriptor_size',
                'gtes_per_gt', 'rgd_offset', 'gd_offset', 'grain_offset')
GD_AT_END = 0xffffffffffffffff
CANARY = '/etc/hostname'


def patched(data, offset, fmt, value):
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


def with_vmdk_fields(data, **changes):
    fields = dict(zip(VMDK4_FIELDS, VMDK4.unpack(data[:VMDK4.size])), **changes)
    return VMDK4.pack(*(fields[name] for name in VMDK4_FIELDS)) + data[VMDK4.size:]


def descriptor_of(data):
    return data[512:512 + 20 * 512].split(b'\x00', 1)[0]


def with_descriptor(data, text, sector=1):
    out = bytearray(data)
    out[sector * 512:(sector + 20) * 512] = text.ljust(20 * 512, b'\x00')
    return bytes(out)


def with_footer(data, **footer_changes):
    """A streamOptimized image as VMware writes it: the grain directory 'at the end', the real header in a
    footer (marker, header, end-of-stream marker) that qemu uses instead of the first one."""
    footer_header = with_vmdk_fields(data[:512], **footer_changes)
    footer = struct.pack('<QII', 1, 0, 3).ljust(512, b'\x00') + footer_header + b'\x00' * 512
    return with_vmdk_fields(data, gd_offset=GD_AT_END) + footer


def sparse(qemu_image):
    return qemu_image('vmdk', 1 << 20)


def stream(qemu_image):
    return qemu_image('vmdk', 1 << 20, '-o', 'subformat=streamOptimized', data=b'guest data')


def with_parent(qemu_image):
    text = descriptor_of(sparse(qemu_image)).replace(b'parentCID=ffffffff\n', b'parentCID=ffffffff\n'
                                                     b'parentFileNameHint="%s"\n' % CANARY.encode())
    return with_descriptor(sparse(qemu_image), text)


def with_parent_in_a_comment(qemu_image):
    text = descriptor_of(sparse(qemu_image)) + b'# parentFileNameHint="%s"\n' % CANARY.encode()
    return with_descriptor(sparse(qemu_image), text)


def with_parent_cid(qemu_image):
    text = descriptor_of(sparse(qemu_image)).replace(b'parentCID=ffffffff', b'parentCID=1234abcd')
    return with_descriptor(sparse(qemu_image), text)


def without_parent_cid(qemu_image):
    return with_descriptor(sparse(qemu_image), descriptor_of(sparse(qemu_image)).replace(b'parentCID=ffffffff\n', b''))


def flat_extent_at_capacity_zero(qemu_image):
    """qemu opens a KDMV file of capacity 0 as a descriptor FILE: its createType is the first 'createType'
    anywhere (here in a comment) and only RW lines count, so it opens the FLAT extent on a host file."""
    text = (b'# Disk DescriptorFile createType="monolithicFlat"\nversion=1\nCID=12345678\nparentCID=ffffffff\n'
            b'createType="monolithicSparse"\nRDONLY 2048 SPARSE "image.vmdk"\nRW +2048 FLAT "%s" 0\n'
            % CANARY.encode())
    return with_descriptor(with_vmdk_fields(sparse(qemu_image), capacity=0), text)


def honest_flat_extent(qemu_image):
    text = (b'# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType="monolithicFlat"\n'
            b'RW 2048 FLAT "%s" 0\n' % CANARY.encode())
    return with_descriptor(with_vmdk_fields(sparse(qemu_image), capacity=0), text)


def descriptor_elsewhere(qemu_image):
    """A clean descriptor where the header points (what the old check and libvirt read), a parent at 0x200
    (what qemu reads)."""
    clean = descriptor_of(sparse(qemu_image))
    image = with_descriptor(with_parent(qemu_image), clean, sector=100)
    return with_vmdk_fields(image, descriptor_offset=100)


def footer_disagrees_on_capacity(qemu_image):
    return with_footer(stream(qemu_image), capacity=1 << 40)


def footer_disagrees_on_descriptor(qemu_image):
    return with_footer(stream(qemu_image), descriptor_offset=100)


def footer_missing(qemu_image):
    return with_vmdk_fields(stream(qemu_image), gd_offset=GD_AT_END)


@pytest.mark.parametrize('make', [
    with_parent, with_parent_in_a_comment, with_parent_cid, without_parent_cid, flat_extent_at_capacity_zero,
    honest_flat_extent, descriptor_elsewhere, footer_disagrees_on_capacity, footer_disagrees_on_descriptor,
    footer_missing,
    lambda qemu_image: sparse(qemu_image)[:30],  # short header
    lambda qemu_image: sparse(qemu_image)[:300],
    lambda qemu_image: sparse(qemu_image)[:1024],  # descriptor cut by the end of the file
    lambda qemu_image: with_vmdk_fields(sparse(qemu_image), descriptor_offset=1000),  # past the end of the file
    lambda qemu_image: with_vmdk_fields(sparse(qemu_image), descriptor_offset=2 ** 63),  # absurd
    lambda qemu_image: with_vmdk_fields(sparse(qemu_image), descriptor_size=2 ** 40),
    lambda qemu_image: with_vmdk_fields(sparse(qemu_image), descriptor_size=0),
    lambda qemu_image: with_descriptor(sparse(qemu_image), b'x' * 20 * 512),  # descriptor without its end
    lambda qemu_image: with_vmdk_fields(sparse(qemu_image), version=4),
    lambda qemu_image: with_vmdk_fields(sparse(qemu_image), capacity=2 ** 60),  # 512 EiB
], ids=['parentFileNameHint', 'parentFileNameHint-in-a-comment', 'parentCID', 'no-parentCID',
        'capacity-0-FLAT-extent-behind-a-comment', 'capacity-0-FLAT-extent', 'descriptor-at-0x200-and-elsewhere',
        'footer-capacity', 'footer-descriptor', 'footer-missing', 'header-30-bytes', 'header-300-bytes',
        'descriptor-truncated', 'descriptor-past-eof', 'descriptor-offset-2**63', 'descriptor-size-2**40',
        'descriptor-size-0', 'descriptor-unterminated', 'version-4', 'capacity-512-EiB'])
def test_hostile_vmdk_is_refused(tmp_path, qemu_image, make):
    path = tmp_path / 'image.vmdk'
    path.write_bytes(make(qemu_image))
    with pytest.raises(ImageRefused) as err:
        image_inspect.inspect(str(path), 'vmdk')
    assert err.value.msg.startswith(('source.path: %s ' % path, 'source.format: %s ' % path))


def test_real_vmdks_pass(tmp_path, qemu_image):
    for name, data, size in (('sparse', sparse(qemu_image), 1 << 20), ('stream', stream(qemu_image), 1 << 20),
                             ('footer', with_footer(stream(qemu_image)), 1 << 20)):
        path = tmp_path / name
        path.write_bytes(data)
        assert image_inspect.inspect(str(path), 'vmdk').virtual_size == size, name


@pytest.mark.parametrize('options', [('-o', 'compat=0.10'), ('-o', 'compat=1.1'), ('-o', 'cluster_size=2M'),
                                     ('-o', 'extended_l2=on')])
def test_real_qcow2_pass(tmp_path, qemu_image, options):
    path = tmp_path / 'image.qcow2'
    path.write_bytes(qemu_image('qcow2', 3 << 30, *options))
    assert image_inspect.inspect(str(path), 'qcow2').virtual_size == 3 << 30


def qcow2(qemu_image, *options):
    data = qemu_image('qcow2', 1 << 30, *options)
    assert options or struct.unpack('>I', data[100:104]) == (112,)  # extensions from byte 112
    return data


def qcow2_overlay(qemu_image):
    return qcow2(qemu_image, '-u', '-b', '/var/lib/base', '-F', 'raw')


@pytest.mark.parametrize('make', [
    lambda qemu_image: patched(qcow2(qemu_image), 100, '>I', 0),  # header length before the fields
    lambda qemu_image: patched(qcow2(qemu_image), 100, '>I', 1 << 20),  # beyond its cluster
    lambda qemu_image: patched(qcow2(qemu_image), 100, '>I', 0xfffffff8),
    lambda qemu_image: qcow2(qemu_image)[:100],  # v3 header cut short
    lambda qemu_image: qcow2(qemu_image)[:104],  # no end of the extensions
    lambda qemu_image: patched(qcow2(qemu_image), 112 + 4, '>I', 0xfffffff0),  # first extension's length overflows
    lambda qemu_image: patched(qcow2(qemu_image), 20, '>I', 30),  # 1 GiB clusters
    lambda qemu_image: patched(qcow2(qemu_image), 4, '>I', 1),  # qcow version 1
    lambda qemu_image: patched(qcow2_overlay(qemu_image), 8, '>Q', 1 << 40),  # backing name beyond the file
    lambda qemu_image: patched(qcow2_overlay(qemu_image), 16, '>I', 0xffffffff),
    lambda qemu_image: patched(qcow2(qemu_image, '-o', 'compat=0.10'), 16, '>I', 12),  # a name without offset
], ids=['header-length-0', 'header-length-1MiB', 'header-length-4GiB', 'truncated-v3', 'no-extension-end',
        'extension-length-overflows', 'cluster-bits-30', 'qcow-v1', 'backing-offset-past-eof',
        'backing-size-4GiB', 'backing-size-without-offset'])
def test_malformed_qcow2_is_refused(tmp_path, qemu_image, make):
    path = tmp_path / 'image.qcow2'
    path.write_bytes(make(qemu_image))
    with pytest.raises(ImageRefused) as err:
        image_inspect.inspect(str(path), 'qcow2')
    assert err.value.msg.startswith(('source.path: %s ' % path, 'source.format: %s ' % path))


@pytest.mark.parametrize('options, size', [((), 8 << 60), ((), (2 << 50) + 1), (('-o', 'cluster_size=2M'), 8 << 60),
                                           (('-o', 'cluster_size=2M'), (2 << 60) + 1),
                                           (('-o', 'extended_l2=on'), (1 << 50) + 1)])
def test_qcow2_beyond_what_qemu_addresses_is_refused(tmp_path, qemu_image, options, size):
    """8 EiB (or anything past qemu's largest L1 table at the image's cluster size) is no real image."""
    path = tmp_path / 'image.qcow2'
    path.write_bytes(patched(qemu_image('qcow2', 1 << 30, *options), 24, '>Q', size))
    with pytest.raises(ImageRefused) as err:
        image_inspect.inspect(str(path), 'qcow2')
    assert err.value.msg.startswith('source.path: %s declares a virtual size of %d bytes' % (path, size))
    assert re.search(r'\(\d+ bytes\)$', err.value.msg)


def test_the_destination_limit_is_a_ceiling(tmp_path, qemu_image):
    path = tmp_path / 'image.qcow2'
    path.write_bytes(qcow2(qemu_image))
    assert image_inspect.inspect(str(path), 'qcow2', max_virtual_size=1 << 30).virtual_size == 1 << 30
    with pytest.raises(ImageRefused) as err:
        image_inspect.inspect(str(path), 'qcow2', max_virtual_size=(1 << 30) - 1)
    assert err.value.msg == ('source.path: %s declares a virtual size of %d bytes, more than the destination '
                             'holds (%d bytes)' % (path, 1 << 30, (1 << 30) - 1))
    raw = write(tmp_path, b'guest bytes', name='raw')  # a raw image is as big as its file
    with pytest.raises(ImageRefused) as err:
        image_inspect.inspect(raw, 'raw', max_virtual_size=4096)
    assert '65536 bytes' in err.value.msg and '4096 bytes' in err.value.msg


def test_vmdk_beyond_any_destination_is_refused(tmp_path, qemu_image):
    path = tmp_path / 'image.vmdk'
    path.write_bytes(with_vmdk_fields(sparse(qemu_image), capacity=2 ** 60))
    with pytest.raises(ImageRefused) as err:
        image_inspect.inspect(str(path), 'vmdk')
    assert err.value.msg == ('source.path: %s declares a virtual size of %d bytes, more than any destination '
                             'holds (%d bytes)' % (path, 2 ** 69, 2 ** 63 - 1))


@pytest.mark.parametrize('footer, found', [(b'koly', 'dmg'), (b'conectix', 'vpc')])
def test_a_raw_image_carrying_a_dmg_or_vpc_footer_is_refused(tmp_path, footer, found):
    path = tmp_path / 'image'
    path.write_bytes(b'\x00' * ((1 << 16) - 512) + footer.ljust(512, b'\x00'))
    with pytest.raises(ImageRefused, match='^source.format: .* declared raw but its bytes are a %s image' % found):
        image_inspect.inspect(str(path), 'raw')


def test_a_source_that_cannot_be_opened_is_refused_naming_the_option(tmp_path):
    with pytest.raises(ImageRefused, match='^source.path: cannot open '):
        image_inspect.inspect(str(tmp_path), 'raw')
