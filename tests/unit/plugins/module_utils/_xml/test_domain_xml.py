# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Editing a domain's own XML: only the disk's type, source and backingStore change."""

from __future__ import annotations

from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.domain import DomainDocument

DOMAIN = """<domain type='kvm'>
  <name>instance-0001</name>
  <uuid>6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b</uuid>
  <os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none'/>
      <source file='/var/lib/nova/instances/6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b/disk'/>
      <target dev='vda' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x04' slot='0x00' function='0x0'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='/var/lib/nova/instances/6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b/disk.config'/>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
  </devices>
</domain>"""


def test_point_at_file_changes_only_the_source():
    document = DomainDocument(DOMAIN)
    document.disk('vda').point_at_file('/var/lib/nova/disks/u_disk')
    edited = document.to_xml()
    assert edited == DOMAIN.replace('/var/lib/nova/instances/6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b/disk\'',
                                    '/var/lib/nova/disks/u_disk\'').replace("'", '"')


def test_point_at_volume_sets_type_and_pool_source():
    document = DomainDocument(DOMAIN)
    disk = document.disk('sda')
    disk.point_at_volume('nova-disks-pool', 'u_disk.config')
    assert disk.type == 'volume' and disk.source_volume == ('nova-disks-pool', 'u_disk.config')
    assert disk.source_file is None
    assert disk.element.find('readonly') is not None and disk.driver_format == 'raw'


def test_backing_store_is_explicit_and_ends_the_chain():
    document = DomainDocument(DOMAIN)
    disk = document.disk('vda')
    disk.set_backing_store('/var/lib/nova/instances/_base/abc', 'raw')
    backing = disk.element.find('backingStore')
    assert backing.get('type') == 'file' and backing.find('format').get('type') == 'raw'
    assert backing.find('source').get('file') == '/var/lib/nova/instances/_base/abc'
    assert backing.find('backingStore') is not None and len(backing.find('backingStore')) == 0
    assert [child.tag for child in disk.element] == ['driver', 'source', 'backingStore', 'target', 'address']


def test_edits_are_idempotent_on_an_already_edited_document():
    document = DomainDocument(DOMAIN)
    disk = document.disk('vda')
    disk.point_at_file('/var/lib/nova/disks/u_disk')
    disk.set_backing_store('/var/lib/nova/instances/_base/abc', 'raw')
    once = document.to_xml()
    # libvirt writes the chain back with attributes of its own; an equal chain is left as it is
    again = DomainDocument(once.replace("<backingStore type=\"file\">", "<backingStore type=\"file\" index=\"1\">"))
    before = again.to_xml()
    again.disk('vda').point_at_file('/var/lib/nova/disks/u_disk')
    again.disk('vda').set_backing_store('/var/lib/nova/instances/_base/abc', 'raw')
    assert again.to_xml() == before
    again.disk('vda').set_backing_store('/var/lib/nova/instances/_base/other', 'raw')
    assert again.to_xml() != before


def test_block_copy_destination_names_its_format():
    xml = DomainDocument.disk_source_xml('/var/lib/nova/disks/u_disk', 'qcow2')
    assert xml == '<disk type="file"><driver type="qcow2"/><source file="/var/lib/nova/disks/u_disk"/></disk>'


def test_point_at_rbd_writes_a_raw_network_disk_with_auth_and_no_chain():
    document = DomainDocument(DOMAIN)
    disk = document.disk('vda')
    disk.set_backing_store('/var/lib/nova/instances/_base/abc', 'raw')
    disk.point_at_rbd('vms/u_disk', [('10.0.0.1', '6789'), ('10.0.0.2', None)], 'nova', '4a5e-uuid')
    assert disk.type == 'network' and disk.rbd_image == 'vms/u_disk' and disk.driver_format == 'raw'
    assert disk.source_file is None and disk.element.find('backingStore') is None
    source = disk.element.find('source')
    assert source.get('protocol') == 'rbd' and 'file' not in source.attrib
    assert [(host.get('name'), host.get('port')) for host in source] == [('10.0.0.1', '6789'), ('10.0.0.2', None)]
    auth = disk.element.find('auth')
    assert auth.get('username') == 'nova'
    assert (auth.find('secret').get('type'), auth.find('secret').get('uuid')) == ('ceph', '4a5e-uuid')
    assert [child.tag for child in disk.element] == ['driver', 'source', 'auth', 'target', 'address']
    # everything outside the disk is as it was; the other disk too
    assert document.disk('sda').source_file.endswith('/disk.config')
    once = document.to_xml()
    disk.point_at_rbd('vms/u_disk', [('10.0.0.1', '6789'), ('10.0.0.2', None)], 'nova', '4a5e-uuid')
    assert document.to_xml() == once


def test_point_at_block_writes_novas_lvm_disk():
    document = DomainDocument(DOMAIN)
    disk = document.disk('vda')
    disk.set_backing_store('/var/lib/nova/instances/_base/abc', 'raw')
    disk.point_at_block('/dev/nova-vg/u_disk')
    assert disk.type == 'block' and disk.source_block == '/dev/nova-vg/u_disk' and disk.driver_format == 'raw'
    assert disk.source_file is None and disk.element.find('backingStore') is None
    assert disk.element.find('driver').get('cache') == 'none'  # the rest of <driver> stays
    assert [child.tag for child in disk.element] == ['driver', 'source', 'target', 'address']
    once = document.to_xml()
    disk.point_at_block('/dev/nova-vg/u_disk')
    assert document.to_xml() == once
