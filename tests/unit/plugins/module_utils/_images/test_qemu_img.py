# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The qemu-img command lines (every format explicit) and their runs on small real images in tmp_path."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._images import qemu_img
from ansible_collections.storagepools.libvirt.plugins.module_utils._images.inspect import read_qcow2_overlay

MiB = 1024 * 1024


def raw_file(path, data=b'', size=MiB):
    path.write_bytes(data.ljust(size, b'\x00'))
    return str(path)


def qcow2_file(path, size=MiB):
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', str(path), str(size)], check=True)
    return str(path)


def test_convert_writes_into_the_existing_target_with_both_formats_explicit():
    assert qemu_img.convert_argv('/src', 'qcow2', '/dev/vg/lv', 'raw') == [
        'qemu-img', 'convert', '-n', '-f', 'qcow2', '-O', 'raw', '/src', '/dev/vg/lv']
    assert qemu_img.convert_argv('/src', 'raw', 'rbd:vms/image', 'raw', target_is_zero=True) == [
        'qemu-img', 'convert', '-n', '--target-is-zero', '-f', 'raw', '-O', 'raw', '/src', 'rbd:vms/image']


def test_compare_names_the_format_of_each_side():
    assert qemu_img.compare_argv('/a', 'qcow2', '/b', 'raw') == [
        'qemu-img', 'compare', '-q', '-f', 'qcow2', '-F', 'raw', '/a', '/b']


def test_a_pinned_image_reaches_the_file_and_its_base_only_through_our_descriptors():
    filename, fds = qemu_img.pinned_image(7, 'qcow2', backing=(9, 'raw'))
    assert filename.startswith('json:') and fds == (7, 9)
    assert json.loads(filename[len('json:'):]) == {
        'driver': 'qcow2', 'file': {'driver': 'file', 'filename': '/proc/self/fd/7'},
        'backing': {'driver': 'raw', 'file': {'driver': 'file', 'filename': '/proc/self/fd/9'}},
    }
    filename, fds = qemu_img.pinned_image(3, 'raw')
    assert fds == (3,) and 'backing' not in json.loads(filename[len('json:'):])


def test_convert_copies_the_guest_view_and_compare_tells_equal_from_different(tmp_path):
    source = raw_file(tmp_path / 'source.raw', b'guest data')
    target = qcow2_file(tmp_path / 'target.qcow2')
    qemu_img.convert(source, 'raw', target, 'qcow2', 'source.path', size=MiB)
    assert qemu_img.same_content(source, 'raw', target, 'qcow2', 'verify')
    other = raw_file(tmp_path / 'other.raw', b'other data')
    assert qemu_img.same_content(other, 'raw', target, 'qcow2', 'verify') is False


def test_a_pinned_image_is_read_through_the_descriptor_passed_to_qemu_img(tmp_path):
    source = raw_file(tmp_path / 'source.raw', b'pinned')
    fd = os.open(source, os.O_RDONLY)
    try:
        os.rename(source, str(tmp_path / 'moved.raw'))  # the name is gone; the descriptor still reads the file
        filename, fds = qemu_img.pinned_image(fd, 'raw')
        assert qemu_img.same_content(filename, 'raw', str(tmp_path / 'moved.raw'), 'raw', 'verify', pass_fds=fds)
    finally:
        os.close(fd)


def test_a_failed_run_names_the_option_and_keeps_qemu_imgs_own_words(tmp_path):
    missing = str(tmp_path / 'missing.raw')
    with pytest.raises(StoragePoolsError) as caught:
        qemu_img.run(['qemu-img', 'info', '-f', 'raw', missing], 'source.path')
    assert caught.value.msg == 'source.path: qemu-img info failed'
    assert missing in caught.value.libvirt_error
    with pytest.raises(StoragePoolsError) as caught:
        qemu_img.same_content(missing, 'raw', missing, 'raw', 'verify')
    assert caught.value.msg == 'verify: qemu-img compare failed' and missing in caught.value.libvirt_error


def test_set_backing_format_writes_only_the_overlay_header(tmp_path):
    base = raw_file(tmp_path / 'base.raw', b'base', size=2 * MiB)
    overlay = qcow2_file(tmp_path / 'overlay.qcow2', size=2 * MiB)
    before = os.stat(base)
    qemu_img.set_backing_format(overlay, base, 'raw', 'cache_pool')
    assert read_qcow2_overlay(overlay) == (2 * MiB, base, 'raw')
    after = os.stat(base)
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def test_the_virtual_size_comes_from_the_qcow2_header_or_the_raw_file_size(tmp_path):
    overlay = qcow2_file(tmp_path / 'disk.qcow2', size=8 * MiB)
    raw = raw_file(tmp_path / 'disk.raw', size=3 * MiB)
    assert qemu_img.virtual_size(overlay, 'qcow2') == 8 * MiB
    assert qemu_img.virtual_size(raw, 'raw') == 3 * MiB
    for path, disk_format, size in ((overlay, 'qcow2', 8 * MiB), (raw, 'raw', 3 * MiB)):
        fd = os.open(path, os.O_RDONLY)
        try:
            assert qemu_img.virtual_size('named only in messages', disk_format, fd=fd) == size
        finally:
            os.close(fd)


def test_a_convert_reports_qemu_imgs_own_progress_as_bytes_of_the_virtual_size(tmp_path):
    size = 64 * MiB
    source = qcow2_file(tmp_path / 'source.qcow2', size)
    subprocess.run(['qemu-io', '-f', 'qcow2', '-c', 'write -P 0x5a 0 48M', source], check=True, capture_output=True)
    target = raw_file(tmp_path / 'target.raw', size=size)
    done = []
    qemu_img.convert(source, 'qcow2', target, 'raw', 'source.path', size=size, progress=done.append)
    assert qemu_img.same_content(source, 'qcow2', target, 'raw', 'verify')
    assert done == sorted(done) and done[-1] == size, done
    assert any(0 < value < size for value in done), done
    with pytest.raises(StoragePoolsError) as failed:  # a failure names qemu-img's words, not its meter
        qemu_img.convert(str(tmp_path / 'missing'), 'raw', target, 'raw', 'source.path', size=size,
                         progress=done.append)
    assert 'missing' in failed.value.libvirt_error and '100%' not in failed.value.libvirt_error


def written(tmp_path, source, size, target_format, backing=None):
    """write_file of ``source`` into a fresh file (as a copy back makes it): its path."""
    path = tmp_path / ('written.%s' % target_format)
    fd = os.open(str(path), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        qemu_img.write_file(source, size, fd, target_format, 'copy_back', backing=backing)
    finally:
        os.close(fd)
    return str(path)


@pytest.mark.parametrize('target_format', ['raw', 'qcow2'])
def test_write_file_writes_a_raw_images_guest_view_as_raw_or_a_standalone_qcow2(tmp_path, target_format):
    image = raw_file(tmp_path / 'image.raw', os.urandom(64 * 1024), size=4 * MiB)
    path = written(tmp_path, image, 4 * MiB, target_format)
    assert qemu_img.same_content(path, target_format, image, 'raw', 'verify')
    if target_format == 'qcow2':
        assert read_qcow2_overlay(path) == (4 * MiB, None, None)
    assert os.stat(path).st_blocks * 512 < 2 * MiB  # holes stay holes


def test_write_file_recreates_an_overlay_holding_only_what_differs_from_its_base(tmp_path):
    base = raw_file(tmp_path / 'base', os.urandom(2 * MiB), size=2 * MiB)
    overlay = str(tmp_path / 'overlay')
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', base, '-F', 'raw', overlay, str(4 * MiB)],
                   check=True)
    subprocess.run(['qemu-io', '-f', 'qcow2', '-c', 'write -P 0x66 1M 64k', '-c', 'write -P 0x77 3M 64k', overlay],
                   check=True, capture_output=True)
    image = str(tmp_path / 'image.raw')  # the guest's view, as a cutover imported it
    subprocess.run(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', overlay, image], check=True)
    base_fd = os.open(base, os.O_RDONLY)
    try:
        path = written(tmp_path, image, 4 * MiB, 'qcow2', backing=(base_fd, '/var/lib/nova/instances/_base/x', 'raw'))
        assert read_qcow2_overlay(path) == (4 * MiB, '/var/lib/nova/instances/_base/x', 'raw')  # the path, not our fd
        pinned, fds = qemu_img.pinned_image(os.open(path, os.O_RDONLY), 'qcow2', backing=(base_fd, 'raw'))
        assert qemu_img.same_content(pinned, 'qcow2', image, 'raw', 'verify', pass_fds=fds)
        os.close(fds[0])
    finally:
        os.close(base_fd)
    opened = {'driver': 'qcow2', 'file': {'driver': 'file', 'filename': path},
              'backing': {'driver': 'raw', 'file': {'driver': 'file', 'filename': base}}}
    allocated = json.loads(subprocess.run(['qemu-img', 'map', '--output=json', 'json:' + json.dumps(opened)],
                                          capture_output=True, text=True, check=True).stdout)
    assert sum(extent['length'] for extent in allocated if extent['depth'] == 0 and extent['data']) == 2 * 64 * 1024


def test_write_file_takes_only_the_first_bytes_and_compare_sees_what_is_past_them(tmp_path):
    """An LV of whole extents is larger than the legacy disk: the copy is the disk's size, and compare tells
    whether the guest wrote past it."""
    image = raw_file(tmp_path / 'image.raw', b'guest', size=4 * MiB)
    path = written(tmp_path, image, 2 * MiB, 'raw')
    assert os.stat(path).st_size == 2 * MiB and qemu_img.same_content(path, 'raw', image, 'raw', 'verify')
    with open(image, 'r+b') as handle:
        handle.seek(3 * MiB)
        handle.write(b'past the end')
    assert not qemu_img.same_content(path, 'raw', image, 'raw', 'verify')
