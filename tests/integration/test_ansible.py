# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The collection as operators get it: built, installed, documented, run by ansible-playbook."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import BIN, ansible_env, playbook, recap


@pytest.mark.parametrize('module', ['virt_pool_ensure', 'virt_pool_info', 'rbd_pool_secret', 'virt_volume_clone',
                                    'legacy_disk_adopt', 'transition_preflight'])
def test_ansible_doc_renders_examples_and_returns(installed, module):
    doc = subprocess.run([os.path.join(BIN, 'ansible-doc'), 'storagepools.libvirt.' + module],
                         capture_output=True, text=True, env=ansible_env(installed), check=False)
    assert doc.returncode == 0, doc.stderr
    assert 'EXAMPLES:' in doc.stdout and 'RETURN VALUES:' in doc.stdout
    assert 'storagepools.libvirt.%s:' % module in doc.stdout  # an example calls it by FQCN
    assert 'uri' in doc.stdout


def test_playbook_check_diff_then_apply_then_idempotent(installed, pools, workdir):
    name = pools.new()
    tasks = '''
        - storagepools.libvirt.virt_pool_ensure:
            name: %s
            type: dir
            target: %s/pool
            permissions: {mode: '0755'}
    ''' % (name, workdir)

    code, out = playbook(installed, tasks, '--check', '--diff')
    assert code == 0, out
    assert recap(out)['changed'] == '1'
    assert '+<pool type="dir">' in out and '+    <path>%s/pool</path>' % workdir in out
    assert pools.lookup(name) is None

    code, out = playbook(installed, tasks, '--diff')
    assert code == 0 and recap(out)['changed'] == '1', out
    assert pools.lookup(name).isActive()

    code, out = playbook(installed, tasks, '--diff')
    assert code == 0 and recap(out)['changed'] == '0', out
    code, out = playbook(installed, tasks, '--check')
    assert code == 0 and recap(out)['changed'] == '0', out


def test_failure_through_ansible_has_no_traceback(installed, pools):
    tasks = '''
        - storagepools.libvirt.virt_pool_ensure:
            name: %s
            type: dir
            target: relative/dir
    ''' % pools.new()
    code, out = playbook(installed, tasks, '-vvv')
    assert code != 0
    assert 'target: target path' in out and 'must be absolute' in out
    assert 'Traceback' not in out and 'MODULE FAILURE' not in out


def test_a_managed_host_without_the_bindings_gets_a_clear_message(installed, pools, workdir):
    bare = os.path.join(workdir, 'bare-venv')
    subprocess.run(['/usr/bin/python3', '-m', 'venv', '--without-pip', bare], check=True)
    python = os.path.join(bare, 'bin', 'python')
    probe = subprocess.run([python, '-c', 'import libvirt'], capture_output=True, check=False)
    assert probe.returncode != 0, 'the bare venv sees libvirt: the test proves nothing'
    name = pools.new()
    tasks = '''
        - storagepools.libvirt.virt_pool_ensure:
            name: %s
            type: dir
            target: %s/pool
          register: outcome
          ignore_errors: true
        - ansible.builtin.copy:
            content: "{{ outcome | to_json }}"
            dest: %s/outcome.json
          vars:
            ansible_python_interpreter: %s
    ''' % (name, workdir, workdir, sys.executable)
    code, out = playbook(installed, tasks, '-vvv', python=python)
    assert code == 0, out
    with open(os.path.join(workdir, 'outcome.json')) as handle:
        outcome = json.load(handle)
    assert outcome['failed'] is True
    assert outcome['msg'].startswith('ansible_python_interpreter: %s' % python)
    assert 'python3-libvirt' in outcome['msg'] and 'python3-lxml' in outcome['msg']
    assert 'Traceback' not in out, out
    # ansible-core 2.19 marks every failure with this placeholder; a real one would be a traceback
    assert outcome.get('exception', '(traceback unavailable)') == '(traceback unavailable)'
    assert pools.lookup(name) is None
