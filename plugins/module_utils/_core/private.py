# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What makes a file or directory private to root: the rule the journal, the lock and the no-op records share
(whoever else could write them would steer our steps, or hide a drift)."""

from __future__ import annotations

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
