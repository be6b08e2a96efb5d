# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The roles and collection playbooks, run by ansible-playbook on fake Nova hosts (the installed collection)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest
import yaml
from conftest import BIN, ansible_env, libvirt
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


ROLES = ['pools', 'image_cache', 'transition']
WRONG_FOR_EVERY_ROLE = [
    (['storagepools_backend=zfs'], 'storagepools_backend'),
    (['storagepools_cache_pool=bad/name'], 'pool name'),
    (['storagepools_backend=rbd', '{"storagepools_rbd": {"pool": "vms", "mons": [], "user": "nova"}}'],
     'key or a keyring'),
]
NOT_YET = [  # the logical backend without its volume group
    (role, ['storagepools_backend=logical'], 'storagepools_vg') for role in ('pools', 'transition')]


@pytest.mark.parametrize('role, variables, expected', [
    (role, variables, expected) for role in ROLES for variables, expected in WRONG_FOR_EVERY_ROLE] + NOT_YET)
def test_roles_reject_wrong_variables_before_touching_anything(installed, conn, pools, workdir, role, variables,
                                                               expected):
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


def test_rbd_transition_imports_then_finalizes_after_nova_conf_is_switched(
        installed, conn, pools, workdir, ceph, ceph_user):
    """The rbd backend end to end: secret, pool, image cache import, cutover, report; then finalize."""
    user, key, _keyring, _usage, _uuid = ceph_user
    root = os.path.join(workdir, 'rbdhost')
    nova = NovaHost(conn, root, pools.new(), base_image_id=root)  # a base name of its own in the shared Ceph pool
    uuids = [nova.instance(config=False) for _instance in range(2)]
    before = {uuid: nova.checksums(uuid) for uuid in uuids}
    cache, disks, state = pools.new(), pools.new(), os.path.join(root, 'state')
    variables = os.path.join(workdir, 'rbd-vars.json')  # the key in a 0600 file, never on a command line
    with open(os.open(variables, os.O_WRONLY | os.O_CREAT, 0o600), 'w') as handle:
        json.dump({'storagepools_backend': 'rbd', 'storagepools_cache_pool': cache, 'storagepools_disks_pool': disks,
                   'storagepools_instances_path': nova.instances, 'storagepools_nova_conf': nova.nova_conf,
                   'storagepools_state_dir': state, 'storagepools_report_dir': os.path.join(workdir, 'report'),
                   'storagepools_rbd': {'pool': ceph.pool, 'mons': [ceph.mon], 'user': user, 'key': key},
                   'ansible_python_interpreter': sys.executable}, handle)
    inventory = os.path.join(workdir, 'rbd-inventory.ini')
    with open(inventory, 'w') as handle:
        handle.write('rbdhost ansible_connection=local\n')
    try:
        code, out = run_playbook(installed, 'transition', inventory, '-e', '@' + variables)
        assert code == 0, out
        assert key not in out
        keyring = os.path.join(state, 'ceph.client.%s.keyring' % user)
        assert oct(os.stat(keyring).st_mode & 0o777) == '0o600'
        with open(os.path.join(workdir, 'report', 'rbdhost.json')) as handle:
            report = json.load(handle)
        assert report['summary']['adopted'] == 2
        settings = report['nova_conf_settings']
        assert settings['libvirt']['images_type'] == 'rbd' and settings['libvirt']['rbd_user'] == user
        with open(os.path.join(workdir, 'report', 'transition-report.txt')) as handle:
            assert '[libvirt] images_type = rbd' in handle.read()
        images = ceph.rbd_ls()
        assert os.path.basename(nova.base) in images  # the image cache, imported
        for uuid in uuids:
            assert {'%s_disk' % uuid, '%s_disk.local' % uuid} <= set(images)
            assert nova.checksums(uuid) == before[uuid]  # legacy files kept until finalize

        code, out = run_playbook(installed, 'transition', inventory, '-e', '@' + variables)
        assert code == 0, out
        assert all(recap['changed'] == '0' for recap in recaps(out).values()), out

        code, out = run_playbook(installed, 'transition', inventory, '-e', '@' + variables,
                                 '-e', 'storagepools_finalize=true')
        assert code != 0 and 'finalize: ' in out  # nova.conf still says qcow2
        with open(nova.nova_conf, 'w') as handle:
            for section, values in settings.items():
                handle.write('[%s]\n' % section + ''.join('%s = %s\n' % item for item in values.items()))
        code, out = run_playbook(installed, 'transition', inventory, '-e', '@' + variables,
                                 '-e', 'storagepools_finalize=true')
        assert code == 0, out
        for uuid in uuids:
            assert not os.path.exists(os.path.join(nova.instances, uuid, 'disk'))
            assert {name: ceph.image_sha256('%s_%s' % (uuid, name), workdir) for name in before[uuid]} == before[uuid]
    finally:
        nova.cleanup()
        for uuid in uuids:
            ceph.remove_images(uuid)
        ceph.remove_images(os.path.basename(nova.base))


def test_the_rbd_transition_never_leaks_the_key(installed, conn, pools, workdir, ceph, ceph_user):
    """-vvvv --diff through the roles: the key is in no output, report, pool or domain XML; the specs hide it."""
    user, key, _keyring, _usage, _uuid = ceph_user
    root = os.path.join(workdir, 'leakhost')
    nova = NovaHost(conn, root, pools.new(), base_image_id=root)  # a base name of its own in the shared Ceph pool
    uuids = [nova.instance(config=False)]
    cache, disks, report_dir = pools.new(), pools.new(), os.path.join(workdir, 'report')
    variables = os.path.join(workdir, 'leak-vars.json')
    with open(os.open(variables, os.O_WRONLY | os.O_CREAT, 0o600), 'w') as handle:
        json.dump({'storagepools_backend': 'rbd', 'storagepools_cache_pool': cache, 'storagepools_disks_pool': disks,
                   'storagepools_instances_path': nova.instances, 'storagepools_nova_conf': nova.nova_conf,
                   'storagepools_state_dir': os.path.join(root, 'state'), 'storagepools_report_dir': report_dir,
                   'storagepools_rbd': {'pool': ceph.pool, 'mons': [ceph.mon], 'user': user, 'key': key},
                   'ansible_python_interpreter': sys.executable}, handle)
    inventory = os.path.join(workdir, 'leak-inventory.ini')
    with open(inventory, 'w') as handle:
        handle.write('leakhost ansible_connection=local\n')
    forms = (key, base64.b64decode(key).hex(), repr(base64.b64decode(key))[2:-1])
    try:
        code, out = run_playbook(installed, 'transition', inventory, '-vvvv', '--diff', '-e', '@' + variables)
        assert code == 0, out
        seen = {'playbook output': out}
        for name in os.listdir(report_dir):
            with open(os.path.join(report_dir, name)) as handle:
                seen['report ' + name] = handle.read()
        for name in (cache, disks):
            pool = conn.storagePoolLookupByName(name)
            seen['pool %s' % name] = pool.XMLDesc(0) + pool.XMLDesc(libvirt.VIR_STORAGE_XML_INACTIVE)
            with open('/etc/libvirt/storage/%s.xml' % name) as handle:
                seen['pool file %s' % name] = handle.read()
        for uuid in uuids:
            seen['domain %s' % uuid] = conn.lookupByUUIDString(uuid).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        assert [where for where, text in seen.items() if any(form in text for form in forms)] == []
        for role in ('pools', 'image_cache', 'transition'):
            with open(os.path.join(installed, 'ansible_collections/storagepools/libvirt/roles', role, 'meta',
                                   'argument_specs.yml')) as handle:
                spec = yaml.safe_load(handle)['argument_specs']['main']['options']['storagepools_rbd']
            assert spec.get('options', {}).get('key', {}).get('no_log') is True, '%s: storagepools_rbd.key' % role
    finally:
        nova.cleanup()
        for uuid in uuids:
            ceph.remove_images(uuid)
        ceph.remove_images(os.path.basename(nova.base))


def test_role_messages_name_the_role_variables(installed, conn, pools, workdir):
    """The report's reasons and a failure of the adoption task name storagepools_* variables, not module options."""
    root = os.path.join(workdir, 'onehost')
    nova = NovaHost(conn, root, pools.new())
    running, stopped = nova.instance(config=False), nova.instance(config=False)
    report_dir = os.path.join(workdir, 'report')
    inventory = os.path.join(workdir, 'one-inventory.ini')
    with open(inventory, 'w') as handle:
        handle.write(' '.join([
            'onehost', 'ansible_connection=local', 'ansible_python_interpreter=%s' % sys.executable,
            'storagepools_instances_path=%s' % nova.instances, 'storagepools_disks_path=%s/disks' % root,
            'storagepools_cache_pool=%s' % pools.new(), 'storagepools_disks_pool=%s' % pools.new(),
            'storagepools_nova_conf=%s' % nova.nova_conf, 'storagepools_state_dir=%s/state' % root,
            'storagepools_report_dir=%s' % report_dir]) + '\n')
    conn.lookupByUUIDString(running).create()
    try:
        code, out = run_playbook(installed, 'transition', inventory)
        assert code == 0, out
        with open(os.path.join(report_dir, 'transition-report.txt')) as handle:
            text = handle.read()
        line = [row for row in text.splitlines() if running in row][0]
        assert line.endswith('(storagepools_running: skip)'), text
        assert [row for row in text.splitlines() if stopped in row][0].split()[3] == 'adopted'  # host, instance, domain, result

        with open(nova.nova_conf, 'a') as handle:
            handle.write('[libvirt]\nremote_filesystem_transport = rsync\n')
        nova.instance(config=False)
        code, out = run_playbook(installed, 'transition', inventory)
        assert code != 0
        final = out.split('onehost is refused before anything changed')[-1]  # the preflight's refusal
        assert 'storagepools_force: ' in final, out
    finally:
        nova.cleanup()
