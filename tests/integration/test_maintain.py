# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The daily playbook (storagepools.libvirt.maintain) on a transitioned fake Nova host: Nova deleted one
instance and made a new legacy one since the transition."""

from __future__ import annotations

import json
import os
import sys

import pytest
from conftest import libvirt
from nova_host import NovaHost
from test_nova_storage_prune import nova_deletes, sha256
from test_roles import recaps, run_playbook


@pytest.fixture
def host(conn, pools, workdir):
    root = os.path.join(workdir, 'dayhost')
    nova = NovaHost(conn, root, pools.new())
    nova.cache_pool, nova.disks_pool = pools.new(), pools.new()
    nova.disks_dir = os.path.join(root, 'disks')
    nova.quarantine_dir = os.path.join(root, '.disks.quarantine')
    nova.report_dir = os.path.join(workdir, 'report')
    nova.inventory = os.path.join(workdir, 'day-inventory.ini')
    nova.kept, nova.deleted = nova.instance(config=False), nova.instance(config=False)
    with open(nova.inventory, 'w') as handle:
        handle.write(' '.join([
            'dayhost', 'ansible_connection=local', 'ansible_python_interpreter=%s' % sys.executable,
            'storagepools_instances_path=%s' % nova.instances, 'storagepools_disks_path=%s' % nova.disks_dir,
            'storagepools_cache_pool=%s' % nova.cache_pool, 'storagepools_disks_pool=%s' % nova.disks_pool,
            'storagepools_nova_conf=%s' % nova.nova_conf, 'storagepools_state_dir=%s/state' % root,
            'storagepools_report_dir=%s' % nova.report_dir]) + '\n')
    yield nova
    nova.cleanup()


def host_state(conn, nova):
    """Everything a run could change: the pools' files (checksums) and listings, the quarantine, every
    domain's inactive XML, the guest view of every remaining instance, what the instance directories hold."""
    def files(directory):
        return dict((name, sha256(os.path.join(directory, name))) for name in sorted(os.listdir(directory))) \
            if os.path.isdir(directory) else None
    domains = {}
    for uuid in nova.domain_uuids:
        try:
            domains[uuid] = conn.lookupByUUIDString(uuid).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        except libvirt.libvirtError:
            domains[uuid] = None
    instances = dict((entry, sorted((name, os.path.islink(os.path.join(nova.instances, entry, name)))
                                    for name in os.listdir(os.path.join(nova.instances, entry))))
                     for entry in sorted(os.listdir(nova.instances)) if entry != '_base')
    return {'disks': files(nova.disks_dir), 'quarantine': files(nova.quarantine_dir), 'base': files(nova.base_dir),
            'listed': dict((pool, sorted(conn.storagePoolLookupByName(pool).listVolumes()))
                           for pool in (nova.cache_pool, nova.disks_pool)),
            'domains': domains, 'instances': instances,
            'guest': dict((uuid, nova.checksums(uuid)) for uuid in instances if uuid in nova.domain_uuids)}


def report_files(nova):
    files = {}
    for name in sorted(os.listdir(nova.report_dir)):
        with open(os.path.join(nova.report_dir, name), 'rb') as handle:
            files[name] = handle.read()
    return files


def test_maintain_adopts_the_new_instance_quarantines_the_orphan_and_reports_why(installed, conn, host):
    code, out = run_playbook(installed, 'transition', host.inventory)
    assert code == 0, out
    orphans = ['%s_%s' % (host.deleted, name) for name in ('disk', 'disk.local')]
    orphan_bytes = sum(os.stat(os.path.join(host.disks_dir, name)).st_blocks * 512 for name in orphans)
    nova_deletes(conn, host, host.deleted)
    fresh, excluded = host.instance(config=False), host.instance(config=False)
    guest = {uuid: host.checksums(uuid) for uuid in (host.kept, fresh, excluded)}
    day = ['-e', 'storagepools_prune_orphan_min_age=0', '-e', '{"storagepools_exclude_instances": ["%s"]}' % excluded]

    before = host_state(conn, host)
    code, out = run_playbook(installed, 'maintain', host.inventory, '--check', *day)
    assert code == 0, out
    assert host_state(conn, host) == before  # check mode changed nothing
    with open(os.path.join(host.report_dir, 'maintain-plan.json')) as handle:
        plan = json.load(handle)[0]
    assert plan['instances'][fresh]['result'] == 'adopted'
    assert sorted(entry['volume'] for entry in plan['reclaim']['volumes'] if entry['action'] == 'quarantined') == orphans
    assert not os.path.exists(os.path.join(host.report_dir, 'maintain-report.json'))

    code, out = run_playbook(installed, 'maintain', host.inventory, *day)
    assert code == 0, out
    assert recaps(out)['dayhost']['changed'] != '0'
    assert os.path.islink(os.path.join(host.instances, fresh, 'disk'))  # adopted
    assert not os.path.islink(os.path.join(host.instances, excluded, 'disk'))  # left alone, as told
    assert sorted(os.listdir(host.quarantine_dir)) == orphans
    assert {uuid: host.checksums(uuid) for uuid in guest} == guest

    with open(os.path.join(host.report_dir, 'maintain-report.json')) as handle:
        report = json.load(handle)
    assert [entry['host'] for entry in report] == ['dayhost']
    entry = report[0]
    assert entry['summary'] == {'adopted': 1, 'already_adopted': 1, 'skipped': 1, 'failed': 0}, entry
    assert 'storagepools_exclude_instances' in entry['instances'][excluded]['reason']
    volumes = dict((item['volume'], item) for item in entry['reclaim']['volumes'] if item['pool'] == host.disks_pool)
    bases = [item for item in entry['reclaim']['volumes'] if item['pool'] == host.cache_pool]
    assert bases and all(item['action'] == 'kept' for item in bases), bases  # young, and used by overlays
    assert sorted(name for name, item in volumes.items() if item['action'] == 'quarantined') == orphans
    for name in orphans:
        assert volumes[name]['reason'].startswith('orphan: no domain, instance directory or record uses it')
    assert entry['reclaim']['summary']['quarantined_bytes'] == orphan_bytes > 0
    assert entry['reclaim']['summary']['purged'] == 0
    kept = [item for item in volumes.values() if item['action'] == 'kept']
    assert sorted(item['volume'] for item in kept) == sorted(
        '%s_%s' % (uuid, name) for uuid in (host.kept, fresh) for name in ('disk', 'disk.local'))
    assert all(item['reason'].startswith('its instance has domain') for item in kept)
    with open(os.path.join(host.report_dir, 'dayhost.maintain.json')) as handle:
        assert json.load(handle) == entry
    with open(os.path.join(host.report_dir, 'maintain-report.txt')) as handle:
        text = handle.read()
    assert text.startswith('storagepools.libvirt maintain report: 1 host(s)')
    assert 'reclaimed: quarantined 2 (' in text and 'kept %d, failed 0' % (4 + len(bases)) in text, text
    assert [line for line in text.splitlines() if orphans[0] in line][0].split()[3] == 'quarantined'
    with open(os.path.join(host.report_dir, 'maintain-report.html')) as handle:
        page = handle.read()
    for name in orphans:
        assert 'data-volume="%s" data-action="quarantined"' % name in page
    assert 'orphan: no domain, instance directory or record uses it' in page
    assert os.path.exists(os.path.join(host.report_dir, 'transition-report.json'))  # the transition's, kept

    # a second run the same minute changes nothing; its check mode neither
    after = host_state(conn, host)
    code, out = run_playbook(installed, 'maintain', host.inventory, *day)
    assert code == 0, out
    assert recaps(out)['dayhost']['changed'] == '0', out
    assert host_state(conn, host) == after
    real = {name: data for name, data in report_files(host).items() if 'plan' not in name and name.endswith('.json')}
    code, out = run_playbook(installed, 'maintain', host.inventory, '--check', *day)
    assert code == 0, out
    assert recaps(out)['dayhost']['changed'] == '0', out
    assert host_state(conn, host) == after
    assert {name: data for name, data in report_files(host).items() if name in real} == real
    with open(os.path.join(host.report_dir, 'maintain-plan.json')) as handle:
        plan = json.load(handle)[0]
    assert plan['reclaim']['summary']['quarantined'] == 0 and plan['summary']['adopted'] == 0


def test_restore_through_the_playbook_brings_a_quarantined_volume_back(installed, conn, host):
    code, out = run_playbook(installed, 'transition', host.inventory)
    assert code == 0, out
    disk = '%s_disk' % host.deleted
    data = sha256(os.path.join(host.disks_dir, disk))
    nova_deletes(conn, host, host.deleted)
    code, out = run_playbook(installed, 'maintain', host.inventory, '-e', 'storagepools_prune_orphan_min_age=0')
    assert code == 0, out
    assert disk in os.listdir(host.quarantine_dir)
    code, out = run_playbook(installed, 'maintain', host.inventory, '-e', '{"storagepools_prune_restore": ["%s"]}' % disk)
    assert code == 0, out
    assert sha256(os.path.join(host.disks_dir, disk)) == data
    with open(os.path.join(host.report_dir, 'maintain-report.json')) as handle:
        volumes = dict((item['volume'], item['action']) for item in json.load(handle)[0]['reclaim']['volumes'])
    assert volumes[disk] == 'restored'
    code, out = run_playbook(installed, 'maintain', host.inventory, '-e', 'storagepools_prune_orphn_min_age=0')
    assert code != 0 and 'unknown variable(s) storagepools_prune_orphn_min_age' in out, out


def test_maintain_on_a_host_never_transitioned_fails_naming_the_pool_and_makes_none(installed, pools, host):
    code, out = run_playbook(installed, 'maintain', host.inventory)
    assert code != 0, out
    final = out.split('Fail naming the role variable behind the module option at fault')[-1]
    assert "storagepools_cache_pool: libvirt has no pool named '%s'" % host.cache_pool in final, out
    assert pools.lookup(host.cache_pool) is None and pools.lookup(host.disks_pool) is None
    assert not os.path.exists(host.disks_dir) and not os.path.exists(host.report_dir)
