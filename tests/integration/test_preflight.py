# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""`ansible-playbook storagepools.libvirt.preflight`: per host the plan, whether it can succeed and the risks,
changing nothing; and the transition refusing a host the preflight blocks, before anything changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import RUN_ID
from nova_host import NovaHost
from test_check_mode_fresh_host import host_state
from test_roles import recaps, run_playbook


@pytest.fixture
def host(conn, pools, workdir):
    """A fake compute host never transitioned: {nova, uuids, cache, disks, root, inventory(**variables)}."""
    root = os.path.join(workdir, 'preflighthost')
    nova = NovaHost(conn, root, pools.new())
    uuids = [nova.instance(config=index == 0) for index in range(2)]
    cache, disks = pools.new(), pools.new()
    report = os.path.join(workdir, 'report')

    def inventory(python=sys.executable, **variables):
        settings = {'instances_path': nova.instances, 'disks_path': os.path.join(root, 'disks'),
                    'cache_pool': cache, 'disks_pool': disks, 'nova_conf': nova.nova_conf,
                    'state_dir': os.path.join(root, 'state'), 'report_dir': report}
        settings.update(variables)
        path = os.path.join(workdir, 'preflight-inventory.ini')
        with open(path, 'w') as handle:
            handle.write(' '.join(['preflighthost', 'ansible_connection=local', 'ansible_python_interpreter=%s' % python]
                                  + ['storagepools_%s=%s' % item for item in sorted(settings.items())]) + '\n')
        return path
    yield {'nova': nova, 'uuids': uuids, 'cache': cache, 'disks': disks, 'root': root, 'report': report,
           'inventory': inventory}
    nova.cleanup()


def state(conn, host):
    """The pools, files, domain XML and the guest view of every disk (checksums)."""
    seen = host_state(conn, host['nova'], host['uuids'], (host['cache'], host['disks']))
    seen['checksums'] = {uuid: host['nova'].checksums(uuid) for uuid in host['uuids']}
    return seen


def flat(text):
    return ' '.join(text.split())


def plan_file(host):
    with open(os.path.join(host['report'], 'preflighthost.plan.json')) as handle:
        return json.load(handle)


def aggregate_text(host):
    with open(os.path.join(host['report'], 'transition-plan.txt')) as handle:
        return handle.read()


@pytest.fixture
def mounted():
    """mount(kind, size_mib): a filesystem of its own at /var/tmp/preflight-<run>-<kind> (tmpfs, or ext4 on a
    loop-mounted image file); unmounted and removed afterwards."""
    made = []

    def mount(kind, size_mib):
        point = '/var/tmp/preflight-%s-%s' % (RUN_ID, kind)
        os.makedirs(point)
        made.append(point)
        if kind == 'tmpfs':
            subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=%dm,mode=0755' % size_mib, 'tmpfs', point], check=True)
        else:
            image = point + '.img'
            with open(image, 'wb') as handle:
                handle.truncate(size_mib * 1024 * 1024)
            subprocess.run(['mkfs.ext4', '-q', '-F', image], check=True, capture_output=True)
            subprocess.run(['mount', '-o', 'loop', image, point], check=True)
        os.chmod(point, 0o755)
        return point
    yield mount
    for point in made:
        subprocess.run(['umount', point], capture_output=True, check=False)
        os.rmdir(point)
        if os.path.exists(point + '.img'):
            os.unlink(point + '.img')


def test_preflight_of_a_fresh_host_prints_the_plan_and_no_risk_and_changes_nothing(installed, conn, host):
    before = state(conn, host)
    code, out = run_playbook(installed, 'preflight', host['inventory']())
    assert code == 0, out
    assert state(conn, host) == before, 'the preflight changed the host'
    assert 'risks: none on any host' in out, out
    for uuid in host['uuids']:
        assert uuid in out
    planned = plan_file(host)
    assert sorted(planned['instances']) == sorted(host['uuids'])
    assert all(outcome['result'] == 'adopted' for outcome in planned['instances'].values())
    assert {disk['method'] for outcome in planned['instances'].values() for disk in outcome['disks']} == {'link'}
    assert 'risks' not in planned
    assert 'link' in aggregate_text(host) and 'risk ' not in aggregate_text(host)


def test_a_too_small_disks_filesystem_is_a_blocking_risk_and_the_transition_refuses_the_host(
        installed, conn, host, mounted):
    small = mounted('small', 8)
    inventory = host['inventory'](disks_path=os.path.join(small, 'disks'))
    before = state(conn, host)
    code, out = run_playbook(installed, 'preflight', inventory)
    assert code != 0, out
    assert recaps(out)['preflighthost']['failed'] == '1', out
    assert state(conn, host) == before, 'the preflight changed the host'
    text = flat(aggregate_text(host))
    assert 'risk blocking preflighthost:' in text, text
    assert "pool '%s' (%s/disks) needs" % (host['disks'], small) in text and 'available' in text, text
    assert 'on another filesystem (%s) than instances_path' % small in text, text  # the copy path's warning
    # needed vs available, in bytes, in the module's result (the JSON report keeps the message)
    entry = [risk for risk in plan_file(host)['risks'] if risk['severity'] == 'blocking']
    assert len(entry) == 1 and 'storagepools_disks_path' in entry[0]['fix'], entry

    code, out = run_playbook(installed, 'transition', inventory)
    assert code != 0, out
    assert 'preflighthost is refused before anything changed' in flat(out), out
    assert "needs" in flat(out) and 'available' in flat(out)
    assert state(conn, host) == before, 'the transition touched a host the preflight blocks'
    assert not os.path.exists(os.path.join(small, 'disks'))


def test_a_managed_host_without_the_libvirt_bindings_is_told_the_package(installed, conn, host, workdir):
    bare = os.path.join(workdir, 'bare-venv')
    subprocess.run(['/usr/bin/python3', '-m', 'venv', '--without-pip', bare], check=True)
    python = os.path.join(bare, 'bin', 'python')
    probe = subprocess.run([python, '-c', 'import libvirt'], capture_output=True, check=False)
    assert probe.returncode != 0, 'the bare venv sees libvirt: the test proves nothing'
    before = state(conn, host)
    code, out = run_playbook(installed, 'preflight', host['inventory'](python=python))
    assert code != 0, out
    assert 'Traceback' not in out and 'MODULE FAILURE' not in out, out
    text = flat(aggregate_text(host))
    assert 'ansible_python_interpreter: %s on this host lacks the libvirt Python bindings' % python in text, text
    assert 'install python3-libvirt (Debian family)' in text, text
    assert 'install python3-lxml (Debian family)' in text, text
    assert state(conn, host) == before

    code, out = run_playbook(installed, 'transition', host['inventory'](python=python))
    assert code != 0 and 'preflighthost is refused before anything changed' in flat(out), out
    assert 'python3-libvirt' in out
    assert state(conn, host) == before


def test_a_disks_path_on_tmpfs_warns_what_it_costs(installed, conn, host, mounted):
    volatile = mounted('tmpfs', 64)
    before = state(conn, host)
    code, out = run_playbook(installed, 'preflight', host['inventory'](disks_path=os.path.join(volatile, 'disks')))
    assert code == 0, out  # warnings do not block
    assert state(conn, host) == before
    text = flat(aggregate_text(host))
    assert 'risk warning preflighthost: the disks pool target %s/disks is on tmpfs' % volatile in text, text
    assert 'lost at the next reboot' in text, text
    assert 'every disk is copied' in text and "Nova's disk accounting" in text, text
    planned = plan_file(host)
    assert {disk['method'] for outcome in planned['instances'].values() for disk in outcome['disks']} == {'copy'}
    assert 'risk blocking' not in text


def test_running_instances_and_migration_peers_are_reported(installed, conn, host):
    """A running instance: what storagepools_running=skip does with it; the named migration peers: one without
    the disks pool (this very libvirtd, where the pools step has not run), one that does not answer."""
    running = host['uuids'][1]
    conn.lookupByUUIDString(running).create()
    unreachable = 'qemu+unix:///system?socket=/nonexistent/preflight-%s.sock' % RUN_ID
    before = host_state(conn, host['nova'], host['uuids'], (host['cache'], host['disks']))  # qemu holds a lock
    code, out = run_playbook(installed, 'preflight', host['inventory'](), '-e', json.dumps(
        {'storagepools_migration_peers': ['qemu:///system', unreachable]}))
    assert code == 0, out
    assert host_state(conn, host['nova'], host['uuids'], (host['cache'], host['disks'])) == before
    text = flat(aggregate_text(host))
    assert 'risk warning preflighthost: 1 instance(s) run (%s); storagepools_running=skip leaves them' % running in text
    assert "migration peer qemu:///system has no active pool '%s'" % host['disks'] in text, text
    assert "storagepools_migration_peers: cannot connect to libvirt at '%s'" % unreachable in text, text
    assert plan_file(host)['instances'][running]['result'] == 'skipped'
