# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Volume documents and names."""

from __future__ import annotations

import pytest

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.naming import instance_volume_name
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.volume import VolumeDefinition


def test_format_then_parse_is_symmetric_and_formats_explicit():
    definition = VolumeDefinition('u_disk', 1 << 30, 'qcow2', backing_path='/base/abc', backing_format='raw')
    xml = definition.to_xml()
    assert "<format type=\"qcow2\"/>" in xml and '<compat>1.1</compat>' in xml
    assert '<backingStore>' in xml and "<format type=\"raw\"/>" in xml
    parsed = VolumeDefinition.from_xml(xml)
    fields = ('name', 'capacity', 'allocation', 'format', 'path', 'backing_path', 'backing_format', 'compat')
    assert [getattr(parsed, field) for field in fields] == [getattr(definition, field) for field in fields]
    assert [getattr(parsed, field) for field in fields] == ['u_disk', 1 << 30, 0, 'qcow2', None, '/base/abc', 'raw',
                                                            '1.1']
    assert parsed.to_xml() == xml


def test_a_volume_libvirt_wrote_is_read_and_kept_whole():
    # as `virsh vol-dumpxml` writes a qcow2 overlay of a dir pool
    dumped = '''<volume type='file'>
  <name>u_disk</name>
  <key>/var/lib/nova/pool/u_disk</key>
  <capacity unit='bytes'>1073741824</capacity>
  <allocation unit='bytes'>200704</allocation>
  <physical unit='bytes'>196624</physical>
  <target>
    <path>/var/lib/nova/pool/u_disk</path>
    <format type='qcow2'/>
    <permissions>
      <mode>0600</mode>
      <owner>0</owner>
      <group>0</group>
    </permissions>
    <compat>1.1</compat>
    <clusterSize unit='B'>65536</clusterSize>
  </target>
  <backingStore>
    <path>/var/lib/nova/instances/_base/abc</path>
    <format type='raw'/>
  </backingStore>
</volume>
'''
    parsed = VolumeDefinition.from_xml(dumped)
    assert (parsed.name, parsed.capacity, parsed.allocation, parsed.format, parsed.path) == (
        'u_disk', 1 << 30, 200704, 'qcow2', '/var/lib/nova/pool/u_disk')
    assert (parsed.backing_path, parsed.backing_format) == ('/var/lib/nova/instances/_base/abc', 'raw')
    again = VolumeDefinition.from_xml(parsed.to_xml())
    assert again.same_as(parsed) and '<clusterSize unit="B">65536</clusterSize>' in again.to_xml()


def test_instance_volume_names():
    assert instance_volume_name('6F1D2C3B-4A5E-4F60-8A7B-9C0D1E2F3A4B', 'disk.local') == \
        '6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b_disk.local'


@pytest.mark.parametrize('instance_uuid, disk, option', [
    ('not-a-uuid', 'disk', 'instance_uuid'),
    ('6f1d2c3b4a5e4f608a7b9c0d1e2f3a4b', 'disk', 'instance_uuid'),
    ('{6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b}', 'disk', 'instance_uuid'),
    ('6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b', '../disk', 'disk'),
    ('6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b', '.disk', 'disk'),
    ('6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b', '', 'disk'),
])
def test_bad_instance_names_name_the_option(instance_uuid, disk, option):
    with pytest.raises(StoragePoolsError) as err:
        instance_volume_name(instance_uuid, disk)
    assert err.value.msg.startswith(option + ': ')


def test_a_parent_without_a_path_keeps_its_format_beside_the_document():
    # an rbd clone's parent is a snapshot: no <backingStore> path, but the result still names its format
    clone = VolumeDefinition('child', 1 << 30, 'raw', backing_path=None, backing_format='raw')
    assert clone.backing_format == 'raw' and clone.backing_path is None
    assert '<backingStore>' not in clone.to_xml()
