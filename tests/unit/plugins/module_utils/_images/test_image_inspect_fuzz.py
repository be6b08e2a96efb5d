# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fuzzing image_inspect: thousands of mutations of real qemu-img headers (and raw bytes) end in a result
or ImageRefused, never another exception; whatever is accepted names no parent and no absurd size.

Deterministic (a fixed seed); a failure prints the case number to replay it."""

from __future__ import annotations

import io
import random
import struct

import pytest
from qemu_images import qemu_image  # noqa: F401 pylint: disable=unused-import

from ansible_collections.storagepools.libvirt.plugins.module_utils._images import inspect as image_inspect
from ansible_collections.storagepools.libvirt.plugins.module_utils._images.inspect import ImageRefused

CASES = 4000
SEED = 13
BOUNDARY_VALUES = (0, 1, 2, 8, 20, 72, 104, 112, 511, 512, 513, 0x7fffffff, 0xffffffff, 2 ** 32, 2 ** 62,
                   2 ** 63 - 1, 2 ** 63, 2 ** 64 - 1)
DESCRIPTOR_SPLICES = (b'parentFileNameHint="/etc/hostname"\n', b'# parentFileNameHint="x"\n',
                      b'RW 2048 FLAT "/etc/hostname" 0\n', b'RW +2048 FLAT "/etc/hostname" 0\n',
                      b'RDONLY 2048 SPARSE "image.vmdk"\n', b'createType="monolithicFlat"\n', b'parentCID=1\n',
                      b'parentCID=ffffffff0\n', b'CID=\n', b'version=1\n', b'\x00', b'"', b'\n' * 600)
QCOW2_FIELDS = (('>I', 4), ('>Q', 8), ('>I', 16), ('>I', 20), ('>Q', 24), ('>I', 32), ('>I', 36), ('>Q', 40),
                ('>Q', 48), ('>I', 56), ('>I', 60), ('>Q', 64), ('>Q', 72), ('>Q', 80), ('>Q', 88), ('>I', 96),
                ('>I', 100), ('>I', 112), ('>I', 116))
VMDK_FIELDS = (('<I', 4), ('<I', 8), ('<Q', 12), ('<Q', 20), ('<Q', 28), ('<Q', 36), ('<I', 44), ('<Q', 48),
               ('<Q', 56), ('<Q', 64), ('<H', 77))


@pytest.fixture(scope='module')
def seeds(qemu_image):
    """(name, declared format, bytes) of real images: every header shape the inspection knows."""
    stream = qemu_image('vmdk', 1 << 20, '-o', 'subformat=streamOptimized', data=b'guest data' * 1000)
    footer = struct.pack('<QII', 1, 0, 3).ljust(512, b'\x00') + stream[:512] + b'\x00' * 512
    stream_with_footer = stream[:56] + struct.pack('<Q', 0xffffffffffffffff) + stream[64:] + footer
    rng = random.Random(SEED)
    return [
        ('qcow2-v2', 'qcow2', qemu_image('qcow2', 1 << 30, '-o', 'compat=0.10')),
        ('qcow2-v3', 'qcow2', qemu_image('qcow2', 1 << 30)),
        ('qcow2-v2-backing', 'qcow2', qemu_image('qcow2', 1 << 30, '-o', 'compat=0.10', '-u', '-b', '/b', '-F', 'raw')),
        ('qcow2-v3-backing', 'qcow2', qemu_image('qcow2', 1 << 30, '-u', '-b', 'base.qcow2', '-F', 'qcow2')),
        ('qcow2-extended-l2', 'qcow2', qemu_image('qcow2', 1 << 30, '-o', 'extended_l2=on,cluster_size=2M')),
        ('vmdk-sparse', 'vmdk', qemu_image('vmdk', 1 << 20)),
        ('vmdk-stream', 'vmdk', qemu_image('vmdk', 1 << 20, '-o', 'subformat=streamOptimized')),
        ('vmdk-stream-data', 'vmdk', stream),
        ('vmdk-stream-footer', 'vmdk', stream_with_footer),
        ('raw-random', 'raw', bytes(rng.getrandbits(8) for _count in range(8192))),
        ('raw-zeros', 'raw', b'\x00' * 4096),
        ('raw-text-descriptor', 'raw', b'# Disk DescriptorFile\nversion=1\ncreateType="monolithicFlat"\n'
                                       b'RW 2048 FLAT "/etc/hostname" 0\n'),
    ]


def mutate(rng, name, data):
    """One to four mutations of ``data``: byte flips, boundary values in header fields, descriptor
    splices, truncation, a tail of garbage."""
    out = bytearray(data)
    fields = QCOW2_FIELDS if name.startswith('qcow2') else VMDK_FIELDS
    for _count in range(rng.randint(1, 4)):
        kind = rng.randrange(6)
        if kind == 0 and out:  # flip bytes, mostly in the header and the descriptor
            for _count in range(rng.randint(1, 8)):
                out[rng.randrange(min(len(out), rng.choice((128, 1536, 65536))))] = rng.getrandbits(8)
        elif kind == 1:  # a boundary value in a header field
            fmt, offset = rng.choice(fields)
            value = rng.choice(BOUNDARY_VALUES) % (256 ** struct.calcsize(fmt))
            if len(out) >= offset + struct.calcsize(fmt):
                struct.pack_into(fmt, out, offset, value)
        elif kind == 2:  # splice text into the descriptor (or where qcow2 keeps extensions and names)
            at = rng.randrange(min(len(out), 1536) + 1)
            out[at:at] = rng.choice(DESCRIPTOR_SPLICES)
        elif kind == 3:  # truncate
            del out[rng.choice((rng.randrange(len(out) + 1), rng.randrange(min(len(out), 1200) + 1))):]
        elif kind == 4:  # garbage at the end (footers live there)
            out += bytes(rng.getrandbits(8) for _count in range(rng.choice((16, 512, 1536))))
        elif kind == 5 and len(out) > 64:  # move a header field into another's place
            at = rng.randrange(len(out) - 16)
            out[at:at + 8] = out[rng.randrange(64):][:8].ljust(8, b'\x00')
    return bytes(out)


def test_mutated_headers_end_in_a_result_or_a_refusal(seeds, tmp_path):
    rng = random.Random(SEED)
    outcomes = {'accepted': 0, 'refused': 0}
    for case in range(CASES):
        name, declared, data = rng.choice(seeds)
        data = mutate(rng, name, data)
        declared = rng.choice((declared, declared, declared, 'raw', 'qcow2', 'vmdk'))
        limit = rng.choice((None, None, 1 << 20, 1 << 40))
        context = 'case %d (seed %s, %s declared %s, %d bytes)' % (case, name, SEED, declared, len(data))
        try:
            info = image_inspect.inspect_handle(io.BytesIO(data), len(data), 'image', declared, max_virtual_size=limit)
        except ImageRefused as exc:
            assert exc.msg.startswith(('source.path: image', 'source.format: image')), context
            outcomes['refused'] += 1
        except Exception as exc:  # pylint: disable=broad-except
            pytest.fail('%s raised %r' % (context, exc))
        else:
            outcomes['accepted'] += 1
            assert 0 <= info.virtual_size <= min(image_inspect.MAX_VIRTUAL_SIZE, limit or 2 ** 63), context
            if declared == 'vmdk':  # what qemu reads at 0x200 names no parent
                assert b'parentfilenamehint' not in data[512:512 + 20 * 512].split(b'\x00')[0].lower(), context
        if declared == 'qcow2' and case % 10 == 0:  # an instance's own qcow2 container: read from a file
            path = tmp_path / 'disk'
            path.write_bytes(data)
            try:
                image_inspect.read_qcow2_overlay(str(path))
            except ImageRefused:
                pass
            except Exception as exc:  # pylint: disable=broad-except
                pytest.fail('%s: read_qcow2_overlay raised %r' % (context, exc))
    # the mutations must leave both outcomes common, or the fuzzing only ever tries one path
    assert outcomes['accepted'] > CASES // 20 and outcomes['refused'] > CASES // 4, outcomes
