# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""legacy_disk_adopt state: reverted of an rbd cutover before finalize, on real Ceph and the real libvirtd."""

from __future__ import annotations

import json
import os
import stat
import subprocess

import pytest
from canary import Canary
from conftest import start_module
from test_legacy_disk_adopt import wait_for_journal
from test_rbd_cutover import (  # noqa: F401  # pylint: disable=unused-import
    XML_FLAGS,
    adopt,
    host,
    rbd_checksums,
    switch_nova_conf,
)

from ansible_collections.storagepools.libvirt.plugins.module_utils._images.inspect import read_qcow2_overlay

NOVA_UID = 64123  # an unprivileged owner, as the nova user is


def revert(host, check=False, diff=False, **args):
    return adopt(host, check=check, state='reverted', **args)


def instance_images(ceph, instance):
    return sorted(image for image in ceph.rbd_ls() if image.startswith(instance))


def disk_info(host, instance):
    with open(os.path.join(host.instances, instance, 'disk.info'), 'rb') as handle:
        return handle.read()


def test_an_rbd_import_is_reverted_onto_the_unchanged_legacy_files(conn, ceph, host):
    instance = host.instance()
    before = host.checksums(instance)
    legacy_xml = conn.lookupByUUIDString(instance).XMLDesc(XML_FLAGS)
    info = disk_info(host, instance)
    files = {name: os.stat(path) for name, path in host.disk_paths(instance).items()}
    assert adopt(host)['instances'][instance]['result'] == 'adopted'
    assert len(instance_images(ceph, instance)) == 3

    check = revert(host, check=True)
    planned = check['instances'][instance]
    assert check['changed'] is True and planned['result'] == 'reverted', check
    assert len(instance_images(ceph, instance)) == 3, 'check mode removed an image'
    assert [step['action'] for step in planned['actions']] == ['domain'] + ['remove'] * 3

    result = revert(host)
    outcome = result['instances'][instance]
    assert outcome['result'] == 'reverted' and outcome['actions'] == planned['actions'], result
    assert outcome['domain_diff'] == planned['domain_diff']
    assert conn.lookupByUUIDString(instance).XMLDesc(XML_FLAGS) == legacy_xml
    assert instance_images(ceph, instance) == []
    assert host.checksums(instance) == before and disk_info(host, instance) == info
    for name, path in host.disk_paths(instance).items():
        assert os.stat(path).st_mtime_ns == files[name].st_mtime_ns and os.stat(path).st_ino == files[name].st_ino
    assert revert(host)['instances'][instance]['result'] == 'not_adopted'

    again = adopt(host, check=True)  # after the revert, check mode of the import and the real run agree
    imported = adopt(host)
    assert imported['instances'][instance]['result'] == again['instances'][instance]['result'] == 'adopted'
    assert imported['instances'][instance]['actions'] == again['instances'][instance]['actions']


def write_as_the_guest(ceph, instance, names=('disk', 'disk.local')):
    """What a guest running on the rbd disks writes: into the images, through qemu's rbd driver."""
    for offset, name in enumerate(names):
        image = '%s/%s_%s' % (ceph.pool, instance, name)
        target = 'rbd:%s:id=admin:conf=%s:keyring=%s' % (image, ceph.conf, ceph.env['CEPH_ADMIN_KEYRING'])
        subprocess.run(['qemu-io', '-f', 'raw', '-c', 'write -P 0x%x %dM 64k' % (0x61 + offset, 3 + offset), target],
                       check=True, capture_output=True)


class Legacy:
    """An instance's layout before its import: the domain XML, disk.info's bytes, each file's owner and mode."""

    def __init__(self, conn, host, instance):
        self.host, self.instance = host, instance
        self.xml = conn.lookupByUUIDString(instance).XMLDesc(XML_FLAGS)
        self.disk_info = disk_info(host, instance)
        self.files = {name: os.stat(path) for name, path in host.disk_paths(instance).items()}

    def assert_back(self, conn, ceph, checksums):
        """Regular files at the legacy paths with ``checksums`` (the images' guest view), Nova's owner and mode,
        disk.info byte for byte, the domain XML as before the import, no image and no temporary left; the
        overlay on its _base file again."""
        host, instance = self.host, self.instance
        paths = host.disk_paths(instance)
        assert sorted(paths) == sorted(self.files)
        for name, path in paths.items():
            info = os.lstat(path)
            assert stat.S_ISREG(info.st_mode), path
            assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (
                self.files[name].st_uid, self.files[name].st_gid, stat.S_IMODE(self.files[name].st_mode)), name
        assert read_qcow2_overlay(paths['disk'])[1:] == (host.base, 'raw')
        assert host.checksums(instance) == checksums
        assert disk_info(host, instance) == self.disk_info
        assert conn.lookupByUUIDString(instance).XMLDesc(XML_FLAGS) == self.xml
        assert instance_images(ceph, instance) == []
        directory = os.path.join(host.instances, instance)
        assert [name for name in os.listdir(directory) if name.startswith('.')] == []


def test_an_image_the_guest_wrote_since_its_import_is_copied_back_verified(conn, ceph, host, workdir):
    instance = host.instance()
    legacy = Legacy(conn, host, instance)
    assert adopt(host)['instances'][instance]['result'] == 'adopted'
    write_as_the_guest(ceph, instance)
    written = rbd_checksums(ceph, instance, legacy.files, workdir)
    assert written != host.checksums(instance)
    on_rbd = conn.lookupByUUIDString(instance).XMLDesc(XML_FLAGS)

    check = revert(host, check=True)
    planned = check['instances'][instance]
    assert check['changed'] is True and planned['result'] == 'reverted', check
    copied = ['copy_back', 'verify_back', 'swap_back']
    assert [(step['action'], step.get('disk')) for step in planned['actions']] == (
        [(action, 'disk') for action in copied] + [(action, 'disk.local') for action in copied]
        + [('domain', None)] + [('remove', name) for name in ('disk', 'disk.local', 'disk.config')])
    assert {disk['name']: disk['method'] for disk in planned['disks']} == {
        'disk': 'copy', 'disk.local': 'copy', 'disk.config': 'un-import'}
    assert conn.lookupByUUIDString(instance).XMLDesc(XML_FLAGS) == on_rbd and len(instance_images(ceph, instance)) == 3
    assert host.checksums(instance) != written, 'check mode copied'

    result = revert(host)
    outcome = result['instances'][instance]
    assert outcome['result'] == 'reverted' and outcome['actions'] == planned['actions'], outcome.get('reason')
    assert outcome['domain_diff'] == planned['domain_diff']
    legacy.assert_back(conn, ceph, written)
    # the overlay holds what differs from its base, not the whole disk; the untouched config drive is Nova's file
    disk = host.disk_paths(instance)['disk']
    assert os.stat(disk).st_blocks * 512 < 4 * 1024 * 1024
    assert os.stat(host.disk_paths(instance)['disk.config']).st_ino == legacy.files['disk.config'].st_ino
    assert revert(host)['instances'][instance]['result'] == 'not_adopted'


def test_after_finalize_a_revert_is_refused_unless_force_copies_back(conn, ceph, host, workdir):
    instance = host.instance(config=False)
    legacy = Legacy(conn, host, instance)
    result = adopt(host)
    switch_nova_conf(host, result['nova_conf_settings'])
    assert adopt(host, finalize=True)['instances'][instance]['result'] == 'adopted'
    assert host.disk_paths(instance) == {}
    write_as_the_guest(ceph, instance, names=('disk.local',))
    written = rbd_checksums(ceph, instance, legacy.files, workdir)
    for check in (True, False):
        outcome = revert(host, check=check)['instances'][instance]
        assert outcome['result'] == 'skipped' and 'is gone (removed by finalize?)' in outcome['reason'], outcome
        assert 'force' in outcome['reason']
    assert len(instance_images(ceph, instance)) == 2

    check = revert(host, check=True, force=True)
    planned = check['instances'][instance]
    assert planned['result'] == 'reverted' and host.disk_paths(instance) == {}, check
    assert [step['action'] for step in planned['actions']] == (
        ['copy_back', 'verify_back', 'swap_back'] * 2 + ['domain', 'disk_info', 'remove', 'remove'])
    outcome = revert(host, force=True)['instances'][instance]
    assert outcome['result'] == 'reverted' and outcome['actions'] == planned['actions'], outcome
    legacy.assert_back(conn, ceph, written)  # disk.info too: finalize's removal of the entries is undone
    assert revert(host, force=True)['instances'][instance]['result'] == 'not_adopted'


def kill_revert(host, step, force):
    args = dict(instances_path=host.instances, disks_pool=host.rbd_pool, ceph_keyring=host.keyring,
                state_dir=host.state_dir, nova_conf=host.nova_conf, state='reverted', force=force)
    killed = start_module('legacy_disk_adopt', args, {'STORAGEPOOLS_KILL_AT': step})
    killed.communicate()
    assert killed.returncode == -9, 'the module was not killed at %s' % step


@pytest.mark.parametrize('when, step', [
    ('written', step) for step in ('copy_back:1', 'verify_back:1', 'swap_back:1', 'copy_back:2', 'domain:1')] + [
    ('finalized', step) for step in ('copy_back:1', 'verify_back:1', 'swap_back:1', 'swap_back:2', 'domain:1',
                                     'disk_info:1', 'remove:1')])
def test_sigkill_at_every_copy_back_step_then_rerun_converges(conn, ceph, host, workdir, when, step):
    instance = host.instance(config=False)
    legacy = Legacy(conn, host, instance)
    result = adopt(host)
    if when == 'finalized':
        switch_nova_conf(host, result['nova_conf_settings'])
        assert adopt(host, finalize=True)['instances'][instance]['result'] == 'adopted'
    write_as_the_guest(ceph, instance)
    written = rbd_checksums(ceph, instance, legacy.files, workdir)
    force = when == 'finalized'
    kill_revert(host, step, force)
    if not step.startswith('remove'):  # nothing lost in the middle: every image the domain may still use is there
        assert len(instance_images(ceph, instance)) == 2
    assert revert(host, force=force)['instances'][instance]['result'] == 'reverted'
    assert revert(host, force=force)['instances'][instance]['result'] == 'not_adopted'
    legacy.assert_back(conn, ceph, written)


def test_a_symlink_the_nova_user_plants_at_a_legacy_path_reaches_nothing(conn, ceph, host, workdir):
    """After finalize the legacy names are free: nova plants a symlink to a root file at one before the revert
    and at the other while the copy back is under way; both are replaced, the file is never touched."""
    instance = host.instance(config=False)
    directory = os.path.join(host.instances, instance)
    for path in [directory] + list(host.disk_paths(instance).values()):
        os.chown(path, NOVA_UID, NOVA_UID)
    legacy = Legacy(conn, host, instance)
    result = adopt(host)
    switch_nova_conf(host, result['nova_conf_settings'])
    assert adopt(host, finalize=True)['instances'][instance]['result'] == 'adopted'
    written = rbd_checksums(ceph, instance, legacy.files, workdir)
    canary = Canary(os.path.join(workdir, 'shadow'))
    os.symlink(canary.path, os.path.join(directory, 'disk'))
    os.lchown(os.path.join(directory, 'disk'), NOVA_UID, NOVA_UID)
    args = dict(instances_path=host.instances, disks_pool=host.rbd_pool, ceph_keyring=host.keyring,
                state_dir=host.state_dir, nova_conf=host.nova_conf, state='reverted', force=True)
    paused = start_module('legacy_disk_adopt', args, {'STORAGEPOOLS_PAUSE_AT': 'verify_back:2'})
    wait_for_journal(host, instance, 'verify_back', 'disk.local')  # held there for 5 s
    os.symlink(canary.path, os.path.join(directory, 'disk.local'))  # beside the copy being verified
    os.lchown(os.path.join(directory, 'disk.local'), NOVA_UID, NOVA_UID)
    out, err = paused.communicate(timeout=300)
    outcome = json.loads(out)['instances'][instance]
    assert outcome['result'] == 'reverted', (outcome, err)
    canary.assert_untouched()
    legacy.assert_back(conn, ceph, written)


@pytest.mark.parametrize('step', ['domain:1', 'remove:1', 'remove:3'])
def test_sigkill_during_an_rbd_revert_then_rerun_converges(conn, ceph, host, step):
    instance = host.instance()
    before = host.checksums(instance)
    legacy_xml = conn.lookupByUUIDString(instance).XMLDesc(XML_FLAGS)
    assert adopt(host)['instances'][instance]['result'] == 'adopted'
    args = dict(instances_path=host.instances, disks_pool=host.rbd_pool, ceph_keyring=host.keyring,
                state_dir=host.state_dir, nova_conf=host.nova_conf, state='reverted')
    killed = start_module('legacy_disk_adopt', args, {'STORAGEPOOLS_KILL_AT': step})
    killed.communicate()
    assert killed.returncode == -9, 'the module was not killed at %s' % step
    assert revert(host)['instances'][instance]['result'] == 'reverted'
    assert revert(host)['instances'][instance]['result'] == 'not_adopted'
    assert conn.lookupByUUIDString(instance).XMLDesc(XML_FLAGS) == legacy_xml
    assert instance_images(ceph, instance) == [] and host.checksums(instance) == before


def test_an_image_written_during_its_copy_back_fails_verify_and_stays(conn, ceph, host, workdir):
    """The guest's data changes while it is copied back (Nova started the domain, say): verify_back tells, the
    copy goes, the domain stays on the image; a rerun copies the new data back."""
    instance = host.instance(config=False)
    legacy = Legacy(conn, host, instance)
    result = adopt(host)
    switch_nova_conf(host, result['nova_conf_settings'])
    assert adopt(host, finalize=True)['instances'][instance]['result'] == 'adopted'
    on_rbd = conn.lookupByUUIDString(instance).XMLDesc(XML_FLAGS)
    args = dict(instances_path=host.instances, disks_pool=host.rbd_pool, ceph_keyring=host.keyring,
                state_dir=host.state_dir, nova_conf=host.nova_conf, state='reverted', force=True)
    paused = start_module('legacy_disk_adopt', args, {'STORAGEPOOLS_PAUSE_AT': 'verify_back:1'})
    wait_for_journal(host, instance, 'verify_back', 'disk')
    write_as_the_guest(ceph, instance, names=('disk',))
    out, err = paused.communicate(timeout=300)
    failed = json.loads(out)
    outcome = failed['instances'][instance]
    assert failed['failed'] is True and outcome['result'] == 'failed', (failed, err)
    assert 'verify_back: the copy of' in outcome['reason'] and 'the image is kept' in outcome['reason'], outcome
    assert conn.lookupByUUIDString(instance).XMLDesc(XML_FLAGS) == on_rbd
    assert host.disk_paths(instance) == {} and len(instance_images(ceph, instance)) == 2
    assert [name for name in os.listdir(os.path.join(host.instances, instance)) if name.startswith('.')] == []
    written = rbd_checksums(ceph, instance, legacy.files, workdir)
    assert revert(host, force=True)['instances'][instance]['result'] == 'reverted'
    legacy.assert_back(conn, ceph, written)


def test_an_older_record_copies_back_with_the_directorys_owner_and_the_images_size(conn, ceph, host, workdir):
    """An import recorded before the record kept virtual size, owner and mode: the image's size, and the owner of
    the instance directory (the nova user's) with Nova's 0644."""
    instance = host.instance(config=False)
    directory = os.path.join(host.instances, instance)
    for path in [directory] + list(host.disk_paths(instance).values()):
        os.chown(path, NOVA_UID, NOVA_UID)
        os.chmod(path, 0o755 if path == directory else 0o644)
    legacy = Legacy(conn, host, instance)
    result = adopt(host)
    journal = os.path.join(host.state_dir, 'journal', '%s.json' % instance)
    with open(journal) as handle:
        entry = json.load(handle)
    for disk in entry['legacy']['disks']:
        for key in ('virtual_size', 'owner', 'mode'):
            disk.pop(key)
    with open(journal, 'w') as handle:
        json.dump(entry, handle)
    switch_nova_conf(host, result['nova_conf_settings'])
    assert adopt(host, finalize=True)['instances'][instance]['result'] == 'adopted'
    written = rbd_checksums(ceph, instance, legacy.files, workdir)
    assert revert(host, force=True)['instances'][instance]['result'] == 'reverted'
    legacy.assert_back(conn, ceph, written)
