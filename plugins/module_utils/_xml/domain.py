# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A domain's own XML, edited in place: only a disk's type, source and backingStore change.

The document is the domain's inactive XML as libvirt wrote it, taken with
VIR_DOMAIN_XML_SECURE so that a redefinition loses nothing (graphics
passwords and the like). It is parsed keeping every text node, and only the
elements of the disks being adopted are touched; PCI addresses, device
order, machine type, CPU model and everything else stay as they were. A
domain is never regenerated.

Two documents are compared, and shown as a diff, in a canonical form: no
indentation of their own, attributes sorted, children in document order (a
device's position is meaningful). So quote style and attribute order, which
differ between what libvirt writes and what lxml serialises, never show.
"""

from __future__ import annotations

import copy
from typing import Iterable, List, Optional, Tuple

from ansible_collections.storagepools.libvirt.plugins.module_utils._xml import tree as xml_tree
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.tree import etree


class DomainDisk:
    """One <disk> element of a domain document (a view: changes go into the document)."""

    def __init__(self, element: etree._Element) -> None:
        self.element = element

    @property
    def target(self) -> Optional[str]:
        node = self.element.find('target')
        return node.get('dev') if node is not None else None

    @property
    def device(self) -> str:
        return self.element.get('device', 'disk')

    @property
    def type(self) -> Optional[str]:
        return self.element.get('type')

    @property
    def driver_format(self) -> Optional[str]:
        node = self.element.find('driver')
        return node.get('type') if node is not None else None

    @property
    def source_file(self) -> Optional[str]:
        node = self.element.find('source')
        return node.get('file') if node is not None and self.type == 'file' else None

    @property
    def source_volume(self) -> Optional[Tuple[Optional[str], Optional[str]]]:
        node = self.element.find('source')
        if node is None or self.type != 'volume':
            return None
        return node.get('pool'), node.get('volume')

    @property
    def source_block(self) -> Optional[str]:
        node = self.element.find('source')
        return node.get('dev') if node is not None and self.type == 'block' else None

    @property
    def rbd_image(self) -> Optional[str]:
        """``<ceph pool>/<image>`` of an rbd network disk, else None."""
        node = self.element.find('source')
        if node is None or self.type != 'network' or node.get('protocol') != 'rbd':
            return None
        return node.get('name')

    def _source(self):
        node = self.element.find('source')
        if node is None:
            node = etree.SubElement(self.element, 'source')
        return node

    def point_at_file(self, path: str) -> None:
        """``<disk type='file'><source file=path/>``: only the type and the source's file change."""
        if self.type == 'file' and self.source_file == path:
            return
        source = self._source()
        for attribute in ('pool', 'volume', 'mode', 'dev', 'protocol', 'name'):
            source.attrib.pop(attribute, None)
        self.element.set('type', 'file')
        source.set('file', path)

    def point_at_volume(self, pool: str, volume: str) -> None:
        """``<disk type='volume'><source pool= volume=/>`` (a volume disk of a libvirt pool)."""
        if self.source_volume == (pool, volume):
            return
        source = self._source()
        for attribute in ('file', 'dev'):
            source.attrib.pop(attribute, None)
        self.element.set('type', 'volume')
        source.set('pool', pool)
        source.set('volume', volume)

    def point_at_block(self, dev: str) -> None:
        """``<disk type='block'><source dev=/>``, raw, no backing chain: what Nova writes for images_type=lvm."""
        if self.source_block == dev and self.driver_format == 'raw' and self.element.find('backingStore') is None:
            return
        source = self._source()
        for attribute in list(source.attrib):
            source.attrib.pop(attribute)
        source.set('dev', dev)
        for node in self.element.findall('backingStore'):
            self.element.remove(node)
        self.element.set('type', 'block')
        self.element.find('driver').set('type', 'raw')

    def point_at_rbd(self, name: str, hosts: Iterable[Tuple[str, Optional[str]]], username: str,
                     secret_uuid: str) -> None:
        """``<disk type='network'>`` on rbd image ``name`` (``pool/image``), raw, with Ceph auth.

        What Nova writes for images_type=rbd: the monitors as <host> and the
        auth with the secret by uuid. A flattened import has no backing chain.
        """
        if self.rbd_image == name and self.driver_format == 'raw' and self.element.find('backingStore') is None:
            return
        old = self.element.find('source')
        source = etree.Element('source', protocol='rbd', name=name)
        for host, port in hosts:
            etree.SubElement(source, 'host', name=host, **({'port': str(port)} if port else {}))
        if old is not None:
            source.tail = old.tail
            old.addprevious(source)
            self.element.remove(old)
        else:
            self.element.append(source)
        for node in self.element.findall('backingStore') + self.element.findall('auth'):
            self.element.remove(node)
        auth = etree.Element('auth', username=username)
        etree.SubElement(auth, 'secret', type='ceph', uuid=secret_uuid)
        auth.tail = source.tail
        source.addnext(auth)
        self.element.set('type', 'network')
        self.element.find('driver').set('type', 'raw')

    def to_xml(self) -> str:
        """This <disk> element alone, as it is in the document."""
        return etree.tostring(self.element, encoding='unicode', with_tail=False)

    def restore_source(self, recorded: str, driver_and_auth: bool = False) -> None:
        """The type, <source> and <backingStore> of ``recorded`` (this disk's element as it was, to_xml) back
        in place; every other attribute and child stays as it is now (what libvirt changed since).

        ``driver_and_auth``: also the <driver type> and <auth> (what a cutover to rbd or LVM changed)."""
        old_disk = xml_tree.parse(recorded, 'disk')
        if driver_and_auth:
            self._restore_driver_and_auth(old_disk)
        if old_disk.get('type') is None:
            self.element.attrib.pop('type', None)
        else:
            self.element.set('type', old_disk.get('type'))
        current = self.element.find('source')
        wanted = old_disk.find('source')
        anchor = None
        if wanted is not None:
            anchor = copy.deepcopy(wanted)
            self._place(anchor, current, before=True)
        if current is not None:
            self.element.remove(current)
        for node in self.element.findall('backingStore'):
            self.element.remove(node)
        for node in reversed(old_disk.findall('backingStore')):
            self._place(copy.deepcopy(node), anchor, before=False)

    def _restore_driver_and_auth(self, old_disk: etree._Element) -> None:
        old_driver, driver = old_disk.find('driver'), self.element.find('driver')
        if old_driver is not None and driver is not None and old_driver.get('type'):
            driver.set('type', old_driver.get('type'))
        for node in self.element.findall('auth'):
            self.element.remove(node)
        for node in reversed(old_disk.findall('auth')):
            self._place(copy.deepcopy(node), self.element.find('source'), before=False)

    def _place(self, node: etree._Element, beside: Optional[etree._Element], before: bool) -> None:
        """``node`` just before or after ``beside`` (with its indentation), or last when there is none."""
        if beside is None:
            self.element.append(node)
            return
        node.tail = beside.tail
        if before:
            beside.addprevious(node)
        else:
            beside.addnext(node)

    def set_backing_store(self, path: str, backing_format: str) -> None:
        """An explicit one-level chain, ended by an empty <backingStore/>, so libvirt never probes it.

        An existing chain naming the same file and format is left exactly as it is.
        """
        current = self.element.find('backingStore')
        if (current is not None and current.find('source') is not None
                and current.find('source').get('file') == path and current.find('format') is not None
                and current.find('format').get('type') == backing_format
                and current.find('backingStore') is not None and len(current.find('backingStore')) == 0):
            return
        for node in self.element.findall('backingStore'):
            self.element.remove(node)
        backing = etree.Element('backingStore', type='file')
        etree.SubElement(backing, 'format', type=backing_format)
        etree.SubElement(backing, 'source', file=path)
        etree.SubElement(backing, 'backingStore')
        source = self.element.find('source')
        source.addnext(backing)
        backing.tail = source.tail


class DomainDocument:
    """The parsed document, its disks, and the serialisation to define."""

    def __init__(self, text: str) -> None:
        self.root = xml_tree.parse(text, 'domain')  # keeps whitespace: byte-near to what libvirt wrote

    @property
    def uuid(self) -> Optional[str]:
        return xml_tree.child_text(self.root, 'uuid')

    @property
    def name(self) -> Optional[str]:
        return xml_tree.child_text(self.root, 'name')

    def disks(self) -> List[DomainDisk]:
        return [DomainDisk(node) for node in self.root.findall('devices/disk')]

    def disk(self, target: str) -> Optional[DomainDisk]:
        for disk in self.disks():
            if disk.target == target:
                return disk
        return None

    def to_xml(self) -> str:
        return etree.tostring(self.root, encoding='unicode')

    @staticmethod
    def disk_source_xml(path: str, disk_format: str) -> str:
        """The destination of a block copy: ``<disk type='file'>`` with its format explicit."""
        disk = etree.Element('disk', type='file')
        etree.SubElement(disk, 'driver', type=disk_format)
        etree.SubElement(disk, 'source', file=path)
        return etree.tostring(disk, encoding='unicode')

    def copy(self) -> DomainDocument:
        clone = DomainDocument.__new__(DomainDocument)
        clone.root = copy.deepcopy(self.root)
        return clone

    def canonical(self) -> str:
        """The document without its own indentation, attributes sorted, indented two spaces a level."""
        root = xml_tree.strip_blank_text(copy.deepcopy(self.root))
        for node in root.iter():
            if isinstance(node.tag, str) and len(node.attrib) > 1:
                ordered = sorted(node.attrib.items())
                node.attrib.clear()
                node.attrib.update(ordered)
        etree.indent(root, space='  ')
        return etree.tostring(root, encoding='unicode') + '\n'

    def same_as(self, other: DomainDocument) -> bool:
        return self.canonical() == other.canonical()

    def diff(self, after: DomainDocument) -> str:
        """The unified diff of the canonical forms, from this document to ``after``; '' when they are the same."""
        name = self.name or self.uuid
        return xml_tree.unified_diff(self.canonical(), after.canonical(), 'domain %s (before)' % name,
                                     'domain %s (after)' % name)
