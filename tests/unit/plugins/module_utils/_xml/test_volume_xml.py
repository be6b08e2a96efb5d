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
    assert vars(parsed) == vars(definition)


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
