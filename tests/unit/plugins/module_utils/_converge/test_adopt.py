# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What may pass for the placeholder a killed adoption registered (and so be overwritten by a rerun)."""

from __future__ import annotations

import os

import pytest

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.records import XATTR_NAME
from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.file import empty_placeholder

SIZE = 8 * 1024 * 1024


def sparse(path, size=SIZE):
    with open(path, 'wb') as handle:
        handle.truncate(size)
    return path


def test_the_empty_file_a_register_step_makes_is_the_placeholder(tmp_path):
    assert empty_placeholder(sparse(str(tmp_path / 'u_disk')), SIZE)
    assert empty_placeholder(sparse(str(tmp_path / 'empty'), 0), SIZE)


@pytest.mark.parametrize('change', ['data', 'other size', 'record', 'symlink', 'directory'])
def test_anything_else_is_not(tmp_path, change):
    path = str(tmp_path / 'u_disk')
    if change == 'data':
        sparse(path)
        with open(path, 'r+b') as handle:
            handle.seek(SIZE // 2)
            handle.write(b'other data')
    elif change == 'other size':
        sparse(path, SIZE + 512)
    elif change == 'record':
        sparse(path)
        os.setxattr(path, XATTR_NAME, b'{"source": {"path": "/elsewhere"}}')
    elif change == 'symlink':
        os.symlink(sparse(str(tmp_path / 'target')), path)
    else:
        os.mkdir(path)
    assert not empty_placeholder(path, SIZE)
