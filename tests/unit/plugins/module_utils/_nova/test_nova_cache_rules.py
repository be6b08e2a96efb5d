# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Nova's image cache rules (_nova/image_cache.py); tests/integration/test_nova_image_cache_rules.py checks
them against Nova's own code."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._nova import image_cache as rules
from ansible_collections.storagepools.libvirt.plugins.module_utils._nova.layout import NovaConf
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.domain import DomainDocument

DATA = os.path.join(os.path.dirname(os.path.dirname(__file__)), '_converge', 'data')
IMAGE = '0e5a6b7c-8d9e-4f01-a2b3-c4d5e6f70819'
FP = rules.cache_fname(IMAGE)


def test_cache_fname_is_the_sha1_of_the_image_id():
    assert rules.cache_fname('img-a') == 'be8b5c5405159aa625444a97f723c396b3c604b2'
    assert len(FP) == 40


@pytest.mark.parametrize('name, kind', [
    (FP, rules.ORIGINAL), (FP + '_10', rules.RESIZED), (FP + '_sm', rules.RESIZED), ('swap_512', rules.SWAP),
    ('ephemeral_1_0706d66', rules.EPHEMERAL), ('ephemeral_1_abc', None), (FP + '_', None), (FP[:39], None),
    (FP + '_5', None),  # Nova scans only resized names longer than 42 characters
    ('x' * 40, rules.ORIGINAL),  # Nova goes by length alone
    (FP + '.part', None), ('swap_x', None),
])
def test_scanned_kind_is_nova_scan(name, kind):
    assert rules.scanned_kind(name) == kind


def test_ages_by_kind():
    assert rules.min_age(rules.ORIGINAL) == 86400 and rules.min_age(rules.RESIZED) == 3600
    assert rules.min_age(rules.SWAP, 10, 5) == 10 and rules.min_age(rules.RESIZED, 10, 5) == 5


def test_image_base_matches_nova_find_base_file():
    assert rules.image_base(FP, [FP]) == FP
    assert rules.image_base(FP + '_20', [FP]) == FP
    assert rules.image_base(FP + '_sm', [FP]) == FP
    assert rules.image_base(FP + '_2x', [FP]) is None
    assert rules.image_base(FP, ['0' * 40]) is None


def test_nova_rules_in_use_and_removal():
    nova = rules.NovaRules([IMAGE], disk_backings=['b' * 40], bdm_bases=['swap_512'])
    assert 'image id' in nova.in_use(FP + '_10')
    assert 'disk backs onto it' in nova.in_use('b' * 40)
    assert nova.in_use('swap_512') and nova.in_use('swap_1024') is None
    assert not nova.removes(FP, 10 ** 6)
    assert nova.removes('c' * 40, 86400) and not nova.removes('c' * 40, 86399)
    assert nova.removes('c' * 40 + '_15', 3600) and 'younger' in nova.why_kept('c' * 40 + '_15', 3599)
    assert 'does not scan' in nova.why_kept('c' * 40 + '_5', 10 ** 7)
    assert nova.min_age('c' * 40 + '_5') == 3600
    assert nova.removes('swap_1024', 86400)
    assert 'does not scan' in nova.why_kept('foreign', 10 ** 6)


@pytest.mark.parametrize('name, kind', [
    (FP, rules.ORIGINAL), (FP + '_5', rules.RESIZED), (FP + '_sm', None), ('swap_512', rules.SWAP),
    ('ephemeral_1_0706d66', rules.EPHEMERAL), ('x' * 40, None), (FP + '.part', None),
])
def test_name_kind_is_what_nova_names_bases(name, kind):
    assert rules.name_kind(name) == kind


def test_swap_and_ephemeral_without_block_device_mappings_are_kept():
    nova = rules.NovaRules([])
    assert 'block device mappings' in nova.why_kept('swap_512', 10 ** 7)
    assert 'block device mappings' in nova.why_kept('ephemeral_1_0706d66', 10 ** 7)


def test_remove_unused_base_images_false_keeps_everything():
    nova = rules.NovaRules([], remove_unused_base_images=False)
    assert 'remove_unused_base_images=False' in nova.why_kept('c' * 40, 10 ** 7)


def test_conf_settings(tmp_path):
    conf = tmp_path / 'nova.conf'
    conf.write_text('[DEFAULT]\nremove_unused_resized_minimum_age_seconds = 60\n'
                    '[image_cache]\nremove_unused_original_minimum_age_seconds = 120\n'
                    'remove_unused_base_images = False\n')
    settings = rules.conf_settings(NovaConf(str(conf)))
    assert settings == {'remove_unused_base_images': False, 'remove_unused_original_minimum_age_seconds': 120,
                        'remove_unused_resized_minimum_age_seconds': 60, 'subdirectory_name': '_base'}
    defaults = rules.conf_settings(NovaConf(str(tmp_path / 'absent')))
    assert defaults['remove_unused_original_minimum_age_seconds'] == 86400
    assert defaults['remove_unused_resized_minimum_age_seconds'] == 3600 and defaults['remove_unused_base_images']
    conf.write_text('[image_cache]\nremove_unused_resized_minimum_age_seconds = soon\n')
    with pytest.raises(StoragePoolsError, match='nova_conf: .* not a number'):
        rules.conf_settings(NovaConf(str(conf)))


def test_domain_image_ids_from_nova_metadata():
    with open(os.path.join(DATA, 'nova-instance.xml')) as handle:
        document = DomainDocument(handle.read())
    assert rules.domain_image_ids(document) == {IMAGE}
    assert rules.domain_image_ids(DomainDocument('<domain><name>x</name></domain>')) == set()


def test_lock_name_has_nova_prefix():
    assert rules.lock_name(FP) == 'nova-' + FP


def _instances(tmp_path):
    top = tmp_path / 'instances'
    top.mkdir()
    return str(top)


def test_lock_is_taken_and_made_for_the_instances_path_owner(tmp_path):
    top = _instances(tmp_path)
    os.chown(top, 4321, 4322)
    with rules.NovaBaseLock(top, FP) as lock:
        found = os.stat(lock.path)
        assert lock.path == os.path.join(top, 'locks', 'nova-' + FP)
        assert (found.st_uid, found.st_gid) == (4321, 4322)
        assert os.stat(os.path.dirname(lock.path)).st_uid == 4321
        # another process cannot take the POSIX lock while we hold it (as oslo.concurrency would try it)
        probe = ('import fcntl,sys\nf=open(sys.argv[1],"a")\ntry:\n fcntl.lockf(f,fcntl.LOCK_EX|fcntl.LOCK_NB)\n'
                 'except OSError:\n sys.exit(3)\n')
        assert subprocess.run([sys.executable, '-c', probe, lock.path], timeout=30, check=False).returncode == 3
    assert subprocess.run([sys.executable, '-c', probe, lock.path], timeout=30, check=False).returncode == 0


def test_a_held_lock_times_out_with_a_message(tmp_path):
    top = _instances(tmp_path)
    lock = rules.NovaBaseLock(top, FP, timeout=0.3)
    os.makedirs(os.path.dirname(lock.path))
    holder = subprocess.Popen([sys.executable, '-c', 'import fcntl,sys,time\nf=open(sys.argv[1],"a")\n'
                               'fcntl.lockf(f,fcntl.LOCK_EX)\nprint("held",flush=True)\ntime.sleep(30)\n', lock.path],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'held'
        with pytest.raises(StoragePoolsError, match="instances_path: Nova's lock .* is held"):
            lock.acquire()
        assert lock.fd is None
    finally:
        holder.kill()
        holder.wait()


def test_a_symlink_planted_as_the_lock_file_creates_and_truncates_nothing(tmp_path):
    top = _instances(tmp_path)
    os.mkdir(os.path.join(top, 'locks'))
    victim = tmp_path / 'victim'
    victim.write_text('root data')
    os.symlink(str(victim), os.path.join(top, 'locks', 'nova-' + FP))
    dangling = tmp_path / 'would-be-created'
    os.symlink(str(dangling), os.path.join(top, 'locks', 'nova-' + FP + '_1'))
    with pytest.raises(StoragePoolsError, match='is a symlink'):
        rules.NovaBaseLock(top, FP).acquire()
    with pytest.raises(StoragePoolsError, match='is a symlink'):
        rules.NovaBaseLock(top, FP + '_1').acquire()
    assert victim.read_text() == 'root data' and not os.path.lexists(str(dangling))


def test_a_symlinked_locks_dir_or_a_fifo_lock_is_refused(tmp_path):
    top = _instances(tmp_path)
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    os.symlink(str(elsewhere), os.path.join(top, 'locks'))
    with pytest.raises(StoragePoolsError, match='locks is a symlink'):
        rules.NovaBaseLock(top, FP).acquire()
    assert os.listdir(str(elsewhere)) == []
    os.unlink(os.path.join(top, 'locks'))
    os.mkdir(os.path.join(top, 'locks'))
    os.mkfifo(os.path.join(top, 'locks', 'nova-' + FP))
    with pytest.raises(StoragePoolsError, match='not a regular file'):
        rules.NovaBaseLock(top, FP).acquire()


def test_mtime_age(tmp_path):
    path = tmp_path / 'base'
    path.write_bytes(b'')
    os.utime(str(path), (1000, 1000))
    assert rules.mtime_age(os.stat(str(path)), now=1600) == 600
