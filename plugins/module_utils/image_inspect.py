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
streamOptimized). Only after this check may a tool open the image, and then
always with the format given explicitly; OpenedImage opens a file once
(never through a symlink) so that the tools read the very file checked.

A guest's own raw disk is different (legacy adoption): its content is
arbitrary guest data and is never inspected; it is only ever opened as raw.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import struct

from ansible_collections.storagepools.libvirt.plugins.module_utils.errors import StoragePoolsError

SUPPORTED_FORMATS = ('raw', 'qcow2', 'vmdk')
VMDK_ALLOWED_CREATE_TYPES = ('monolithicSparse', 'streamOptimized')

QCOW_MAGIC = b'QFI\xfb'
QCOW2_EXT_END = 0x00000000
QCOW2_EXT_DATA_FILE = 0x44415441
QCOW2_EXT_CRYPTO = 0x0537be77
QCOW2_EXT_BACKING_FORMAT = 0xE2792ACA
QCOW2_INCOMPAT_CORRUPT = 1 << 1
QCOW2_INCOMPAT_DATA_FILE = 1 << 2
QCOW2_INCOMPAT_KNOWN = (1 << 0) | QCOW2_INCOMPAT_CORRUPT | QCOW2_INCOMPAT_DATA_FILE | (1 << 3) | (1 << 4)
VMDK_SPARSE_MAGIC = b'KDMV'
SECTOR = 512
HEADER_BYTES = 64 * 1024
_VMDK_EXTENT_RE = re.compile(r'^\s*(RW|RDONLY|NOACCESS)\s+\d+\s+(\w+)', re.MULTILINE)
_VMDK_CREATE_TYPE_RE = re.compile(r'^\s*createType\s*=\s*"([^"]*)"', re.MULTILINE)


class ImageRefused(StoragePoolsError):
    """The image is not what it was declared to be, or is unsafe to open."""


class ImageInfo:
    def __init__(self, image_format, virtual_size, file_size):
        self.format = image_format
        self.virtual_size = virtual_size
        self.file_size = file_size

    def to_dict(self):
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
    external data file, encryption, a corrupt image, unknown features.
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
    extensions_at = 72
    if version == 3:
        if len(header) < 104:
            raise ImageRefused('source.path: %s has a truncated qcow2 header' % path)
        incompatible, = struct.unpack('>Q', header[72:80])
        header_length, = struct.unpack('>I', header[100:104])
        if incompatible & QCOW2_INCOMPAT_DATA_FILE:
            raise ImageRefused('source.path: %s uses an external data file; refused (its data would be '
                               'read from another file the image names)' % path)
        if incompatible & QCOW2_INCOMPAT_CORRUPT:
            raise ImageRefused('source.path: %s is marked corrupt' % path)
        if incompatible & ~QCOW2_INCOMPAT_KNOWN:
            raise ImageRefused('source.path: %s uses qcow2 features this collection does not know' % path)
        extensions_at = header_length
    backing_format = None
    offset = extensions_at
    while offset + 8 <= len(header):
        ext_type, ext_length = struct.unpack('>II', header[offset:offset + 8])
        if ext_type == QCOW2_EXT_END:
            break
        if ext_type == QCOW2_EXT_DATA_FILE:
            raise ImageRefused('source.path: %s names an external data file; refused' % path)
        if ext_type == QCOW2_EXT_CRYPTO:
            raise ImageRefused('source.path: %s is an encrypted qcow2; it cannot be imported' % path)
        if ext_type == QCOW2_EXT_BACKING_FORMAT:
            backing_format = header[offset + 8:offset + 8 + ext_length].decode('ascii', 'replace')
        offset += 8 + (ext_length + 7) // 8 * 8
    else:
        raise ImageRefused('source.path: %s has qcow2 header extensions past the first %d bytes'
                           % (path, HEADER_BYTES))
    backing = None
    if backing_offset or backing_size:
        if backing_offset + backing_size > len(header) or not 0 < backing_size <= 1023:
            raise ImageRefused('source.path: %s has an unreadable backing file name' % path)
        backing = header[backing_offset:backing_offset + backing_size].decode('utf-8', 'replace')
    return size, backing, backing_format


def _qcow2(header, path):
    size, backing, _backing_format = _qcow2_facts(header, path)
    if backing:
        raise ImageRefused('source.path: %s carries a backing file; an image to import must stand '
                           'alone (flatten it first)' % path)
    return size


def read_qcow2_overlay(path, fd=None):
    """(virtual size, backing path or None, backing format or None) of a qcow2 container.

    For an instance's own qcow2 disk (whose container qemu wrote): a backing
    file is expected there, so it is returned rather than refused. ``fd``: the
    file already open (``path`` only names it in messages).
    """
    if fd is not None:
        return _qcow2_facts(os.pread(fd, HEADER_BYTES, 0), path)
    with open(path, 'rb') as handle:
        return _qcow2_facts(handle.read(HEADER_BYTES), path)


def _vmdk(header, handle, path):
    if not header.startswith(VMDK_SPARSE_MAGIC):
        raise ImageRefused('source.path: %s is a VMDK descriptor or not a sparse VMDK; its extents '
                           'would be read from other files, refused' % path)
    capacity, _grain, descriptor_offset, descriptor_size = struct.unpack('<QQQQ', header[12:44])
    if not descriptor_offset or not 0 < descriptor_size <= 2048:
        raise ImageRefused('source.path: %s is a VMDK without an embedded descriptor; refused' % path)
    handle.seek(descriptor_offset * SECTOR)
    descriptor = handle.read(descriptor_size * SECTOR).split(b'\x00', 1)[0].decode('ascii', 'replace')
    create_type = _VMDK_CREATE_TYPE_RE.search(descriptor)
    if create_type is None or create_type.group(1) not in VMDK_ALLOWED_CREATE_TYPES:
        raise ImageRefused('source.path: %s is a VMDK of create type %s; allowed: %s'
                           % (path, create_type.group(1) if create_type else 'unknown',
                              ', '.join(VMDK_ALLOWED_CREATE_TYPES)))
    extents = _VMDK_EXTENT_RE.findall(descriptor)
    if len(extents) != 1 or extents[0][1] != 'SPARSE':
        raise ImageRefused('source.path: %s is a VMDK with %d extents; only one sparse extent in the '
                           'file itself is allowed' % (path, len(extents)))
    return capacity * SECTOR


def inspect(path, declared):
    """Check that the file at ``path`` is a safe image of format ``declared``.

    Returns ImageInfo; raises ImageRefused naming the option at fault.
    """
    if declared not in SUPPORTED_FORMATS:
        raise ImageRefused('source.format: %r cannot be imported; supported: %s'
                           % (declared, ', '.join(SUPPORTED_FORMATS)))
    try:
        handle = open(path, 'rb')
    except OSError as exc:
        raise ImageRefused('source.path: cannot open %s: %s' % (path, exc.strerror))
    with handle:
        file_size = os.fstat(handle.fileno()).st_size
        if stat.S_ISBLK(os.fstat(handle.fileno()).st_mode):  # a logical volume: its size is its end
            file_size = os.lseek(handle.fileno(), 0, os.SEEK_END)
        return inspect_handle(handle, file_size, path, declared)


def inspect_handle(handle, file_size, path, declared):
    """inspect() on an open ``handle`` (seek/read) of ``file_size`` bytes, named ``path`` in messages."""
    handle.seek(0)
    header = handle.read(HEADER_BYTES)
    found = _signatures(header, handle, file_size)
    if declared == 'raw':
        if found:
            raise ImageRefused('source.format: %s is declared raw but its bytes are a %s image; '
                               'refused (declare its real format if it is trusted)' % (path, found[0]))
        return ImageInfo('raw', file_size, file_size)
    if found and declared not in found:
        raise ImageRefused('source.format: %s is declared %s but its bytes are a %s image'
                           % (path, declared, found[0]))
    if declared == 'qcow2':
        return ImageInfo('qcow2', _qcow2(header, path), file_size)
    return ImageInfo('vmdk', _vmdk(header, handle, path), file_size)


class OpenedImage:
    """An image file opened once; inspected, and read by every tool, through that descriptor.

    The path is opened with O_NOFOLLOW (a symlink there is refused, never followed) and must be a regular
    file. Tools get ``fd_path`` (``/proc/self/fd/N``; a child process needs ``pass_fds=fds``), which opens
    the inode this descriptor holds: a file renamed or a symlink planted at ``path`` after the check
    redirects nothing.
    """

    def __init__(self, path):
        try:  # O_NONBLOCK: a FIFO planted there cannot hang the open; it is refused below
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ImageRefused('source.path: %s is a symbolic link; refused (give the file itself)' % path)
            if exc.errno == errno.ENOENT:
                raise ImageRefused('source.path: %s is not an existing file' % path)
            raise ImageRefused('source.path: cannot open %s: %s' % (path, exc.strerror))
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ImageRefused('source.path: %s is not a regular file' % path)
        self.handle = os.fdopen(fd, 'rb')
        self.path = path
        self.info = None

    def inspect(self, declared):
        """inspect() of the open file: its ImageInfo (also kept as ``info``)."""
        if declared not in SUPPORTED_FORMATS:
            raise ImageRefused('source.format: %r cannot be imported; supported: %s'
                               % (declared, ', '.join(SUPPORTED_FORMATS)))
        self.info = inspect_handle(self.handle, os.fstat(self.handle.fileno()).st_size, self.path, declared)
        return self.info

    @property
    def fds(self):
        return (self.handle.fileno(),)

    @property
    def fd_path(self):
        return '/proc/self/fd/%d' % self.handle.fileno()

    def close(self):
        self.handle.close()
