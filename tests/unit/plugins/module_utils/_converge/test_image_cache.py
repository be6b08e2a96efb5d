# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which files of _base are Nova's bases, and where a base's format comes from (never a probe)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess

import pytest

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import records as metadata
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.image_cache import (
    ImageCache,
    overlay_backing_formats,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.image_cache_plan import (
    BASE_NAME_RE,
    plan_base,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._images.inspect import ImageInfo
from ansible_collections.storagepools.libvirt.plugins.module_utils._nova.layout import NovaConf

SHA1 = hashlib.sha1(b'image').hexdigest()


def test_nova_base_names():
    for name in (SHA1, SHA1 + '_20', 'swap_512', 'ephemeral_10_40d1321'):
        assert BASE_NAME_RE.match(name), name
    for name in (SHA1 + '.part', SHA1 + '.converted', 'swap_', 'ephemeral_10', '.hidden', 'notes.txt', SHA1[:-1]):
        assert not BASE_NAME_RE.match(name), name


def cache_with(tmp_path, conf_text, named, check_mode=True):
    conf = tmp_path / 'nova.conf'
    conf.write_text(conf_text)
    cache = ImageCache(None, 'qemu:///system', str(tmp_path), NovaConf(str(conf)), check_mode=check_mode)
    cache._named = named  # what the overlays' headers name, as overlay_backing_formats() reads it
    return cache


def base_file(tmp_path):
    """A real base file in _base (no record yet) and a descriptor of it."""
    (tmp_path / '_base').mkdir()
    base = tmp_path / '_base' / SHA1
    base.write_bytes(b'\0' * 4096)
    return str(base), os.open(str(base), os.O_RDONLY)


def test_the_format_comes_from_the_overlays_then_force_raw_images(tmp_path):
    base, fd = base_file(tmp_path)
    named = cache_with(tmp_path, '', {base: {'qcow2'}})
    assert named.declared_format(base, fd) == ('qcow2', 'overlay headers')
    assert named.declared_format(base, fd) == ('qcow2', 'overlay headers')  # asking twice reads the same
    assert cache_with(tmp_path, '', {}).declared_format(base, fd) == ('raw', 'force_raw_images')
    unknown = cache_with(tmp_path, '[DEFAULT]\nforce_raw_images = False\n', {}).declared_format(base, fd)
    assert unknown[0] is None and 'force_raw_images=False' in unknown[1]
    disagree = cache_with(tmp_path, '', {base: {'raw', 'qcow2'}}).declared_format(base, fd)
    assert disagree[0] is None and 'disagree' in disagree[1]
    os.close(fd)


def test_a_record_wins_over_everything(tmp_path):
    base, fd = base_file(tmp_path)
    metadata.write_file_metadata(fd, metadata.make_record('qcow2', 4096, {'path': base}))
    assert cache_with(tmp_path, '', {base: {'raw'}}).declared_format(base, fd) == ('qcow2', 'record')
    os.close(fd)


def test_a_record_its_owner_can_write_counts_for_nothing(tmp_path):
    """The owner of a base (nova) can set user.* attributes, never trusted.* ones: only those are records."""
    base, fd = base_file(tmp_path)
    os.setxattr(fd, 'user.storagepools.libvirt', json.dumps({'format': 'qcow2'}).encode())
    assert cache_with(tmp_path, '', {}).declared_format(base, fd) == ('raw', 'force_raw_images')
    os.close(fd)


def test_a_base_without_record_plans_its_record_and_one_with_plans_nothing(tmp_path):
    """plan_base is a function of what was observed: the format, where it came from, the inspected size."""
    path, fd = base_file(tmp_path)
    info = ImageInfo('raw', 4096, 4096)
    try:
        assert not plan_base(SHA1, path, fd, 'raw', 'record', info)
        plan = plan_base(SHA1, path, fd, 'raw', 'force_raw_images', info)
        assert [step['action'] for step in plan.describe()] == ['record']
        assert 'force_raw_images' in plan.describe()[0]['detail']
        plan.apply(check_mode=True)
        assert metadata.read_file_metadata(fd) is None  # check mode writes nothing
        plan.apply()
        recorded = metadata.read_file_metadata(fd)
        assert recorded['format'] == 'raw' and recorded['source'] == {'path': path, 'nova_base': SHA1}
        assert recorded['method'] == 'in-place'
    finally:
        os.close(fd)


def test_check_mode_returns_the_plan_a_real_run_applies(tmp_path):
    path, fd = base_file(tmp_path)
    os.close(fd)
    results = {}
    for check_mode in (True, False):
        cache = cache_with(tmp_path, '', {}, check_mode=check_mode)  # no overlay names it: force_raw_images
        try:
            results[check_mode] = cache.ensure(SHA1)
        finally:
            cache.close()
    assert results[True] == results[False]
    assert results[True]['result'] == 'changed' and [step['action'] for step in results[True]['actions']] == ['record']
    cache = cache_with(tmp_path, '', {}, check_mode=False)
    try:
        rerun = cache.ensure(SHA1)
    finally:
        cache.close()
    assert rerun['result'] == 'unchanged' and rerun['actions'] == [] and rerun['format'] == 'raw'
    assert metadata.read_file_metadata(path)['virtual_size'] == 4096


UUID = '6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b'


def overlay_instance(tmp_path, base, backing_format='raw', listed_format='qcow2'):
    """An instance directory with a qcow2 overlay ``disk`` (made by qemu-img) on ``base``, listed in disk.info."""
    directory = tmp_path / UUID
    directory.mkdir()
    disk = directory / 'disk'
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-u', '-b', '../_base/%s' % os.path.basename(base),
                    '-F', backing_format, str(disk), '4096'], check=True)  # -u: the base is not opened
    (directory / 'disk.info').write_text(json.dumps({str(disk): listed_format}))


def test_the_overlays_name_their_bases_format_through_their_headers(tmp_path):
    base, fd = base_file(tmp_path)
    os.close(fd)
    overlay_instance(tmp_path, base, backing_format='qcow2')
    (tmp_path / 'not-an-instance').mkdir()
    assert overlay_backing_formats(str(tmp_path)) == {base: {'qcow2'}}
    cache = cache_with(tmp_path, '', None)
    try:
        result = cache.ensure(SHA1)  # a qcow2 format for a base of zeros: the bytes refute it
    finally:
        cache.close()
    assert result['result'] == 'skipped' and result['reason'].endswith('(format from overlay headers)')


def test_only_qcow2_overlays_of_disk_info_are_read(tmp_path):
    base, fd = base_file(tmp_path)
    os.close(fd)
    overlay_instance(tmp_path, base, listed_format='raw')
    assert overlay_backing_formats(str(tmp_path)) == {}


def test_what_is_not_a_regular_base_file_is_skipped_and_never_followed(tmp_path):
    base, fd = base_file(tmp_path)
    os.close(fd)
    (tmp_path / '_base' / 'swap_512').symlink_to(base)
    (tmp_path / '_base' / (SHA1 + '.part')).write_bytes(b'')
    (tmp_path / '_base' / 'ephemeral_10_40d1321').mkdir()
    cache = cache_with(tmp_path, '', {})
    try:
        assert cache.bases() == [SHA1, SHA1 + '.part', 'swap_512']
        link = cache.ensure('swap_512')
        part = cache.ensure(SHA1 + '.part')
        directory = cache.ensure('ephemeral_10_40d1321')
    finally:
        cache.close()
    assert link['result'] == 'skipped' and link['reason'].endswith('/_base/swap_512 is a symlink; never followed')
    assert part['reason'] == 'not a name Nova gives a base (in flight or foreign)'
    assert directory['reason'].endswith('is not a regular file; never followed')


def test_a_base_whose_format_is_unknown_is_left_alone(tmp_path):
    base_file(tmp_path)
    cache = cache_with(tmp_path, '[DEFAULT]\nforce_raw_images = False\n', {}, check_mode=False)
    try:
        result = cache.ensure(SHA1)
    finally:
        cache.close()
    assert result['result'] == 'skipped' and 'force_raw_images=False' in result['reason']
    assert metadata.read_file_metadata(str(tmp_path / '_base' / SHA1)) is None


def test_an_image_cache_without_base_directory_names_instances_path(tmp_path):
    cache = cache_with(tmp_path, '', {})
    try:
        with pytest.raises(StoragePoolsError, match='^instances_path: .*/_base cannot be opened'):
            cache.bases()
    finally:
        cache.close()
