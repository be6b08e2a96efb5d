# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A cutover revert's copy back must fit on the instance directory's filesystem (statvfs of the directory as
opened), before its first byte."""

from __future__ import annotations

import os

import pytest
from test_revert_plan import POOL, UUID, observe_cutover

from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.revert import CutoverReverter
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.revert_plan import plan_cutover_revert
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._nova import layout as nova_layout


@pytest.fixture
def reverter_and_files(tmp_path):
    instances = tmp_path / 'instances'
    (instances / UUID).mkdir(parents=True)
    reverter = CutoverReverter(None, str(instances), None, None, str(tmp_path / 'state'),
                               nova_layout.NovaConf(str(tmp_path / 'nova.conf')), check_mode=True)
    with nova_layout.InstanceFiles(str(instances), UUID) as files:
        yield reverter, files


def finalized(files, virtual_size):
    observed = observe_cutover('logical', legacy_is_file=False, equal_bytes=False, virtual_size=virtual_size)
    observed.files = files
    return observed, plan_cutover_revert(observed, POOL, force=True)


def test_copies_back_that_do_not_fit_are_refused_naming_instances_path(reverter_and_files):
    reverter, files = reverter_and_files
    info = os.statvfs(files.path)
    observed, plan = finalized(files, info.f_bavail * info.f_frsize)  # two disks of all that is free
    with pytest.raises(StoragePoolsError, match=r'^instances_path: copying instance .* back \(2 disks\) needs .*'
                                                r'nothing was written'):
        reverter.require_space(observed, plan)


def test_copies_back_that_fit_pass(reverter_and_files):
    reverter, files = reverter_and_files
    observed, plan = finalized(files, 1024 * 1024)
    reverter.require_space(observed, plan)
