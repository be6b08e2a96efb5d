# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The preflight's risks from what a host has (transition_preflight); the host itself is in
tests/integration/test_preflight.py."""

from __future__ import annotations

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import space
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge import preflight
from ansible_collections.storagepools.libvirt.plugins.module_utils._core import requirements

MiB = 1024 * 1024
ROOT = {'path': '/var/lib/nova/instances', 'device': 1, 'mountpoint': '/', 'fstype': 'ext4', 'shared': False,
        'volatile': False, 'xattr': True}


def test_space_needs_add_up_per_destination_and_a_shortfall_blocks_saying_both():
    needs = [{'where': "pool 'disks' (/d)", 'needed': 3 * MiB, 'available': 10 * MiB},
             {'where': "pool 'disks' (/d)", 'needed': 4 * MiB, 'available': 10 * MiB},
             {'where': "Ceph pool 'vms'", 'needed': 0, 'available': 0}]
    destinations, risks = preflight.space_risks(needs)
    assert [(entry['where'], entry['needed'], entry['fits']) for entry in destinations] == [
        ("Ceph pool 'vms'", 0, True), ("pool 'disks' (/d)", 7 * MiB, False)]  # each alone would fit
    assert len(risks) == 1 and risks[0]['severity'] == 'blocking'
    assert (risks[0]['needed'], risks[0]['available']) == (7 * MiB, 10 * MiB)
    assert "pool 'disks' (/d) needs 7.0 MiB (7340032 bytes) plus a margin of 4.0 MiB" in risks[0]['message']
    assert space.fits(6 * MiB, 10 * MiB) and not space.fits(6 * MiB + 1, 10 * MiB)


def test_missing_python_modules_name_the_package_of_the_family_or_of_every_family():
    risks = preflight.python_requirements(['libvirt', 'lxml'], {'libvirt': False, 'lxml': True}, 'RedHat')
    assert len(risks) == 1 and risks[0]['severity'] == 'blocking'
    assert 'install %s (RedHat family)' % requirements.PYTHON['libvirt']['RedHat'] in risks[0]['fix']
    unknown = preflight.python_requirements(['rbd'], {}, None)
    assert 'Debian: python3-rbd; RedHat: python3-rbd' in unknown[0]['fix']


def test_programs_qemu_img_version_and_device_mapper_for_lvm():
    assert preflight.program_requirements('dir', (8, 2, 2), False, False, 'Debian') == []
    old = preflight.program_requirements('dir', (4, 2), True, True, 'Debian')
    assert 'older than qemu-img 5.0' in old[0]['message'] and 'qemu-utils' in old[0]['fix']
    lvm = preflight.program_requirements('logical', (8, 0), False, False, 'Debian')
    assert [item['severity'] for item in lvm] == ['blocking', 'blocking']
    assert 'lvm2' in lvm[0]['fix'] and 'device-mapper' in lvm[1]['message']


def test_filesystem_guardrails_another_filesystem_tmpfs_no_xattr_shared():
    assert preflight.filesystem_risks(ROOT, dict(ROOT, path='/var/lib/nova/disks'), 0) == []
    other = dict(ROOT, path='/srv/disks', device=2, mountpoint='/srv', fstype='tmpfs', volatile=True, xattr=False)
    risks = preflight.filesystem_risks(ROOT, other, 5 * MiB)
    assert [item['severity'] for item in risks] == ['warning', 'warning', 'blocking']
    assert 'every disk is copied (5.0 MiB now)' in risks[0]['message'] and risks[0]['needed'] == 5 * MiB
    assert 'lost at the next reboot' in risks[1]['message']
    assert 'extended attributes' in risks[2]['message']
    shared = preflight.filesystem_risks(dict(ROOT, shared=True, fstype='nfs4'), None, 0)
    assert len(shared) == 1 and 'shared filesystem (nfs4' in shared[0]['message']


def test_nova_conf_facts_that_change_the_plan():
    facts = {'images_type': 'qcow2', 'force_raw_images': True, 'remote_filesystem_transport': 'ssh'}
    assert preflight.nova_conf_risks(facts, 'dir', False) == []
    assert 'backend: rbd' in preflight.nova_conf_risks(dict(facts, images_type='rbd'), 'dir', False)[0]['fix']
    cutover = preflight.nova_conf_risks(facts, 'rbd', False)
    assert cutover[0]['severity'] == 'info' and 'finalize=true' in cutover[0]['message']
    assert preflight.nova_conf_risks(dict(facts, remote_filesystem_transport='rsync'), 'dir', False) == []  # the plan's
    forced = preflight.nova_conf_risks(dict(facts, remote_filesystem_transport='rsync'), 'dir', True)
    assert forced[0]['severity'] == 'warning'


def test_running_instances_and_failing_plans():
    instances = {'a': {'result': 'skipped', 'reason': 'the domain is running (running: skip)', 'disks': []},
                 'b': {'result': 'failed', 'reason': 'disk.info disagrees', 'disks': []},
                 'c': {'result': 'adopted', 'disks': [{'method': 'link'}]}}
    risks = preflight.plan_risks(instances, 'skip')
    assert [item['severity'] for item in risks] == ['warning', 'blocking']
    assert '1 instance(s) run (a)' in risks[0]['message'] and 'running=live' in risks[0]['fix']
    assert 'instance b would fail: disk.info disagrees' in risks[1]['message']
    assert preflight.blocked(risks) and not preflight.blocked(risks[:1])


def test_os_family_from_os_release(tmp_path):
    release = tmp_path / 'os-release'
    release.write_text('NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\n')
    assert preflight.os_family(str(release)) == 'RedHat'
    release.write_text('ID=ubuntu\nID_LIKE=debian\n')
    assert preflight.os_family(str(release)) == 'Debian'
    release.write_text('ID=opensuse-leap\nID_LIKE="suse opensuse"\n')
    assert preflight.os_family(str(release)) is None
    assert preflight.os_family(str(tmp_path / 'missing')) is None


def test_mountinfo_is_read_by_device_with_escaped_paths(tmp_path):
    info = tmp_path / 'mountinfo'
    info.write_text('22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n'
                    '90 22 0:55 / /var/tmp/with\\040space rw - tmpfs tmpfs rw,size=65536k\n')
    found = preflight.mounts(str(info))
    assert found[(0, 55)] == {'mountpoint': '/var/tmp/with space', 'fstype': 'tmpfs', 'source': 'tmpfs'}
    assert found[(254, 0)]['fstype'] == 'ext4'
