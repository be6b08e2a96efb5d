# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""image_inspect.OpenedImage: the file inspected is the file every tool reads, whatever the path becomes."""

from __future__ import annotations

import os
import subprocess

import pytest

from ansible_collections.storagepools.libvirt.plugins.module_utils._images import copy as data_copy
from ansible_collections.storagepools.libvirt.plugins.module_utils._images.inspect import ImageRefused, OpenedImage

QCOW2_NAMING_A_BACKING_FILE = b'QFI\xfb\x00\x00\x00\x03'  # a qcow2 signature is enough to be refused as raw


def test_a_file_swapped_in_after_the_check_is_never_read(tmp_path):
    image = tmp_path / 'image.raw'
    image.write_bytes(b'checked guest data' * 100)
    secret = tmp_path / 'secret'
    secret.write_bytes(QCOW2_NAMING_A_BACKING_FILE + b'host secret')
    opened = OpenedImage(str(image))
    assert opened.inspect('raw').file_size == 1800
    image.unlink()
    image.symlink_to(secret)  # what a user owning the directory can do between our check and our use
    copy = tmp_path / 'copy'
    copy.write_bytes(b'')
    data_copy.copy_file(opened.fd_path, str(copy))
    assert copy.read_bytes() == b'checked guest data' * 100
    child = subprocess.run(['cat', opened.fd_path], pass_fds=opened.fds, capture_output=True, check=True)
    assert child.stdout == b'checked guest data' * 100
    opened.close()


def test_a_symlink_is_refused_not_followed(tmp_path):
    target = tmp_path / 'target.raw'
    target.write_bytes(b'data')
    link = tmp_path / 'link.raw'
    link.symlink_to(target)
    with pytest.raises(ImageRefused, match='^source.path: .* is a symbolic link'):
        OpenedImage(str(link))


@pytest.mark.parametrize('kind', ['fifo', 'directory', 'missing', 'under-a-file'])
def test_anything_but_a_regular_file_is_refused_without_hanging(tmp_path, kind):
    path = tmp_path / kind
    if kind == 'fifo':
        os.mkfifo(path)  # opening it for reading would block without O_NONBLOCK
    elif kind == 'directory':
        path.mkdir()
    elif kind == 'under-a-file':  # a path through a regular file: ENOTDIR, neither a link nor missing
        path.write_bytes(b'')
        path = path / 'image'
    with pytest.raises(ImageRefused, match='^source.path: '):
        OpenedImage(str(path))


def test_the_bytes_are_inspected_as_declared(tmp_path):
    image = tmp_path / 'image.raw'
    image.write_bytes(QCOW2_NAMING_A_BACKING_FILE.ljust(4096, b'\x00'))
    opened = OpenedImage(str(image))
    with pytest.raises(ImageRefused, match='^source.format: .* declared raw'):
        opened.inspect('raw')
    with pytest.raises(ImageRefused, match='^source.format: '):
        opened.inspect('vdi')
    opened.close()


def test_a_descriptor_the_caller_holds_is_used_not_the_path(tmp_path):
    """nova_image_cache hands over the base it opened and recorded: the clone reads that file, even when the
    name was swapped for a symlink since."""
    image = tmp_path / 'base'
    image.write_bytes(b'the base we recorded')
    fd = os.open(str(image), os.O_RDONLY | os.O_NOFOLLOW)
    secret = tmp_path / 'secret'
    secret.write_bytes(b'host secret')
    image.unlink()
    image.symlink_to(secret)
    opened = OpenedImage(str(image), fd=fd)
    assert opened.inspect('raw').file_size == len(b'the base we recorded')
    child = subprocess.run(['cat', opened.fd_path], pass_fds=opened.fds, capture_output=True, check=True)
    assert child.stdout == b'the base we recorded'
    opened.close()
    os.fstat(fd)  # the caller's own descriptor is still open: it was duplicated, not taken over
    os.close(fd)
