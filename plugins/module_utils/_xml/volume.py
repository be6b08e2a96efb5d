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

from ansible_collections.storagepools.libvirt.plugins.module_utils._xml import tree as xml_tree
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.tree import etree

VOLUME_FORMATS = ('raw', 'qcow2')


class VolumeDefinition:
    def __init__(self, name: str, capacity: int, volume_format: str, allocation: int = 0,
                 backing_path: Optional[str] = None, backing_format: Optional[str] = None,
                 path: Optional[str] = None) -> None:
        self.name = name
        self.capacity = capacity
        self.format = volume_format
        self.allocation = allocation
        self.backing_path = backing_path
        self.backing_format = backing_format
        self.path = path

    @classmethod
    def parse_dom(cls, root: Any) -> VolumeDefinition:
        capacity = root.find('capacity')
        allocation = root.find('allocation')
        target_format = root.find('target/format')
        backing_format = root.find('backingStore/format')
        return cls(name=xml_tree.child_text(root, 'name'),
                   capacity=int(capacity.text) if capacity is not None else None,
                   volume_format=target_format.get('type') if target_format is not None else None,
                   allocation=int(allocation.text) if allocation is not None else None,
                   backing_path=xml_tree.child_text(root, 'backingStore/path'),
                   backing_format=backing_format.get('type') if backing_format is not None else None,
                   path=xml_tree.child_text(root, 'target/path'))

    @classmethod
    def from_xml(cls, text: str) -> VolumeDefinition:
        return cls.parse_dom(xml_tree.parse(text, 'volume'))

    def format_dom(self) -> Any:
        root = etree.Element('volume')
        xml_tree.set_child_text(root, 'name', self.name)
        etree.SubElement(root, 'capacity', unit='bytes').text = str(self.capacity)
        if self.allocation is not None:  # 0: sparse, libvirt does not preallocate
            etree.SubElement(root, 'allocation', unit='bytes').text = str(self.allocation)
        target = etree.SubElement(root, 'target')
        xml_tree.set_child_text(target, 'path', self.path)
        if self.format:
            etree.SubElement(target, 'format', type=self.format)
            if self.format == 'qcow2':
                xml_tree.set_child_text(target, 'compat', '1.1')
        if self.backing_path:
            backing = etree.SubElement(root, 'backingStore')
            xml_tree.set_child_text(backing, 'path', self.backing_path)
            etree.SubElement(backing, 'format', type=self.backing_format)
        return root

    def to_xml(self) -> str:
        return xml_tree.to_string(self.format_dom())
