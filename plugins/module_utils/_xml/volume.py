# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The libvirt <volume> document.

Formats written here are always explicit (the target format, the backing
format). What libvirt's own XMLDesc says about a file volume's format is
its probe of the bytes, so this model's ``format`` read back from libvirt
is never used to decide anything; recorded metadata is (_backends/records.py).
"""

from __future__ import annotations

from typing import Any, Optional

from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.base import XMLObject, XMLProperty

VOLUME_FORMATS = ('raw', 'qcow2')


class VolumeDefinition(XMLObject):
    """A storage volume document: the fields this collection writes, the rest of a parsed one kept."""

    ROOT_TAG = 'volume'
    # libvirt's order, for <volume>, <target> and <backingStore> alike (a field makes its element in place)
    CHILD_ORDER = ('name', 'key', 'source', 'capacity', 'allocation', 'physical', 'target', 'backingStore',
                   'path', 'format', 'permissions', 'timestamps', 'compat')

    name = XMLProperty('name')
    capacity = XMLProperty('capacity', parse=int)
    capacity_unit = XMLProperty('capacity/@unit')
    allocation = XMLProperty('allocation', parse=int)
    allocation_unit = XMLProperty('allocation/@unit')
    path = XMLProperty('target/path')
    format = XMLProperty('target/format/@type')
    compat = XMLProperty('target/compat')
    mode = XMLProperty('target/permissions/mode')  # octal digits: the file libvirt creates gets them
    backing_path = XMLProperty('backingStore/path')
    _backing_format = XMLProperty('backingStore/format/@type')

    def __init__(self, name: Optional[str] = None, capacity: Optional[int] = None,
                 volume_format: Optional[str] = None, allocation: Optional[int] = 0,
                 backing_path: Optional[str] = None, backing_format: Optional[str] = None,
                 path: Optional[str] = None, node: Any = None) -> None:
        super().__init__(node)
        self._parent_format = None
        if node is not None:
            return
        self.name = name
        if capacity is not None:
            self.capacity, self.capacity_unit = capacity, 'bytes'
        if allocation is not None:  # 0: sparse, libvirt does not preallocate
            self.allocation, self.allocation_unit = allocation, 'bytes'
        self.path = path
        self.format = volume_format
        if volume_format == 'qcow2':
            self.compat = '1.1'
        self.backing_path = backing_path
        self.backing_format = backing_format

    @property
    def backing_format(self) -> Optional[str]:
        """The parent's format. An rbd clone's parent is a snapshot, no path a <backingStore> holds: then the
        format is kept beside the document, which libvirt never sees for rbd."""
        return self._backing_format or self._parent_format

    @backing_format.setter
    def backing_format(self, value: Optional[str]) -> None:
        if self.backing_path:
            self._backing_format, self._parent_format = value, None
        else:
            self._parent_format = value
