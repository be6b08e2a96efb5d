# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What makes a file or directory private to root: the rule the journal, the lock and the no-op records share
(whoever else could write them would steer our steps, or hide a drift)."""

from __future__ import annotations

import errno
import os
import stat


def privacy_problems(info: os.stat_result) -> list[str]:
    """Why ``info`` (an fstat result) is not this user's alone to write: [] when it is."""
    problems = []
    if info.st_uid != os.geteuid():
        problems.append('owned by uid %d, not by uid %d (root)' % (info.st_uid, os.geteuid()))
    if info.st_mode & 0o022:
        writers = 'group and others' if info.st_mode & 0o022 == 0o022 else \
            'its group' if info.st_mode & 0o020 else 'others'
        problems.append('writable by %s (mode %04o)' % (writers, stat.S_IMODE(info.st_mode)))
    return problems


def read_private_file(dir_fd: int, name: str, limit: int) -> tuple[bytes | None, list[str]]:
    """(content, []) of the regular file ``name`` in the directory ``dir_fd``, opened without following a
    symlink and read only when it is this user's alone and at most ``limit`` bytes; (None, why not) when it is
    not; (None, []) when there is no such file."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError:
        return None, []
    except OSError as exc:
        return None, ['a symlink' if exc.errno == errno.ELOOP else 'not readable (%s)' % exc.strerror]
    with os.fdopen(fd, 'rb') as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            return None, ['not a regular file']
        problems = privacy_problems(info)
        if problems:
            return None, problems
        data = handle.read(limit + 1)
    if len(data) > limit:
        return None, ['larger than %d bytes' % limit]
    return data, []
