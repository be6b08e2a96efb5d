# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""legacy_disk_adopt state: reverted on a fake legacy Nova host, against the real libvirtd."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest
from conftest import libvirt, run_module, start_module
from test_legacy_disk_adopt import (  # noqa: F401  # pylint: disable=unused-import
    NOVA_UID,
    XML_FLAGS,
    adopt,
    host,
    make_shadow_canary,
    other_fs_host,
)

NAMES = ('disk', 'disk.local', 'disk.config')
MiB = 1024 * 1024


def revert(host, check=False, diff=False, env=None, **args):
    return adopt(host, check=check, diff=diff, env=env, state='reverted', **args)


class Legacy:
    """An instance's legacy layout as it was before the adoption: domain XML, disk.info bytes, files."""

    def __init__(self, conn, host, instance):
        self.host, self.instance = host, instance
        self.directory = os.path.join(host.instances, instance)
        self.xml = conn.lookupByUUIDString(instance).XMLDesc(XML_FLAGS)
        with open(os.path.join(self.directory, 'disk.info'), 'rb') as handle:
            self.disk_info = handle.read()
        self.files = {name: os.stat(path) for name, path in host.disk_paths(instance).items()}

    def volumes(self):
        return sorted('%s_%s' % (self.instance, name) for name in self.files)

    def assert_back(self, conn, checksums, same_inode):
        """The legacy layout is back: regular files with ``checksums``, disk.info byte for byte, the domain
        XML as before, no volume of the instance in the pool (files, libvirt's list), no temporary left."""
        host = self.host
        for name, path in host.disk_paths(self.instance).items():
            info = os.lstat(path)
            assert stat.S_ISREG(info.st_mode), path
            assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (
                self.files[name].st_uid, self.files[name].st_gid, stat.S_IMODE(self.files[name].st_mode)), name
            if same_inode:  # renamed back: the very file Nova made
                assert info.st_ino == self.files[name].st_ino, name
            assert 'trusted.storagepools.libvirt' not in os.listxattr(path), 'the record stayed on %s' % path
        assert host.checksums(self.instance) == checksums
        with open(os.path.join(self.directory, 'disk.info'), 'rb') as handle:
            assert handle.read() == self.disk_info
        assert conn.lookupByUUIDString(self.instance).XMLDesc(XML_FLAGS) == self.xml
        pool = conn.storagePoolLookupByName(host.disks_pool)
        assert [name for name in pool.listVolumes() if name.startswith(self.instance)] == []
        assert [name for name in os.listdir(host.disks_dir) if name.startswith(self.instance)] == []
        assert [name for name in os.listdir(self.directory) if name.startswith('.')] == []


def write_as_the_guest(host, instance):
    """What a guest running on the adopted disks writes: into the pool volumes (qcow2 overlay, raw disk)."""
    volume = os.path.join(host.disks_dir, '%s_disk' % instance)
    subprocess.run(['qemu-io', '-f', 'qcow2', '-c', 'write -P 0x77 3M 1M', volume], check=True, capture_output=True)
    with open(os.path.join(host.disks_dir, '%s_disk.local' % instance), 'r+b') as handle:
        handle.seek(5 * MiB)
        handle.write(os.urandom(256 * 1024))


def same_fs_host(request):
    return request.getfixturevalue('host')


def cross_fs_host(request):
    return request.getfixturevalue('other_fs_host')(128)


LAYOUTS = {'same fs': (same_fs_host, True, ['link_back']),
           'cross fs': (cross_fs_host, False, ['copy_back', 'verify_back', 'swap_back'])}


@pytest.mark.parametrize('layout', sorted(LAYOUTS))
def test_revert_brings_the_legacy_layout_back_with_the_guests_writes(conn, request, layout):
    make, same_inode, back_steps = LAYOUTS[layout]
    host = make(request)
    instance = host.instance()  # a qcow2 overlay on _base, a raw disk.local and disk.config
    legacy = Legacy(conn, host, instance)
    assert adopt(host)['instances'][instance]['result'] == 'adopted'
    write_as_the_guest(host, instance)
    written = host.checksums(instance)  # the guest's view of the pool volumes' current data
    pool_before = sorted(os.listdir(host.disks_dir))
    xml_adopted = conn.lookupByUUIDString(instance).XMLDesc(XML_FLAGS)

    check = revert(host, check=True, diff=True)
    planned = check['instances'][instance]
    assert check['changed'] is True and planned['result'] == 'reverted', check
    assert sorted(os.listdir(host.disks_dir)) == pool_before and set(legacy.volumes()) <= set(pool_before)
    assert all(os.path.islink(path) for path in host.disk_paths(instance).values()), 'check mode wrote'
    assert conn.lookupByUUIDString(instance).XMLDesc(XML_FLAGS) == xml_adopted
    assert [step['action'] for step in planned['actions'] if step.get('disk') == 'disk'] == back_steps + (
        ['unrecord', 'remove'] if same_inode else ['remove'])
    assert {'action': 'domain'} in planned['actions'] and {'action': 'disk_info'} in planned['actions']
    changed = [line for line in planned['domain_diff'].splitlines()
               if line[:1] in '+-' and not line.startswith(('+++', '---'))]
    assert len(changed) == 2 * 3 + 5, planned['domain_diff']  # each source back, the overlay's chain gone
    assert "'" not in check['diff'][0]['after']  # the canonical form

    result = revert(host, diff=True)
    outcome = result['instances'][instance]
    assert outcome['result'] == 'reverted' and result['summary']['reverted'] == 1, result
    assert outcome['actions'] == planned['actions'] and outcome['domain_diff'] == planned['domain_diff']
    assert result['diff'] == check['diff']
    assert {disk['name']: disk['method'] for disk in outcome['disks']} == dict.fromkeys(
        NAMES, 'link' if same_inode else 'copy')
    legacy.assert_back(conn, written, same_inode)

    rerun = revert(host)
    assert rerun['changed'] is False and rerun['instances'][instance]['result'] == 'not_adopted', rerun
    assert revert(host, check=True)['changed'] is False

    # after the revert, check mode of the adoption and the real run agree (no stale volume is listed)
    again = adopt(host, check=True)
    adopted = adopt(host)
    assert adopted['instances'][instance]['result'] == again['instances'][instance]['result'] == 'adopted', adopted
    assert adopted['instances'][instance]['actions'] == again['instances'][instance]['actions']
    assert host.checksums(instance) == written
    assert revert(host)['instances'][instance]['result'] == 'reverted'  # and back once more
    legacy.assert_back(conn, written, same_inode)


def test_what_libvirt_changed_in_the_domain_since_the_adoption_stays(conn, host):
    instance = host.instance(config=False)
    legacy = Legacy(conn, host, instance)
    assert adopt(host)['instances'][instance]['result'] == 'adopted'
    domain = conn.lookupByUUIDString(instance)
    domain.setMemoryFlags(98304, libvirt.VIR_DOMAIN_AFFECT_CONFIG | libvirt.VIR_DOMAIN_MEM_MAXIMUM)
    domain.setMemoryFlags(98304, libvirt.VIR_DOMAIN_AFFECT_CONFIG)
    changed_by_libvirt = domain.XMLDesc(XML_FLAGS)
    assert '98304' in changed_by_libvirt
    assert revert(host)['instances'][instance]['result'] == 'reverted'
    after = domain.XMLDesc(XML_FLAGS)
    assert after == legacy.xml.replace('65536', '98304'), after  # the disks as before, the memory as libvirt has it


def kill_revert(host, step):
    args = dict(instances_path=host.instances, disks_pool=host.disks_pool, cache_pool=host.cache_pool,
                state_dir=host.state_dir, nova_conf=host.nova_conf, state='reverted')
    killed = start_module('legacy_disk_adopt', args, {'STORAGEPOOLS_KILL_AT': step})
    killed.communicate()
    assert killed.returncode == -9, 'the module was not killed at %s' % step


@pytest.mark.parametrize('layout, step', [
    ('same fs', step) for step in ('link_back:1', 'link_back:2', 'link_back:3', 'domain:1', 'disk_info:1',
                                   'unrecord:1', 'remove:1', 'unrecord:3', 'remove:3')] + [
    ('cross fs', step) for step in ('copy_back:1', 'verify_back:1', 'swap_back:1', 'copy_back:2', 'swap_back:3',
                                    'domain:1', 'disk_info:1', 'remove:1', 'remove:3')])
def test_sigkill_at_every_journalled_revert_step_then_rerun_converges(conn, request, layout, step):
    make, same_inode, _steps = LAYOUTS[layout]
    host = make(request)
    instance = host.instance()
    legacy = Legacy(conn, host, instance)
    assert adopt(host)['instances'][instance]['result'] == 'adopted'
    write_as_the_guest(host, instance)
    written = host.checksums(instance)
    kill_revert(host, step)
    assert host.checksums(instance) == written  # also in the middle: every legacy path reads the current data
    result = revert(host)
    assert result['instances'][instance]['result'] == 'reverted', result
    assert revert(host)['instances'][instance]['result'] == 'not_adopted'
    legacy.assert_back(conn, written, same_inode)


def test_a_running_instance_is_skipped_and_keeps_its_volumes(conn, host):
    instance = host.instance(config=False)
    assert adopt(host)['instances'][instance]['result'] == 'adopted'
    domain = conn.lookupByUUIDString(instance)
    domain.create()
    try:
        for check in (True, False):
            outcome = revert(host, check=check)['instances'][instance]
            assert outcome['result'] == 'skipped' and 'running' in outcome['reason'], outcome
        assert all(os.path.islink(path) for path in host.disk_paths(instance).values())
    finally:
        domain.destroy()
    assert revert(host)['instances'][instance]['result'] == 'reverted'


def test_an_excluded_instance_is_left_alone_by_check_mode_and_the_real_run(conn, host):
    kept, other = host.instance(config=False), host.instance(config=False)
    for state, run in (('adopted', adopt), ('reverted', revert)):
        for check in (True, False):
            result = run(host, check=check, exclude=[kept.upper()])
            outcome = result['instances'][kept]
            assert outcome['result'] == 'skipped' and outcome['reason'].startswith('exclude: '), outcome
            assert result['instances'][other]['result'] == ('adopted' if state == 'adopted' else 'reverted')
            assert not any(os.path.islink(path) for path in host.disk_paths(kept).values())
    bad = adopt(host, exclude=['not-a-uuid'])
    assert bad['failed'] is True and bad['msg'].startswith('exclude: not-a-uuid is not a uuid'), bad


def test_a_symlink_the_nova_user_plants_at_a_legacy_path_reaches_nothing(conn, host, workdir):
    instance = host.instance()
    directory = os.path.join(host.instances, instance)
    for path in [directory] + list(host.disk_paths(instance).values()):
        os.chown(path, NOVA_UID, NOVA_UID)
    legacy = Legacy(conn, host, instance)
    assert adopt(host)['instances'][instance]['result'] == 'adopted'
    written = host.checksums(instance)
    canary = make_shadow_canary(workdir)
    planted = host.disk_paths(instance)['disk.local']  # our symlink to the volume, swapped for nova's own
    os.unlink(planted)
    os.symlink(canary.path, planted)
    os.lchown(planted, NOVA_UID, NOVA_UID)
    for name in ('.disk.info.spl-tmp', '.disk.spl-tmp', '.disk.local.spl-link'):  # names a revert might take
        os.symlink(canary.path, os.path.join(directory, name))
    result = revert(host)
    assert result['instances'][instance]['result'] == 'reverted', result
    canary()
    for name in ('.disk.info.spl-tmp', '.disk.spl-tmp', '.disk.local.spl-link'):
        os.unlink(os.path.join(directory, name))  # nova's, left alone
    legacy.assert_back(conn, written, same_inode=True)


def test_an_instance_directory_swapped_for_a_symlink_is_skipped(conn, host, workdir):
    instance = host.instance(config=False)
    assert adopt(host)['instances'][instance]['result'] == 'adopted'
    directory = os.path.join(host.instances, instance)
    elsewhere = os.path.join(workdir, 'elsewhere')
    os.rename(directory, elsewhere)
    os.symlink(elsewhere, directory)
    before = sorted(os.listdir(elsewhere))
    outcome = revert(host)['instances'][instance]
    assert outcome['result'] == 'skipped' and 'symlink' in outcome['reason'], outcome
    assert sorted(os.listdir(elsewhere)) == before
    assert sorted(os.listdir(host.disks_dir)) == ['%s_%s' % (instance, name) for name in ('disk', 'disk.local')]


def test_without_the_journals_record_nothing_is_guessed(conn, host):
    instance = host.instance(config=False)
    assert adopt(host)['instances'][instance]['result'] == 'adopted'
    journal = os.path.join(host.state_dir, 'journal', '%s.json' % instance)
    with open(journal) as handle:
        entry = json.load(handle)
    assert entry['legacy']['disks'][0]['legacy_path'] == os.path.join(host.instances, instance, 'disk')
    assert stat.S_IMODE(os.stat(journal).st_mode) == 0o600
    os.rename(journal, journal + '.bad')
    outcome = revert(host)['instances'][instance]
    assert outcome['result'] == 'skipped' and 'no record of its layout' in outcome['reason'], outcome
    assert all(os.path.islink(path) for path in host.disk_paths(instance).values())


def test_disk_info_nova_changed_since_keeps_novas_entries_without_the_pool_paths(conn, host):
    instance = host.instance(config=False)
    assert adopt(host)['instances'][instance]['result'] == 'adopted'
    path = os.path.join(host.instances, instance, 'disk.info')
    with open(path) as handle:
        info = json.load(handle)
    rescue = os.path.join(host.instances, instance, 'disk.rescue')
    info[rescue] = 'qcow2'  # as Nova's rescue would add
    with open(path, 'w') as handle:
        json.dump(info, handle)
    assert revert(host)['instances'][instance]['result'] == 'reverted'
    with open(path) as handle:
        after = json.load(handle)
    assert after == {os.path.join(host.instances, instance, name): fmt
                     for name, fmt in (('disk', 'qcow2'), ('disk.local', 'raw'), ('disk.rescue', 'qcow2'))}


def test_the_transition_role_leaves_an_excluded_reverted_instance_alone(installed, conn, pools, workdir):
    """transition, revert one instance, then transition again: with storagepools_exclude_instances it stays
    reverted in check mode and the real run; without, check mode and the real run agree (it is adopted)."""
    from nova_host import NovaHost
    from test_roles import recaps, run_playbook

    root = os.path.join(workdir, 'onehost')
    nova = NovaHost(conn, root, pools.new())
    reverted, other = nova.instance(config=False), nova.instance(config=False)
    disks, report_dir, state = pools.new(), os.path.join(workdir, 'report'), os.path.join(root, 'state')
    inventory = os.path.join(workdir, 'inventory.ini')
    with open(inventory, 'w') as handle:
        handle.write(' '.join([
            'onehost', 'ansible_connection=local', 'ansible_python_interpreter=%s' % sys.executable,
            'storagepools_instances_path=%s' % nova.instances, 'storagepools_disks_path=%s/disks' % root,
            'storagepools_cache_pool=%s' % pools.new(), 'storagepools_disks_pool=%s' % disks,
            'storagepools_nova_conf=%s' % nova.nova_conf, 'storagepools_state_dir=%s' % state,
            'storagepools_report_dir=%s' % report_dir]) + '\n')
    excluded = ['-e', json.dumps({'storagepools_exclude_instances': [reverted]})]

    def report(plan=False):
        # a check-mode run writes its plan beside the last real report (onehost.plan.json)
        with open(os.path.join(report_dir, 'onehost.plan.json' if plan else 'onehost.json')) as handle:
            return json.load(handle)['instances']

    try:
        code, out = run_playbook(installed, 'transition', inventory)
        assert code == 0, out
        assert report()[reverted]['result'] == 'adopted'
        result = run_module('legacy_disk_adopt', dict(instances=[reverted], state='reverted', disks_pool=disks,
                                                      instances_path=nova.instances, state_dir=state,
                                                      nova_conf=nova.nova_conf))
        assert result['instances'][reverted]['result'] == 'reverted', result
        legacy = os.path.join(nova.instances, reverted, 'disk')
        for options in (['--check'], []):
            code, out = run_playbook(installed, 'transition', inventory, *(excluded + options))
            assert code == 0, out
            assert all(recap['changed'] == '0' for recap in recaps(out).values()), out
            assert not os.path.islink(legacy)
            outcome = report(plan=bool(options))[reverted]
            assert outcome['result'] == 'skipped', outcome
            assert outcome['reason'].startswith('storagepools_exclude_instances: '), outcome
            assert report(plan=bool(options))[other]['result'] == 'already_adopted'
        code, out = run_playbook(installed, 'transition', inventory, '--check')
        assert code == 0 and not os.path.islink(legacy), out
        planned = report(plan=True)[reverted]
        code, out = run_playbook(installed, 'transition', inventory)
        assert code == 0, out
        assert planned['result'] == report()[reverted]['result'] == 'adopted', (planned, report()[reverted])
        assert planned['actions'] == report()[reverted]['actions']
        assert os.path.islink(legacy)
    finally:
        nova.cleanup()


def test_force_is_refused_for_a_file_pool_revert(host):
    refused = revert(host, force=True)
    assert refused['failed'] is True and refused['msg'].startswith('force: '), refused
