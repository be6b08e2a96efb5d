# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A verified no-op of virt_pool_ensure, as Ansible runs it (AnsiballZ): kept, reused, and never a reason to
miss a drift.

The record's result is marked by hand (as root, key untouched) to see when a run returned it rather than
comparing again."""

from __future__ import annotations

import glob
import json
import os

from conftest import libvirt, playbook

INACTIVE = libvirt.VIR_STORAGE_XML_INACTIVE


def task(name, target, state_dir, **extra):
    """The task, and a copy of its result beside ``target`` for the test to read."""
    args = dict(name=name, type='dir', target=target, state_dir=state_dir, permissions={'mode': '0755'}, **extra)
    return '''\
        - storagepools.libvirt.virt_pool_ensure: %s
          register: ensured
        - ansible.builtin.copy:
            content: "{{ ensured | to_json }}"
            dest: %s
    ''' % (json.dumps(args), target + '.result.json')


def run(installed, name, target, state_dir, **extra):
    returncode, output = playbook(installed, task(name, target, state_dir, **extra))
    assert returncode == 0, output
    with open(target + '.result.json') as handle:
        return json.load(handle)


def the_record(state_dir):
    records = glob.glob(os.path.join(state_dir, 'noop', '*'))
    assert len(records) == 1, records
    return records[0]


def mark(record):
    with open(record) as handle:
        content = json.load(handle)
    content['result']['marked'] = True
    with open(record, 'w') as handle:
        json.dump(content, handle)


def test_a_verified_noop_is_reused_until_anything_it_depends_on_changes(installed, conn, pools, workdir):
    name, target, state_dir = pools.new(), os.path.join(workdir, 'pool'), os.path.join(workdir, 'state')
    made = run(installed, name, target, state_dir)
    assert made['changed'] is True
    assert not os.path.exists(os.path.join(state_dir, 'noop'))  # a run that changed keeps no record

    first = run(installed, name, target, state_dir)
    assert first['changed'] is False and first['actions'] == []
    record = the_record(state_dir)
    assert os.stat(os.path.dirname(record)).st_mode & 0o777 == 0o700
    assert os.stat(record).st_mode & 0o777 == 0o600
    mark(record)
    assert run(installed, name, target, state_dir).get('marked') is True  # returned from the record

    # another option: compared in full
    assert run(installed, name, target, state_dir, restart=True).get('marked') is None

    # a drift behind the task's back (an operator's virsh edit): compared in full, and redefined
    pool = pools.lookup(name)
    conn.storagePoolDefineXML(pool.XMLDesc(INACTIVE).replace('<mode>0755</mode>', '<mode>0700</mode>'), 0)
    drifted = run(installed, name, target, state_dir)
    assert drifted.get('marked') is None
    assert drifted['changed'] is True and 'redefine' in [step['action'] for step in drifted['actions']]

    # state: a stopped pool is started, not taken from the record
    run(installed, name, target, state_dir)
    mark(the_record(state_dir))
    pool.destroy()
    started = run(installed, name, target, state_dir)
    assert started.get('marked') is None and started['changed'] is True
    assert pools.lookup(name).isActive()

    # the record goes with the pool
    run(installed, name, target, state_dir)
    the_record(state_dir)
    assert run(installed, name, target, state_dir, state='absent')['changed'] is True
    assert os.listdir(os.path.join(state_dir, 'noop')) == []


def test_a_record_root_alone_could_not_have_written_is_ignored(installed, pools, workdir):
    name, target, state_dir = pools.new(), os.path.join(workdir, 'pool'), os.path.join(workdir, 'state')
    run(installed, name, target, state_dir)
    run(installed, name, target, state_dir)
    record = the_record(state_dir)
    mark(record)
    os.chmod(record, 0o622)  # writable by others: whatever it says decides nothing
    assert run(installed, name, target, state_dir).get('marked') is None
    assert os.stat(record).st_mode & 0o777 == 0o600  # the full comparison wrote a private one in its place
    mark(record)
    os.chmod(os.path.dirname(record), 0o777)
    assert run(installed, name, target, state_dir).get('marked') is None
    os.chmod(os.path.dirname(record), 0o700)
    mark(record)
    assert run(installed, name, target, state_dir).get('marked') is True


def test_check_mode_and_a_state_dir_that_cannot_be_used_keep_no_record(installed, pools, workdir):
    name, target, state_dir = pools.new(), os.path.join(workdir, 'pool'), os.path.join(workdir, 'state')
    run(installed, name, target, state_dir)
    returncode, output = playbook(installed, task(name, target, state_dir), '--check')
    assert returncode == 0, output
    assert not os.path.exists(os.path.join(state_dir, 'noop'))
    blocked = os.path.join(workdir, 'blocked')
    with open(blocked, 'w') as handle:
        handle.write('a file where the state directory would be')
    unusable = run(installed, name, target, os.path.join(blocked, 'state'))  # the task runs, keeps no record
    assert unusable['changed'] is False and unusable['actions'] == []
