# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bounds in space and time: no copy starts that cannot finish, no external command runs forever.

A copy that fills a shared filesystem pauses every guest writing there, so
each copy, clone and import first compares what it needs with what the
destination has free and refuses up front, saying both. What a destination
needs for a source is decided here for file pools (thin) and rbd pools; a
thick LV needs its whole-extent size (lvm.whole_extents). What is free comes
from statvfs (file pools), the volume group (lvm.vg_free) or the Ceph pool's
max_avail (rbd_volume.RbdPool.max_avail).

Every external command runs with a timeout scaled to the bytes it moves, so
a hung NFS mount or an unreachable Ceph cluster ends in an error naming the
option and the command, not in a task that never returns.
"""

from __future__ import annotations

import os
import stat

from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError

MiB = 1024 * 1024
MARGIN = 4 * MiB  # at least this much stays free: filesystem metadata of the new file, the record
MARGIN_PERCENT = 1
QCOW2_CLUSTER = 64 * 1024


def allocated_bytes(path: int | str) -> int | None:
    """The bytes a regular file (a path, never followed, or an open descriptor) occupies on its filesystem
    (holes count nothing); None for anything else (a block device's blocks say nothing of its data)."""
    if isinstance(path, int):
        info = os.fstat(path)
    else:
        info = os.lstat(path)
    return info.st_blocks * 512 if stat.S_ISREG(info.st_mode) else None


def thin_file_need(path: int | str | None, virtual_size: int, new_qcow2: bool = False) -> int:
    """The bytes a copy of ``path`` takes in a sparse file of a file pool.

    Our sparse copy writes only the source's data extents, and ``qemu-img convert`` into a fresh file writes
    only data clusters (holes and zeroes stay holes), so the source's allocated bytes bound it, not its
    virtual size (a compressed qcow2 cluster can inflate beyond that: the margin and the ENOSPC cleanup cover
    it). A source that is no file here (``path`` None: an rbd image; a block device) counts its virtual size.
    ``new_qcow2``: the copy is a new qcow2 container, whose L2 and refcount tables come on top.
    """
    allocated = allocated_bytes(path) if path is not None else None
    needed = virtual_size if allocated is None else allocated
    if new_qcow2:
        clusters = -(-virtual_size // QCOW2_CLUSTER)
        needed += clusters * 10 + 4 * QCOW2_CLUSTER  # 8 bytes of L2 and 2 of refcount per cluster; header, L1
    return needed


def rbd_need(virtual_size: int) -> int:
    """The bytes an import into an rbd image takes: its raw size (images are thin, but qemu's rbd driver
    may write the zeroes of the raw view, so only the raw size is a bound)."""
    return virtual_size


def existing_ancestor(path: str) -> str:
    """``path``, or when it is not there yet its nearest parent that is: where a directory a pool's build
    would make lands (the filesystem it would be on, in check mode)."""
    path = os.path.abspath(path)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def device_of(path: str) -> int:
    """The filesystem (st_dev) of directory ``path``, or of the one it would be made on (existing_ancestor)."""
    return os.stat(existing_ancestor(path)).st_dev


def free_in_directory(path: str, dir_fd: int | None = None) -> int:
    """Bytes an unprivileged writer may still use under ``path`` (f_bavail: the root-reserved blocks are not
    ours to fill, other guests may need them); of its existing_ancestor() when it is not made yet.
    ``dir_fd``: the directory as the caller opened it (another user's, whose name may be swapped)."""
    info = os.fstatvfs(dir_fd) if dir_fd is not None else os.statvfs(existing_ancestor(path))
    return info.f_bavail * info.f_frsize


def human(size: int) -> str:
    return '%.1f MiB' % (size / float(MiB))


def margin_for(needed: int) -> int:
    """What stays free on top of ``needed`` bytes (the new files' metadata, the records)."""
    return max(MARGIN, needed * MARGIN_PERCENT // 100)


def fits(needed: int, available: int) -> bool:
    """Whether ``needed`` bytes and their margin fit in ``available`` (nothing needed always fits)."""
    return needed <= 0 or needed + margin_for(needed) <= available


def require_space(needed: int, available: int, where: str, option: str, what: str) -> None:
    """Refuse, before anything is written, a copy of ``needed`` bytes into ``where`` with ``available``
    free (plus a margin); ``what`` names the copy, ``option`` the option that chose the destination."""
    if not fits(needed, available):
        margin = margin_for(needed)
        raise StoragePoolsError(
            '%s: %s needs %s (%d bytes) plus a margin of %s, but %s has only %s (%d bytes) available; nothing '
            'was written. Free space there or choose a larger pool'
            % (option, what, human(needed), needed, human(margin), where, human(available), available))
