# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Safe image inspection: confirm an image's DECLARED format, never choose one.

An image to import (a Nova ``_base`` entry, a downloaded image) may have
been written by a guest or an attacker. This module reads its header
bytes itself, in Python: nothing here runs qemu-img or opens any other file
the image names. It refuses an image whose bytes disagree with its declared
format (a "raw" image carrying another format's header), a qcow2 with a
backing file, an external data file, encryption or unknown incompatible
features, and a VMDK that is a descriptor (extents in other files) or of a
create type outside the allow-list (Nova's: monolithicSparse,
streamOptimized) or naming a parent, and any virtual size beyond what a
destination could hold. Only after this check may a tool open the image,
and then always with the format given explicitly; OpenedImage opens a file
once (never through a symlink) so that the tools read the very file checked.
Whatever the bytes, the answer is an ImageInfo or ImageRefused, never
another exception.

A guest's own raw disk is different (legacy adoption): its content is
arbitrary guest data and is never inspected; it is only ever opened as raw.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import struct
from typing import TYPE_CHECKING

from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError

if TYPE_CHECKING:  # annotations only: nothing more is imported at run time
    from typing import Any, BinaryIO

SUPPORTED_FORMATS = ('raw', 'qcow2', 'vmdk')
VMDK_ALLOWED_CREATE_TYPES = ('monolithicSparse', 'streamOptimized')

QCOW_MAGIC = b'QFI\xfb'
QCOW2_EXT_END = 0x00000000
QCOW2_EXT_DATA_FILE = 0x44415441
QCOW2_EXT_CRYPTO = 0x0537be77
QCOW2_EXT_BACKING_FORMAT = 0xE2792ACA
QCOW2_INCOMPAT_CORRUPT = 1 << 1
QCOW2_INCOMPAT_DATA_FILE = 1 << 2
QCOW2_INCOMPAT_EXTENDED_L2 = 1 << 4
QCOW2_INCOMPAT_KNOWN = 0x1f  # dirty, corrupt, data file, compression type, extended L2
QCOW2_MAX_L1_ENTRIES = 32 * 1024 * 1024 // 8  # qemu's QCOW_MAX_L1_SIZE (32 MiB) of 8-byte entries
VMDK_SPARSE_MAGIC = b'KDMV'
VMDK_GD_AT_END = 0xffffffffffffffff  # streamOptimized: the header in the footer is the one qemu uses
VMDK_DESCRIPTOR_SECTOR = 1  # qemu reads a sparse VMDK's descriptor (parent, CIDs) at 0x200, whatever the header says
VMDK_DESCRIPTOR_MAX_SECTORS = 20  # qemu's DESC_SIZE: all of the descriptor qemu ever reads
# after the magic: version, flags, capacity, grain, descriptor offset, descriptor size (sectors), grain table
# entries, redundant and primary grain directory, grain offset, filler, check bytes, compression (qemu's VMDK4Header)
_VMDK4_HEADER = struct.Struct('<IIQQQQIQQQc4sH')
SECTOR = 512
HEADER_BYTES = 64 * 1024
# Linux's largest file or block device (MAX_LFS_FILESIZE) and qemu's largest offset (int64): no destination,
# file, LV or rbd image opened through qemu, holds more, so a larger declared size is refused whatever the caller
MAX_VIRTUAL_SIZE = 2 ** 63 - 1
_VMDK_EXTENT_RE = re.compile(r'^\s*(RW|RDONLY|NOACCESS)\s+\d+\s+(\w+)', re.MULTILINE)
_VMDK_CREATE_TYPE_RE = re.compile(r'^\s*createType\s*=\s*"([^"]*)"', re.MULTILINE)


class ImageRefused(StoragePoolsError):
    """The image is not what it was declared to be, or is unsafe to open."""


class ImageInfo:
    def __init__(self, image_format: str, virtual_size: int, file_size: int) -> None:
        self.format = image_format
        self.virtual_size = virtual_size
        self.file_size = file_size

    def to_dict(self) -> dict[str, Any]:
        return {'format': self.format, 'virtual_size': self.virtual_size, 'file_size': self.file_size}


def _signatures(header, handle, file_size):
    """Names of the image formats whose signature ``header`` carries (qemu's probes)."""
    found = []
    if header.startswith(QCOW_MAGIC):
        found.append('qcow2' if len(header) >= 8 and struct.unpack('>I', header[4:8])[0] >= 2 else 'qcow')
    if header.startswith((VMDK_SPARSE_MAGIC, b'COWD')) or b'# Disk DescriptorFile' in header[:1024]:
        found.append('vmdk')
    for name, magic in (('vhdx', b'vhdxfile'), ('vpc', b'conectix'), ('qed', b'QED\x00'),
                        ('luks', b'LUKS\xba\xbe'), ('parallels', b'WithoutFreeSpace'),
                        ('parallels', b'WithouFreSpacExt'), ('bochs', b'Bochs Virtual HD Image'),
                        ('cloop', b'#!/bin/sh\n#V2.0 Format')):
        if header.startswith(magic):
            found.append(name)
    if len(header) >= 0x44 and struct.unpack('<I', header[0x40:0x44])[0] == 0xbeda107f:
        found.append('vdi')
    if file_size >= SECTOR:  # vpc and dmg also keep a footer at the end of the file
        handle.seek(file_size - SECTOR)
        footer = handle.read(SECTOR)
        if footer.startswith(b'koly'):
            found.append('dmg')
        if footer.startswith(b'conectix') and 'vpc' not in found:
            found.append('vpc')
    return found


def _qcow2_facts(header, path):
    """(virtual size, backing path or None, backing format or None) of a qcow2 header.

    Refuses what is never safe: another format, an unknown version, an
    external data file, encryption, a corrupt image, unknown features, and
    any header whose fields point outside what was read (qemu's own checks,
    or stricter ones).
    """
    if not header.startswith(QCOW_MAGIC) or len(header) < 72:
        raise ImageRefused('source.format: %s is declared qcow2 but is not a qcow2 image' % path)
    (version, backing_offset, backing_size, cluster_bits, size, crypt_method) = struct.unpack(
        '>IQIIQI', header[4:36])
    if version not in (2, 3):
        raise ImageRefused('source.path: %s is a qcow2 of unknown version %d' % (path, version))
    if crypt_method:
        raise ImageRefused('source.path: %s is an encrypted qcow2; it cannot be imported' % path)
    if not 9 <= cluster_bits <= 21:
        raise ImageRefused('source.path: %s has an invalid qcow2 cluster size' % path)
    cluster_size = 1 << cluster_bits
    incompatible = 0
    header_length = 72
    if version == 3:
        if len(header) < 104:
            raise ImageRefused('source.path: %s has a truncated qcow2 header' % path)
        incompatible, = struct.unpack('>Q', header[72:80])
        header_length, = struct.unpack('>I', header[100:104])
        if not 104 <= header_length <= cluster_size:
            raise ImageRefused('source.path: %s has an invalid qcow2 header length %d' % (path, header_length))
        if incompatible & QCOW2_INCOMPAT_DATA_FILE:
            raise ImageRefused('source.path: %s uses an external data file; refused (its data would be '
                               'read from another file the image names)' % path)
        if incompatible & QCOW2_INCOMPAT_CORRUPT:
            raise ImageRefused('source.path: %s is marked corrupt' % path)
        if incompatible & ~QCOW2_INCOMPAT_KNOWN:
            raise ImageRefused('source.path: %s uses qcow2 features this collection does not know' % path)
    # qemu opens no image its largest L1 table cannot address: an L2 table is one cluster of 8-byte entries
    # (16 with extended L2), each entry one cluster
    l2_entries = cluster_size // (16 if incompatible & QCOW2_INCOMPAT_EXTENDED_L2 else 8)
    addressable = QCOW2_MAX_L1_ENTRIES * l2_entries * cluster_size
    if size > addressable:
        raise ImageRefused('source.path: %s declares a virtual size of %d bytes, more than qemu addresses in a '
                           'qcow2 of %d-byte clusters (%d bytes)' % (path, size, cluster_size, addressable))
    backing_format = _qcow2_extensions(header, header_length, path)
    backing = None
    if backing_offset or backing_size:
        readable = backing_offset <= cluster_size and backing_offset + backing_size <= len(header)
        if not readable or not 0 < backing_size <= min(1023, cluster_size - backing_offset):
            raise ImageRefused('source.path: %s has an unreadable backing file name' % path)
        backing = header[backing_offset:backing_offset + backing_size].decode('utf-8', 'replace')
    return size, backing, backing_format


def _qcow2_extensions(header, offset, path):
    """The backing format named by the header extensions from ``offset`` (or None); refuses a data file,
    encryption, and extensions that run past the bytes read."""
    backing_format = None
    while True:
        if offset + 8 > len(header):
            raise ImageRefused('source.path: %s has qcow2 header extensions past the first %d bytes'
                               % (path, len(header)))
        ext_type, ext_length = struct.unpack('>II', header[offset:offset + 8])
        if ext_type == QCOW2_EXT_END:
            return backing_format
        if offset + 8 + ext_length > len(header):
            raise ImageRefused('source.path: %s has a qcow2 header extension of %d bytes past the first %d '
                               'bytes' % (path, ext_length, len(header)))
        if ext_type == QCOW2_EXT_DATA_FILE:
            raise ImageRefused('source.path: %s names an external data file; refused' % path)
        if ext_type == QCOW2_EXT_CRYPTO:
            raise ImageRefused('source.path: %s is an encrypted qcow2; it cannot be imported' % path)
        if ext_type == QCOW2_EXT_BACKING_FORMAT:
            backing_format = header[offset + 8:offset + 8 + ext_length].decode('ascii', 'replace')
        offset += 8 + (ext_length + 7) // 8 * 8


def _qcow2(header, path):
    size, backing, _backing_format = _qcow2_facts(header, path)
    if backing:
        raise ImageRefused('source.path: %s carries a backing file; an image to import must stand '
                           'alone (flatten it first)' % path)
    return size


def read_qcow2_overlay(path: str, fd: int | None = None) -> tuple[int, str | None, str | None]:
    """(virtual size, backing path or None, backing format or None) of a qcow2 container.

    For an instance's own qcow2 disk (whose container qemu wrote): a backing
    file is expected there, so it is returned rather than refused. ``fd``: the
    file already open (``path`` only names it in messages).
    """
    if fd is not None:
        return _qcow2_facts(os.pread(fd, HEADER_BYTES, 0), path)
    with open(path, 'rb') as handle:
        return _qcow2_facts(handle.read(HEADER_BYTES), path)


def _vmdk4_header(data, path, where):
    """The fields of the VMDK4 header ``data`` (magic first) found at ``where``, as a dict."""
    if len(data) < SECTOR or not data.startswith(VMDK_SPARSE_MAGIC):
        raise ImageRefused('source.path: %s has a truncated or missing VMDK %s' % (path, where))
    fields = _VMDK4_HEADER.unpack(data[4:4 + _VMDK4_HEADER.size])
    return dict(zip(('version', 'flags', 'capacity', 'grain', 'descriptor_offset', 'descriptor_size',
                     'gtes_per_gt', 'rgd_offset', 'gd_offset', 'grain_offset'), fields))


def _vmdk_footer(handle, file_size, path):
    """The header of a streamOptimized footer: qemu reads it 1536 bytes before the end (rounded up to a
    sector), between a footer marker and an end-of-stream marker, and uses it instead of the first one."""
    footer_at = -(-file_size // SECTOR) * SECTOR - 3 * SECTOR
    if footer_at < SECTOR:
        raise ImageRefused('source.path: %s is a VMDK whose footer would overlap its header' % path)
    handle.seek(footer_at)
    footer = handle.read(3 * SECTOR).ljust(3 * SECTOR, b'\x00')
    _value, footer_size, footer_type = struct.unpack('<QII', footer[:16])
    eos = struct.unpack('<QII', footer[2 * SECTOR:2 * SECTOR + 16])
    if footer_size != 0 or footer_type != 3 or eos != (0, 0, 0):
        raise ImageRefused('source.path: %s is a VMDK with its grain directory at the end but no valid footer'
                           % path)
    return _vmdk4_header(footer[SECTOR:2 * SECTOR], path, 'footer')


def _vmdk_descriptor(header, descriptor_size, file_size, path):
    """The embedded descriptor text qemu reads: from sector 1 up to its first NUL, which must lie within
    the header's descriptor sectors (and qemu's DESC_SIZE), or qemu would read on into other data."""
    if not 0 < descriptor_size <= VMDK_DESCRIPTOR_MAX_SECTORS:
        raise ImageRefused('source.path: %s declares a VMDK descriptor of %d sectors; 1 to %d allowed'
                           % (path, descriptor_size, VMDK_DESCRIPTOR_MAX_SECTORS))
    end = (VMDK_DESCRIPTOR_SECTOR + descriptor_size) * SECTOR
    if end > min(file_size, len(header)):
        raise ImageRefused('source.path: %s has a VMDK descriptor past the end of the file' % path)
    text, nul, _rest = header[VMDK_DESCRIPTOR_SECTOR * SECTOR:end].partition(b'\x00')
    if not nul:
        raise ImageRefused('source.path: %s has a VMDK descriptor that does not end within its %d sectors'
                           % (path, descriptor_size))
    return text


def _vmdk_refuse_parent(descriptor, path):
    """qemu opens the parent named by parentFileNameHint anywhere in the descriptor (strstr), and trusts the
    first parentCID; an image to import has neither a parent nor a parent CID other than ffffffff."""
    lowered = descriptor.lower()
    if b'parentfilenamehint' in lowered:
        raise ImageRefused('source.path: %s is a VMDK naming a parent (parentFileNameHint); an image to import '
                           'must stand alone (flatten it first)' % path)
    at = [match.end() for match in re.finditer(b'parentcid', lowered)]
    if not at or any(not re.match(b'=ffffffff(?![0-9a-f])', lowered[end:end + 10]) for end in at):
        raise ImageRefused('source.path: %s is a VMDK whose parentCID is not ffffffff (a child of another '
                           'disk); refused' % path)


def _vmdk(header, handle, file_size, path):
    """Virtual size of a monolithic sparse VMDK, after every check of the places qemu reads (vmdk.c).

    qemu opens a sparse VMDK with capacity 0 and a descriptor offset as a descriptor FILE (its extents,
    e.g. FLAT on any host file, are opened); otherwise it reads the parent and CIDs from the descriptor at
    sector 1, and a streamOptimized footer's header replaces the first one. Anything where those places
    could disagree is refused."""
    if not header.startswith(VMDK_SPARSE_MAGIC):
        raise ImageRefused('source.path: %s is a VMDK descriptor or not a sparse VMDK; its extents '
                           'would be read from other files, refused' % path)
    first = _vmdk4_header(header, path, 'header')
    effective = first
    if first['gd_offset'] == VMDK_GD_AT_END:
        effective = _vmdk_footer(handle, file_size, path)
        for field in ('capacity', 'descriptor_offset', 'descriptor_size'):
            if effective[field] != first[field]:
                raise ImageRefused('source.path: %s is a VMDK whose header and footer disagree on its %s '
                                   '(%d, %d); refused' % (path, field.replace('_', ' '), first[field],
                                                          effective[field]))
    if not first['capacity'] or not effective['capacity']:
        raise ImageRefused('source.path: %s is a VMDK of capacity 0, which qemu opens as a descriptor naming '
                           'other files; refused' % path)
    if effective['version'] not in (1, 2, 3):
        raise ImageRefused('source.path: %s is a VMDK of unknown version %d' % (path, effective['version']))
    if first['descriptor_offset'] != VMDK_DESCRIPTOR_SECTOR:
        raise ImageRefused('source.path: %s keeps its VMDK descriptor at sector %d, qemu reads the one at '
                           'sector %d; refused' % (path, first['descriptor_offset'], VMDK_DESCRIPTOR_SECTOR))
    descriptor = _vmdk_descriptor(header, first['descriptor_size'], file_size, path)
    _vmdk_refuse_parent(descriptor, path)
    descriptor = descriptor.decode('ascii', 'replace')
    create_type = _VMDK_CREATE_TYPE_RE.search(descriptor)
    if create_type is None or create_type.group(1) not in VMDK_ALLOWED_CREATE_TYPES:
        raise ImageRefused('source.path: %s is a VMDK of create type %s; allowed: %s'
                           % (path, create_type.group(1) if create_type else 'unknown',
                              ', '.join(VMDK_ALLOWED_CREATE_TYPES)))
    extents = _VMDK_EXTENT_RE.findall(descriptor)
    if len(extents) != 1 or extents[0][1] != 'SPARSE':
        raise ImageRefused('source.path: %s is a VMDK with %d extents; only one sparse extent in the '
                           'file itself is allowed' % (path, len(extents)))
    return effective['capacity'] * SECTOR


def inspect(path: str, declared: str, max_virtual_size: int | None = None) -> ImageInfo:
    """Check that the file at ``path`` is a safe image of format ``declared``.

    ``max_virtual_size``: the most the destination can hold, in bytes (None: only MAX_VIRTUAL_SIZE).
    Returns ImageInfo; raises ImageRefused naming the option at fault.
    """
    _check_declared(declared)
    try:
        handle = open(path, 'rb')
    except OSError as exc:
        raise ImageRefused('source.path: cannot open %s: %s' % (path, exc.strerror))
    with handle:
        file_size = os.fstat(handle.fileno()).st_size
        if stat.S_ISBLK(os.fstat(handle.fileno()).st_mode):  # a logical volume: its size is its end
            file_size = os.lseek(handle.fileno(), 0, os.SEEK_END)
        return inspect_handle(handle, file_size, path, declared, max_virtual_size)


def inspect_handle(handle: BinaryIO, file_size: int, path: str, declared: str,
                   max_virtual_size: int | None = None) -> ImageInfo:
    """inspect() on an open ``handle`` (seek/read) of ``file_size`` bytes, named ``path`` in messages."""
    _check_declared(declared)
    handle.seek(0)
    header = handle.read(HEADER_BYTES)
    found = _signatures(header, handle, file_size)
    if declared == 'raw':
        if found:
            raise ImageRefused('source.format: %s is declared raw but its bytes are a %s image; '
                               'refused (declare its real format if it is trusted)' % (path, found[0]))
        info = ImageInfo('raw', file_size, file_size)
    elif found and declared not in found:
        raise ImageRefused('source.format: %s is declared %s but its bytes are a %s image'
                           % (path, declared, found[0]))
    elif declared == 'qcow2':
        info = ImageInfo('qcow2', _qcow2(header, path), file_size)
    else:
        info = ImageInfo('vmdk', _vmdk(header, handle, file_size, path), file_size)
    _check_virtual_size(info.virtual_size, path, max_virtual_size)
    return info


def _check_declared(declared):
    if declared not in SUPPORTED_FORMATS:
        raise ImageRefused('source.format: %r cannot be imported; supported: %s'
                           % (declared, ', '.join(SUPPORTED_FORMATS)))


def _check_virtual_size(virtual_size, path, max_virtual_size):
    if virtual_size > MAX_VIRTUAL_SIZE:
        raise ImageRefused('source.path: %s declares a virtual size of %d bytes, more than any destination '
                           'holds (%d bytes)' % (path, virtual_size, MAX_VIRTUAL_SIZE))
    if max_virtual_size is not None and virtual_size > max_virtual_size:
        raise ImageRefused('source.path: %s declares a virtual size of %d bytes, more than the destination '
                           'holds (%d bytes)' % (path, virtual_size, max_virtual_size))


class OpenedImage:
    """An image file opened once; inspected, and read by every tool, through that descriptor.

    The path is opened with O_NOFOLLOW (a symlink there is refused, never followed) and must be a regular
    file. Tools get ``fd_path`` (``/proc/self/fd/N``; a child process needs ``pass_fds=fds``), which opens
    the inode this descriptor holds: a file renamed or a symlink planted at ``path`` after the check
    redirects nothing.
    """

    def __init__(self, path: str, fd: int | None = None) -> None:
        """``fd``: the file already opened by the caller the same way (it is duplicated, not taken over)."""
        if fd is not None:
            fd = os.dup(fd)
        else:
            fd = self._open(path)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ImageRefused('source.path: %s is not a regular file' % path)
        self.handle = os.fdopen(fd, 'rb')
        self.path = path
        self.info = None

    @staticmethod
    def _open(path):
        try:  # O_NONBLOCK: a FIFO planted there cannot hang the open; it is refused by the caller
            return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ImageRefused('source.path: %s is a symbolic link; refused (give the file itself)' % path)
            if exc.errno == errno.ENOENT:
                raise ImageRefused('source.path: %s is not an existing file' % path)
            raise ImageRefused('source.path: cannot open %s: %s' % (path, exc.strerror))

    def inspect(self, declared: str, max_virtual_size: int | None = None) -> ImageInfo:
        """inspect() of the open file: its ImageInfo (also kept as ``info``)."""
        _check_declared(declared)
        self.info = inspect_handle(self.handle, os.fstat(self.handle.fileno()).st_size, self.path, declared,
                                   max_virtual_size=max_virtual_size)
        return self.info

    @property
    def fds(self) -> tuple[int]:
        return (self.handle.fileno(),)

    @property
    def fd_path(self) -> str:
        return '/proc/self/fd/%d' % self.handle.fileno()

    def close(self) -> None:
        self.handle.close()
