# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Records in LV tags: only characters LVM allows, split and joined back exactly."""

from __future__ import annotations

import re

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import logical as lvm
from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.logical import LogicalBackend

LVM_TAG = re.compile(r'^[A-Za-z0-9_+.\-/=!:#&]+$')  # lvm(8): the characters a tag may hold


def test_a_record_round_trips_through_tags_lvm_accepts():
    record = {'format': 'raw', 'virtual_size': 21474836480, 'method': 'lvm-import',
              'source': {'path': '/var/lib/nova/instances/6f1d2c3b/disk', 'note': 'ünïcode, spaces & "quotes"'},
              'backing': None}
    tags = lvm.encode_record(record)
    assert all(LVM_TAG.match(tag) and not tag.startswith('-') for tag in tags)
    assert lvm.decode_record(tags + ['other-tag']) == record


def test_a_long_record_is_split_and_joined_in_order():
    record = {'source': {'path': '/x' * 900}}
    tags = lvm.encode_record(record)
    assert len(tags) > 2 and all(len(tag) <= len(lvm.TAG_PREFIX) + 4 + lvm.TAG_PART for tag in tags)
    assert lvm.decode_record(list(reversed(tags))) == record  # lvs lists tags sorted, not in our order


def test_no_tags_or_garbage_is_no_record():
    assert lvm.decode_record([]) is None
    assert lvm.decode_record(['storagepools.libvirt.0=not base64 json!']) is None
    assert lvm.decode_record(['storagepools.libvirt.0=WzEsMl0=']) is None  # JSON, but not an object


def test_lv_names_double_underscores_as_novas_lvm_backend_does():
    assert LogicalBackend.volume_name('6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b', 'disk.local') == \
        '6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b_disk.local'
    assert LogicalBackend.volume_name('u', 'disk_eph0') == 'u_disk__eph0'
