# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The pool types the pool model knows: apart from pool.py so an argument spec names them without loading the
model (a no-op pool task that finds a verified record never needs it)."""

from __future__ import annotations

POOL_TYPES = ('dir', 'fs', 'netfs', 'logical', 'rbd', 'iscsi', 'zfs', 'disk')
