# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Atomic replacement when something goes wrong: no temporary is ever left behind, no name reused."""

from __future__ import annotations

import os

import pytest

from ansible_collections.storagepools.libvirt.plugins.module_utils._core import atomic_file
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.atomic_file import (
    flush,
    symlink_atomically,
    write_atomically,
)


def test_a_write_that_fails_half_way_leaves_the_old_file_and_no_temporary(tmp_path):
    path = str(tmp_path / 'disk.info')
    write_atomically(path, b'old')
    with pytest.raises(TypeError):
        write_atomically(path, 'text, not bytes')  # fails inside the write, after the temporary was made
    assert os.listdir(str(tmp_path)) == ['disk.info'] and open(path, 'rb').read() == b'old'


def test_a_rename_that_fails_removes_its_temporary(tmp_path):
    occupied = tmp_path / 'disk'
    occupied.mkdir()
    (occupied / 'content').write_bytes(b'')  # a non-empty directory cannot be renamed over
    with pytest.raises(OSError):
        symlink_atomically('/pool/uuid_disk', str(occupied))
    assert os.listdir(str(tmp_path)) == ['disk'] and occupied.is_dir()


def test_a_name_taken_at_every_attempt_is_never_reused(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic_file.secrets, 'token_hex', lambda count: 'taken')
    planted = tmp_path / ('.disk.info.taken' + atomic_file.SUFFIX)  # not a leftover's pattern: never removed
    planted.write_bytes(b'planted')
    with pytest.raises(FileExistsError, match='no free temporary name next to disk.info after 64 attempts'):
        write_atomically(str(tmp_path / 'disk.info'), b'data')
    assert planted.read_bytes() == b'planted' and not (tmp_path / 'disk.info').exists()


def test_a_missing_owner_like_keeps_the_writers_own_owner(tmp_path):
    path = str(tmp_path / 'new')
    write_atomically(path, b'data', mode=0o640, owner_like=str(tmp_path / 'not-there'))
    info = os.stat(path)
    assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (os.geteuid(), os.getegid(), 0o640)


def test_flush_takes_files_and_directories_and_refuses_a_missing_path(tmp_path):
    path = tmp_path / 'image'
    path.write_bytes(b'written by another process')
    flush(str(path))
    flush(str(tmp_path))
    with pytest.raises(FileNotFoundError):
        flush(str(tmp_path / 'missing'))
