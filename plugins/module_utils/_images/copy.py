# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Moving raw bytes between files on one host: reflink, sparse copy, verify.

Only for data whose format is known and the same on both sides (a raw image
copied to a raw volume): bytes are copied as bytes, nothing interprets them.
A reflink (FICLONE) shares extents where the filesystem can (btrfs, xfs);
otherwise only the data extents are copied (SEEK_DATA/SEEK_HOLE with
copy_file_range), so holes stay holes. Everything is fsync'ed before the
caller may trust it.
"""

from __future__ import annotations

import errno
import fcntl
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: nothing more is imported at run time
    from collections.abc import Callable, Iterator
    from typing import BinaryIO

    Progress = Callable[[int], object]  # called with how far into the file the work is (bytes)

FICLONE = 0x40049409
CHUNK = 8 * 1024 * 1024


def reflink(src_fd: int, dst_fd: int) -> bool:
    """Share ``src_fd``'s extents into ``dst_fd``; False where the filesystem cannot."""
    try:
        fcntl.ioctl(dst_fd, FICLONE, src_fd)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS):
            return False
        raise
    return True


def data_extents(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """(start, end) of every data extent of ``fd``; the rest are holes."""
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # only a hole is left
                return
            raise
        end = os.lseek(fd, start, os.SEEK_HOLE)
        yield start, min(end, size)
        offset = end


def _ignore(_offset):
    pass


def _copy_range(src_fd, dst_fd, start, end, progress):
    offset = start
    while offset < end:
        count = min(CHUNK * 16, end - offset)
        try:
            copied = os.copy_file_range(src_fd, dst_fd, count, offset, offset)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                raise
            copied = os.pwrite(dst_fd, os.pread(src_fd, min(CHUNK, end - offset), offset), offset)
        if copied <= 0:
            raise OSError(errno.EIO, 'short copy at offset %d' % offset)
        offset += copied
        progress(offset)


def open_for_reading(src: int | str) -> BinaryIO:
    """A binary reader of ``src``: a path, or a descriptor the caller opened (and keeps)."""
    if isinstance(src, int):
        return os.fdopen(src, 'rb', closefd=False)
    return open(src, 'rb')


def copy_file(src: int | str, dst: int | str, allow_reflink: bool = True, progress: Progress | None = None) -> str:
    """Copy the bytes of ``src`` (a path or an open descriptor) into the existing file ``dst`` (a path or a
    descriptor open for writing, which the caller keeps); returns the method used.

    ``dst`` ends with exactly ``src``'s size; holes stay holes. ``progress(offset)`` is called as the copy
    gets further into the file (a hole counts as done once passed), last with the size.
    """
    progress = progress or _ignore
    target_file = os.fdopen(dst, 'r+b', closefd=False) if isinstance(dst, int) else open(dst, 'r+b')
    with open_for_reading(src) as source, target_file as target:
        size = os.fstat(source.fileno()).st_size
        target.truncate(0)
        if allow_reflink and reflink(source.fileno(), target.fileno()):
            method = 'reflink'
        else:
            target.truncate(size)
            for start, end in data_extents(source.fileno(), size):
                _copy_range(source.fileno(), target.fileno(), start, end, progress)
            method = 'sparse-copy'
        os.fsync(target.fileno())
    progress(size)
    return method


def same_bytes(first: int | str, second: int | str, progress: Progress | None = None) -> bool:
    """Compare two raw files (paths or open descriptors) byte for byte, reading only where either has data.

    ``progress(offset)``: as in copy_file."""
    progress = progress or _ignore
    with open_for_reading(first) as one, open_for_reading(second) as other:
        size = os.fstat(one.fileno()).st_size
        if os.fstat(other.fileno()).st_size != size:
            return False
        extents = sorted(set(data_extents(one.fileno(), size)) | set(data_extents(other.fileno(), size)))
        for start, end in extents:
            offset = start
            while offset < end:
                count = min(CHUNK, end - offset)
                if os.pread(one.fileno(), count, offset) != os.pread(other.fileno(), count, offset):
                    return False
                offset += count
                progress(offset)
    progress(size)
    return True
