# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Space and time bounds: what a thin copy needs, the refusal's words, commands that do not return."""

from __future__ import annotations

import os

import pytest

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import space as limits
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError

MiB = 1024 * 1024


def test_a_sparse_file_needs_its_data_not_its_size(tmp_path):
    path = tmp_path / 'sparse.raw'
    with open(path, 'wb') as handle:
        handle.truncate(64 * MiB)
        handle.seek(32 * MiB)
        handle.write(os.urandom(MiB))
        os.fsync(handle.fileno())
    needed = limits.thin_file_need(str(path), 64 * MiB)
    assert MiB <= needed < 2 * MiB
    as_qcow2 = limits.thin_file_need(str(path), 64 * MiB, new_qcow2=True)
    assert needed < as_qcow2 < needed + MiB  # the new container's tables come on top
    assert limits.thin_file_need(None, 64 * MiB) == 64 * MiB  # nothing to measure: the virtual size


def test_a_block_device_has_no_allocated_bytes():
    assert limits.allocated_bytes('/dev/null') is None


def test_a_copy_that_does_not_fit_is_refused_with_needed_and_available():
    with pytest.raises(StoragePoolsError) as raised:
        limits.require_space(64 * MiB, 27 * MiB, "pool 'disks' (/srv/disks)", 'disks_pool', 'copying instance x')
    msg = raised.value.msg
    assert msg.startswith('disks_pool: copying instance x needs 64.0 MiB (67108864 bytes)'), msg
    assert "pool 'disks' (/srv/disks) has only 27.0 MiB (28311552 bytes) available" in msg


def test_the_margin_keeps_a_full_fit_out():
    limits.require_space(10 * MiB, 10 * MiB + limits.MARGIN, 'here', 'pool', 'x')
    with pytest.raises(StoragePoolsError):
        limits.require_space(10 * MiB, 10 * MiB + limits.MARGIN - 1, 'here', 'pool', 'x')
    limits.require_space(0, 0, 'here', 'pool', 'nothing to copy')


def test_a_directory_not_made_yet_is_on_the_filesystem_of_its_nearest_parent(tmp_path):
    planned = str(tmp_path / 'not' / 'yet' / 'disks')
    assert limits.existing_ancestor(planned) == str(tmp_path)
    assert limits.device_of(planned) == os.stat(str(tmp_path)).st_dev
    assert limits.free_in_directory(planned) > 0  # statvfs of tmp_path, not an error
