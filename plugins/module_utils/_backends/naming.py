# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Volume names: ``{instance_uuid}_{disk}``."""

from __future__ import annotations

import re
import uuid as uuidlib

from ansible_collections.storagepools.libvirt.plugins.module_utils._core import names
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError

# the protected snapshot of an rbd base that copy-on-write clones are made from (rbd.py makes it; the base
# pruning planner reads its children): here, so that planning imports no librados
BASE_SNAPSHOT = 'storagepools-base'
_DISK_NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._+-]*$')


def volume_name(instance_uuid: str, disk: str) -> str:
    """The pool volume of an instance's disk, ``{instance_uuid}_{disk}``, as Nova names it (the parts as
    found: a caller that takes them from an operator checks them with instance_volume_name)."""
    return '%s_%s' % (instance_uuid, disk)


def instance_volume_name(instance_uuid: str, disk: str) -> str:
    """``{instance_uuid}_{disk}`` with both parts checked (disk: disk, disk.local, disk.swap, ...)."""
    try:
        parsed = uuidlib.UUID(instance_uuid)
    except (ValueError, AttributeError, TypeError):
        raise StoragePoolsError('instance_uuid: %r is not a uuid' % (instance_uuid,))
    if str(parsed) != instance_uuid.lower():
        raise StoragePoolsError('instance_uuid: give the uuid in its canonical form (%s)' % parsed)
    if not disk or not _DISK_NAME_RE.match(disk):
        raise StoragePoolsError("disk: %r is not a disk name such as disk, disk.local or disk.swap" % (disk,))
    return names.volume_name(volume_name(str(parsed), disk))
