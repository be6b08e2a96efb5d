# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The roles and collection playbooks, run by ansible-playbook on fake Nova hosts (the installed collection)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import BIN, ansible_env
from nova_host import NovaHost


def run_playbook(installed, name, inventory, *options):
    proc = subprocess.run([os.path.join(BIN, 'ansible-playbook'), 'storagepools.libvirt.' + name, '-i', inventory]
                          + list(options), capture_output=True, text=True, env=ansible_env(installed), timeout=600,
                          check=False)
    return proc.returncode, proc.stdout + proc.stderr


def recaps(output):
    """{host: {ok, changed, failed, ...}} from the PLAY RECAP lines (the last one per host)."""
    result = {}
    for line in output.split('PLAY RECAP')[-1].splitlines():
        if ' : ' in line and 'ok=' in line:
            host, fields = line.split(' : ', 1)
            result[host.strip()] = dict(field.split('=') for field in fields.split())
    return result


@pytest.fixture
def fleet(conn, pools, workdir):
    """Three fake compute hosts on this machine, each with its own instances path, pools and state."""
    hosts = {}
    lines = ['[compute]']
    for index in range(3):
        name = 'compute%d' % index
        root = os.path.join(workdir, name)
        nova = NovaHost(conn, root, pools.new())
        nova.uuids = [nova.instance(config=False) for _instance in range(2)]
        cache, disks = pools.new(), pools.new()
        hosts[name] = nova
        lines.append(' '.join([
            name, 'ansible_connection=local', 'ansible_python_interpreter=%s' % sys.executable,
            'storagepools_instances_path=%s' % nova.instances, 'storagepools_disks_path=%s/disks' % root,
            'storagepools_cache_pool=%s' % cache, 'storagepools_disks_pool=%s' % disks,
            'storagepools_nova_conf=%s' % nova.nova_conf, 'storagepools_state_dir=%s/state' % root]))
    inventory = os.path.join(workdir, 'inventory.ini')
    with open(inventory, 'w') as handle:
        handle.write('\n'.join(lines) + '\n')
    yield hosts, inventory
    for nova in hosts.values():
        nova.cleanup()


def test_transition_of_a_fleet_in_batches_with_an_aggregated_report(installed, fleet, workdir):
    hosts, inventory = fleet
    before = {uuid: nova.checksums(uuid) for nova in hosts.values() for uuid in nova.uuids}
    report_dir = os.path.join(workdir, 'report')
    code, out = run_playbook(installed, 'transition', inventory, '-e', 'storagepools_batch=1',
                             '-e', 'storagepools_report_dir=%s' % report_dir)
    assert code == 0, out
    assert out.count('PLAY [Run storagepools.libvirt transition]') == 3  # one batch per host
    with open(os.path.join(report_dir, 'transition-report.json')) as handle:
        report = json.load(handle)
    assert sorted(entry['host'] for entry in report) == sorted(hosts)
    for entry in report:
        assert entry['summary']['adopted'] == 2
        assert sorted(entry['instances']) == sorted(hosts[entry['host']].uuids)
    with open(os.path.join(report_dir, 'transition-report.txt')) as handle:
        text = handle.read()
    assert 'totals: adopted 6, already_adopted 0, skipped 0, failed 0' in text
    for nova in hosts.values():
        for uuid in nova.uuids:
            assert os.path.islink(os.path.join(nova.instances, uuid, 'disk'))
            assert nova.checksums(uuid) == before[uuid]

    code, out = run_playbook(installed, 'transition', inventory, '-e', 'storagepools_report_dir=%s' % report_dir)
    assert code == 0, out
    assert all(recap['changed'] == '0' for recap in recaps(out).values()), out
    with open(os.path.join(report_dir, 'transition-report.txt')) as handle:
        assert 'already_adopted 6' in handle.read()


def test_a_failing_batch_stops_the_rollout(installed, fleet, workdir):
    hosts, inventory = fleet
    with open(hosts['compute0'].nova_conf, 'a') as handle:  # compute0 refuses: rsync transport
        handle.write('[libvirt]\nremote_filesystem_transport = rsync\n')
    code, out = run_playbook(installed, 'transition', inventory, '-e', 'storagepools_batch=1',
                             '-e', 'storagepools_report_dir=%s' % os.path.join(workdir, 'report'))
    assert code != 0
    assert 'rsync' in out
    for name in ('compute1', 'compute2'):  # the batches after the failed one never ran
        assert not any(os.path.islink(os.path.join(hosts[name].instances, uuid, 'disk'))
                       for uuid in hosts[name].uuids)


@pytest.mark.parametrize('role', ['pools', 'image_cache', 'transition'])
@pytest.mark.parametrize('variables, expected', [
    (['storagepools_backend=zfs'], 'storagepools_backend'),
    (['storagepools_cache_pool=bad/name'], 'pool name'),
    # a missing ceph key: the pools role says so; the others do not do rbd yet and say that first
    (['storagepools_backend=rbd', '{"storagepools_rbd": {"pool": "vms", "mons": [], "user": "nova"}}'],
     {'pools': 'key or a keyring', 'image_cache': 'not implemented', 'transition': 'not implemented'}),
])
def test_roles_reject_wrong_variables_before_touching_anything(installed, conn, pools, workdir, role, variables,
                                                               expected):
    if isinstance(expected, dict):
        expected = expected[role]
    cache = pools.new()
    if 'bad/name' not in variables[0]:
        variables = variables + ['storagepools_cache_pool=%s' % cache]
    playbook = os.path.join(workdir, 'play.yml')
    with open(playbook, 'w') as handle:
        handle.write('- hosts: localhost\n  gather_facts: false\n  roles:\n    - storagepools.libvirt.%s\n' % role)
    options = ['-i', 'localhost,', '-c', 'local', '-e', 'ansible_python_interpreter=%s' % sys.executable,
               '-e', 'storagepools_instances_path=%s' % os.path.join(workdir, 'instances')]
    for variable in variables:
        options += ['-e', variable]
    proc = subprocess.run([os.path.join(BIN, 'ansible-playbook'), playbook] + options, capture_output=True,
                          text=True, env=ansible_env(installed), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert expected in out, out
    assert pools.lookup(cache) is None, 'the role touched libvirt before rejecting its variables'
    assert not os.path.exists(os.path.join(workdir, 'instances'))
