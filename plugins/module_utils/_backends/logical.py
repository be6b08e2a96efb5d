# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Logical (LVM) pools where libvirt has no primitive: recorded metadata in LV tags, zeroing.

libvirt creates, snapshots, resizes and deletes the LVs of a logical pool;
this module keeps the record of each LV this collection made in the LV's
own tags, so it lives with the data (and survives a pool refresh). LVM tags
allow letters, digits and ``_+.-/=!:#&``, so the JSON record is stored
base64-encoded, split over numbered tags ``storagepools.libvirt.<n>=<part>``
to stay well under LVM's tag length limit. Tags are replaced in one
``lvchange`` (one metadata commit).

A new LV holds whatever the disk had there before, so every byte of it that
the copy does not write is zeroed (BLKZEROOUT): a guest never sees stale data
of another LV.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import struct

from ansible_collections.storagepools.libvirt.plugins.module_utils._core import command
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.atomic_file import flush
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._images import qemu_img

TAG_PREFIX = 'storagepools.libvirt.'
TAG_PART = 400  # characters of base64 per tag
BLKZEROOUT = 0x127F  # _IO(0x12, 127)
BLKGETSIZE64 = 0x80081272


def _lvm(argv, option):
    proc = command.run(['lvm'] + argv, option)  # metadata only: the floor timeout (a hung PV ends in an error)
    if proc.returncode != 0:
        raise StoragePoolsError('%s: lvm %s failed' % (option, argv[0]), libvirt_error=proc.stderr.strip())
    return proc.stdout


def encode_record(record):
    """The LVM tags that hold ``record``."""
    text = base64.b64encode(json.dumps(record, sort_keys=True, separators=(',', ':')).encode('utf-8')).decode()
    parts = [text[start:start + TAG_PART] for start in range(0, len(text), TAG_PART)] or ['']
    return ['%s%d=%s' % (TAG_PREFIX, index, part) for index, part in enumerate(parts)]


def decode_record(tags):
    """The record held in ``tags`` (a list of LV tags), or None when there is none."""
    parts = {}
    for tag in tags:
        if tag.startswith(TAG_PREFIX) and '=' in tag:
            index, part = tag[len(TAG_PREFIX):].split('=', 1)
            if index.isdigit():
                parts[int(index)] = part
    if not parts:
        return None
    try:
        record = json.loads(base64.b64decode(''.join(parts[index] for index in sorted(parts))).decode('utf-8'))
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def lv_tags(vg):
    """{LV name: [tags]} of every LV in ``vg`` (one lvs call)."""
    out = _lvm(['lvs', '--noheadings', '--separator', '|', '-o', 'lv_name,lv_tags', vg], 'pool')
    tags = {}
    for line in out.splitlines():
        if '|' in line:
            name, joined = line.strip().split('|', 1)
            tags[name] = [tag for tag in joined.split(',') if tag]
    return tags


def read_records(vg):
    """{LV name: record or None} of every LV in ``vg``."""
    return dict((name, decode_record(tags)) for name, tags in lv_tags(vg).items())


def read_record(vg, lv):
    return read_records(vg).get(lv)


def write_record(vg, lv, record):
    """Replace the record of ``vg/lv`` (one lvchange: the old tags go, the new ones come)."""
    old = [tag for tag in lv_tags(vg).get(lv, []) if tag.startswith(TAG_PREFIX)]
    argv = ['lvchange']
    for tag in old:
        argv += ['--deltag', tag]
    for tag in encode_record(record):
        argv += ['--addtag', tag]
    _lvm(argv + ['%s/%s' % (vg, lv)], 'metadata')


def vg_extent_size(vg):
    """The extent size of ``vg`` in bytes: LVs are whole extents."""
    return int(_lvm(['vgs', '--noheadings', '--units', 'b', '--nosuffix', '-o', 'vg_extent_size', vg], 'pool').strip())


def vg_free(vg):
    """The bytes ``vg`` has free for new LVs."""
    return int(_lvm(['vgs', '--noheadings', '--units', 'b', '--nosuffix', '-o', 'vg_free', vg], 'pool').strip())


def whole_extents(vg, size):
    """``size`` rounded up to whole extents of ``vg``: the size LVM makes, so a record can say what the LV is."""
    extent = vg_extent_size(vg)
    return -(-size // extent) * extent


def zero_range(path, start, end):
    """Zero bytes [start, end) of the block device ``path``."""
    if end <= start:
        return
    fd = os.open(path, os.O_WRONLY)
    try:
        fcntl.ioctl(fd, BLKZEROOUT, struct.pack('QQ', start, end - start))
    finally:
        os.close(fd)


def device_size(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        return struct.unpack('Q', fcntl.ioctl(fd, BLKGETSIZE64, b'\0' * 8))[0]
    finally:
        os.close(fd)


def convert_into_lv(source_path, source_format, source_size, lv_path, option, pass_fds=()):
    """Write an image into a new LV: qemu-img writes zeroes where the source has none, and the LV's tail
    beyond the source is zeroed, so no stale data of the volume group shows through."""
    qemu_img.convert(source_path, source_format, lv_path, 'raw', option, size=source_size, pass_fds=pass_fds)
    zero_range(lv_path, source_size, device_size(lv_path))
    flush(lv_path)
