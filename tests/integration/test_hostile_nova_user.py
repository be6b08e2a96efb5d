# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The nova user (owner of instances/<uuid>/, _base and the legacy files) and a hostile image against
legacy_disk_adopt and nova_image_cache: symlinks planted or swapped in between our check and our use, a
base with a backing file of its own, records written by a file's owner. Each attack ends with the canary
(a stand-in for a root-only host file) untouched."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess

import pytest
from canary import Canary
from conftest import run_module, start_module, wait_for_step
from nova_host import guest_view_sha256
from test_legacy_disk_adopt import XML_FLAGS, adopt, host  # noqa: F401 pylint: disable=unused-import

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.file import (
    XATTR_NAME,
    read_file_metadata,
)


def swap_for_symlink(path, target):
    """What the nova user can do to any name in its directories: replace it atomically with a symlink."""
    temporary = path + '.evil'
    os.symlink(target, temporary)
    os.rename(temporary, path)


@pytest.mark.parametrize('keep_original', [True, False])
def test_a_disk_swapped_for_a_symlink_after_the_check_is_never_followed(conn, host, workdir, keep_original):
    """Between the check and the link the nova user renames the disk aside (or deletes it) and plants a
    symlink to the canary under its name: we adopt the file we checked (or nothing), never the canary."""
    canary = Canary(os.path.join(workdir, 'shadow'))
    instance = host.instance()
    before = host.checksums(instance)
    disk = host.disk_paths(instance)['disk']
    args = dict(instances_path=host.instances, disks_pool=host.disks_pool, cache_pool=host.cache_pool,
                state_dir=host.state_dir, nova_conf=host.nova_conf)
    paused = start_module('legacy_disk_adopt', args, {'STORAGEPOOLS_PAUSE_AT': 'link:1'})
    wait_for_step(host, instance, 'link')
    if keep_original:
        os.rename(disk, disk + '.aside')
    swap_for_symlink(disk, canary.path)
    out, _err = paused.communicate(timeout=120)
    outcome = json.loads(out)['instances'][instance]
    volume = os.path.join(host.disks_dir, '%s_disk' % instance)
    if keep_original:
        assert outcome['result'] == 'adopted', outcome
        assert not os.path.islink(volume) and os.path.samefile(volume, disk + '.aside')
        assert guest_view_sha256(volume, 'qcow2') == before['disk']  # the inode we checked, not the canary
        assert os.readlink(disk) == volume
    else:
        assert outcome['result'] == 'failed' and 'deleted or replaced' in outcome['reason'], outcome
        assert not os.path.lexists(volume)  # the placeholder this run made is gone
        assert os.readlink(disk) == canary.path  # the nova user's own link, left as it is
    canary.assert_untouched()


def test_a_base_that_is_a_symlink_is_refused(conn, host, workdir):
    canary = Canary(os.path.join(workdir, 'shadow'))
    instance = host.instance()
    swap_for_symlink(host.base, canary.path)
    xml = conn.lookupByUUIDString(instance).XMLDesc(XML_FLAGS)
    result = adopt(host)
    outcome = result['instances'][instance]
    assert outcome['result'] == 'skipped' and host.base in outcome['reason'] and 'symlink' in outcome['reason'], \
        outcome
    assert conn.lookupByUUIDString(instance).XMLDesc(XML_FLAGS) == xml
    assert os.listdir(host.disks_dir) == []
    canary.assert_untouched()


def test_a_base_with_a_backing_file_of_its_own_is_refused(conn, host, workdir):
    """force_raw_images=False: Nova keeps qcow2 bases, and an image may be a qcow2 naming any host file."""
    canary = Canary(os.path.join(workdir, 'shadow'))
    with open(host.nova_conf, 'a') as handle:
        handle.write('[DEFAULT]\nforce_raw_images = False\n')
    base = os.path.join(host.base_dir, hashlib.sha1(b'chained image').hexdigest())
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', canary.path, '-F', 'raw', base, '16M'],
                   check=True)
    canary.before = canary.state()  # qemu-img create read its size
    instance = host.instance(base=base, backing_format='qcow2')
    result = adopt(host)
    outcome = result['instances'][instance]
    assert outcome['result'] == 'skipped', outcome
    assert base in outcome['reason'] and 'backing file' in outcome['reason'], outcome
    assert os.listdir(host.disks_dir) == []
    canary.assert_untouched()


def test_a_record_the_owner_of_a_volume_can_write_decides_nothing(conn, host, workdir):
    """After adoption nova (or libvirt-qemu while the guest runs) owns the volume file and can set its
    user.* attributes; a rerun must not put a backing file named there into the domain."""
    canary = Canary(os.path.join(workdir, 'shadow'))
    instance = host.instance()
    assert adopt(host)['instances'][instance]['result'] == 'adopted'
    volume = os.path.join(host.disks_dir, '%s_disk' % instance)
    forged = dict(read_file_metadata(volume))
    forged['backing'] = dict(forged['backing'], path=canary.path)
    os.setxattr(volume, 'user.storagepools.libvirt', json.dumps(forged).encode())
    xml = conn.lookupByUUIDString(instance).XMLDesc(XML_FLAGS)
    assert adopt(host)['instances'][instance]['result'] == 'already_adopted'
    assert conn.lookupByUUIDString(instance).XMLDesc(XML_FLAGS) == xml
    # a root-only record that disagrees with the volume's own header is refused too, never applied
    os.setxattr(volume, XATTR_NAME, json.dumps(forged).encode())
    outcome = adopt(host)['instances'][instance]
    assert outcome['result'] == 'skipped' and 'refusing' in outcome['reason'], outcome
    assert conn.lookupByUUIDString(instance).XMLDesc(XML_FLAGS) == xml
    canary.assert_untouched()


def test_an_instance_already_in_another_pool_says_so(conn, host, pools, workdir):
    instance = host.instance()
    assert adopt(host)['instances'][instance]['result'] == 'adopted'
    other = pools.new()
    made = run_module('virt_pool_ensure', dict(name=other, type='dir', target=os.path.join(workdir, 'other'),
                                               autostart=False))
    assert not made.get('failed'), made
    outcome = adopt(host, disks_pool=other)['instances'][instance]
    assert outcome['result'] == 'skipped', outcome
    assert host.disks_dir in outcome['reason'] and other in outcome['reason'], outcome


def test_the_image_cache_never_follows_a_symlink_in_base(conn, host, workdir):
    canary = Canary(os.path.join(workdir, 'shadow'))
    planted = os.path.join(host.base_dir, hashlib.sha1(b'planted').hexdigest())
    os.symlink(canary.path, planted)
    cache_pool = host.cache_pool
    result = run_module('nova_image_cache', dict(instances_path=host.instances, cache_pool=cache_pool,
                                                 nova_conf=host.nova_conf))
    assert not result.get('failed'), result
    outcome = result['images'][os.path.basename(planted)]
    assert outcome['result'] == 'skipped' and 'symlink' in outcome['reason'], outcome
    assert result['images'][os.path.basename(host.base)]['result'] == 'changed'
    assert os.listxattr(planted, follow_symlinks=False) == []
    canary.assert_untouched()


@pytest.mark.parametrize('name', ['disk.info', 'disk.local'])
def test_planted_symlinks_in_the_instance_directory_are_refused(conn, host, workdir, name):
    canary = Canary(os.path.join(workdir, 'shadow'), content=b'{}')
    instance = host.instance()
    path = os.path.join(host.instances, instance, name)
    swap_for_symlink(path, canary.path)
    outcome = adopt(host)['instances'][instance]
    assert outcome['result'] == 'skipped' and 'symlink' in outcome['reason'], outcome
    assert os.listdir(host.disks_dir) == []
    canary.assert_untouched()


def test_an_instance_directory_that_is_a_symlink_is_refused(conn, host, workdir):
    instance = host.instance()
    directory = os.path.join(host.instances, instance)
    elsewhere = os.path.join(workdir, 'elsewhere')
    os.rename(directory, elsewhere)
    os.symlink(elsewhere, directory)
    outcome = adopt(host)['instances'][instance]
    assert outcome['result'] == 'skipped' and 'symlink' in outcome['reason'], outcome
    assert os.listdir(host.disks_dir) == []
    assert not os.path.islink(os.path.join(elsewhere, 'disk'))
