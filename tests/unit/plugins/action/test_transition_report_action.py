# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The transition_report action plugin in-process: which files a run and a check-mode run write, and how
(atomically, 0644, never through a planted symlink or into a FIFO)."""

from __future__ import annotations

import json
import os
import stat
import threading
from unittest.mock import MagicMock

import pytest
from ansible.errors import AnsibleActionFail
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play_context import PlayContext
from ansible.playbook.task import Task
from ansible.template import Templar

from ansible_collections.storagepools.libvirt.plugins.action.transition_report import (
    ActionModule,
    host_file,
    write_reports,
)

UUID = '0b3b6a2b-5a34-4b8e-9d3e-4f8e6f0e2b11'
ADOPTION = {'summary': {'adopted': 1, 'already_adopted': 0, 'skipped': 0, 'failed': 0},
            'instances': {UUID: {'result': 'adopted', 'reason': None, 'domain': 'instance-00000001', 'seconds': 1.0,
                                 'disks': [{'name': 'disk', 'method': 'copy', 'bytes': 4096}], 'actions': []}}}
REAL = ['compute1.json', 'transition-report.json', 'transition-report.txt', 'transition-report.html']
PLAN = ['compute1.plan.json', 'transition-plan.json', 'transition-plan.txt', 'transition-plan.html']


def run(dest, check_mode=False, **args):
    task = Task()
    task.args = dict({'dest': str(dest), 'hosts': ['compute1', 'compute2']}, **args)
    task.check_mode = check_mode
    loader = DataLoader()
    action = ActionModule(task, MagicMock(), PlayContext(), loader, Templar(loader), None)
    # compute2 registered nothing (it failed before the adoption): left out
    return action.run(task_vars={'hostvars': {'compute1': {'storagepools_adoption': ADOPTION}, 'compute2': {}}})


def test_a_run_writes_json_text_and_html_and_a_rerun_of_the_same_content_rewrites_nothing(tmp_path):
    result = run(tmp_path)
    assert result['written'] == REAL and result['hosts'] == 1 and result['plan'] is False
    assert result['html'] == str(tmp_path / 'transition-report.html')
    for name in REAL:
        assert stat.S_IMODE(os.lstat(tmp_path / name).st_mode) == 0o644
    assert json.loads((tmp_path / 'transition-report.json').read_text())[0]['bytes'] == 4096
    assert (tmp_path / 'transition-report.html').read_text().startswith('<!DOCTYPE html>')
    before = {name: os.stat(tmp_path / name).st_ino for name in REAL[:3]}
    assert set(run(tmp_path)['written']) <= {'transition-report.html'}  # the page carries the time it was made
    assert {name: os.stat(tmp_path / name).st_ino for name in REAL[:3]} == before  # JSON and text untouched


def test_check_mode_writes_the_plan_beside_the_last_real_report_never_over_it(tmp_path):
    run(tmp_path)
    real = {name: (tmp_path / name).read_bytes() for name in REAL}
    result = run(tmp_path, check_mode=True)
    assert result['written'] == PLAN and result['plan'] is True
    assert {name: (tmp_path / name).read_bytes() for name in REAL} == real
    assert 'PLAN' in (tmp_path / 'transition-plan.html').read_text()
    assert result['text'][0].startswith('storagepools.libvirt transition PLAN')


def test_a_symlink_planted_at_a_report_name_is_replaced_its_target_untouched(tmp_path):
    victim = tmp_path / 'victim'
    victim.write_text('precious\n')
    dest = tmp_path / 'report'
    dest.mkdir()
    for name in REAL:
        os.symlink(victim, dest / name)
    run(dest)
    assert victim.read_text() == 'precious\n'
    assert not any(os.path.islink(dest / name) for name in REAL)


def test_a_fifo_planted_at_a_report_name_is_not_waited_on(tmp_path):
    os.mkfifo(tmp_path / 'transition-report.txt')
    worker = threading.Thread(target=run, args=(tmp_path,), daemon=True)
    worker.start()
    worker.join(30)
    assert not worker.is_alive()
    assert stat.S_ISREG(os.lstat(tmp_path / 'transition-report.txt').st_mode)


def test_risks_reach_the_report_and_wrong_ones_are_refused_naming_the_option(tmp_path):
    run(tmp_path, risks=[{'severity': 'blocking', 'host': 'compute1', 'message': 'disks pool too small',
                          'fix': 'storagepools_disks_path'}, {'severity': 'info', 'host': 'compute9', 'message': 'x'}])
    entry = json.loads((tmp_path / 'transition-report.json').read_text())[0]
    assert [risk['message'] for risk in entry['risks']] == ['disks pool too small']  # compute9's is not compute1's
    assert 'disks pool too small' in (tmp_path / 'transition-report.html').read_text()
    with pytest.raises(AnsibleActionFail, match='risks: item 0 needs a message'):
        run(tmp_path, risks=[{'severity': 'info'}])


def test_host_files_never_leave_dest_nor_replace_the_aggregate():
    assert host_file('compute1.example.org', False) == 'compute1.example.org.json'
    assert host_file('compute1', True) == 'compute1.plan.json'
    assert host_file('../../etc/x', False) == 'host-..%2F..%2Fetc%2Fx.json'
    assert host_file('transition-report', False) == 'host-transition-report.json'
    assert host_file('.hidden', False) == 'host-.hidden.json'


def test_write_reports_makes_dest_and_says_which_it_wrote(tmp_path):
    dest = tmp_path / 'a' / 'b'
    assert write_reports(str(dest), {'x.txt': 'one\n'}) == ['x.txt']
    assert write_reports(str(dest), {'x.txt': 'one\n'}) == []
    os.chmod(dest / 'x.txt', 0o666)  # a wrong mode is put right
    assert write_reports(str(dest), {'x.txt': 'one\n'}) == ['x.txt']
    assert stat.S_IMODE(os.stat(dest / 'x.txt').st_mode) == 0o644


PRUNE = {'summary': {'kept': 1, 'quarantined': 1, 'purged': 0, 'restored': 0, 'failed': 0,
                     'quarantined_bytes': 8192, 'purged_bytes': 0, 'restored_bytes': 0},
         'reclaimed': [{'pool': 'disks', 'volume': UUID + '_disk', 'action': 'kept', 'bytes': 4096,
                        'reason': 'its instance has domain'},
                       {'pool': 'disks', 'volume': '6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b_disk', 'action': 'quarantined',
                        'bytes': 8192, 'reason': 'orphan: no domain, instance directory or record uses it'}],
         'ignored': []}


def test_a_maintain_report_has_the_reclaimed_volumes_in_files_of_its_own(tmp_path):
    run(tmp_path)
    transition = {name: (tmp_path / name).read_bytes() for name in REAL}
    task = Task()
    task.args = {'dest': str(tmp_path), 'hosts': ['compute1'], 'name': 'maintain', 'prune_var': 'storagepools_prune'}
    task.check_mode = False
    loader = DataLoader()
    action = ActionModule(task, MagicMock(), PlayContext(), loader, Templar(loader), None)
    result = action.run(task_vars={'hostvars': {'compute1': {'storagepools_adoption': ADOPTION,
                                                             'storagepools_prune': PRUNE}}})
    assert result['written'] == ['compute1.maintain.json', 'maintain-report.json', 'maintain-report.txt',
                                 'maintain-report.html']
    assert {name: (tmp_path / name).read_bytes() for name in REAL} == transition  # the transition's untouched
    entry = json.loads((tmp_path / 'compute1.maintain.json').read_text())
    assert entry['reclaim']['summary']['quarantined_bytes'] == 8192
    assert [volume['action'] for volume in entry['reclaim']['volumes']] == ['quarantined', 'kept']
    text = (tmp_path / 'maintain-report.txt').read_text()
    assert text.startswith('storagepools.libvirt maintain report: 1 host(s)')
    assert 'reclaimed: quarantined 1 (8.0 KiB), purged 0 (0 B), restored 0, kept 1, failed 0' in text
    page = (tmp_path / 'maintain-report.html').read_text()
    assert 'data-action="quarantined"' in page and 'orphan: no domain' in page
    assert host_file('maintain-report', False, 'maintain') == 'host-maintain-report.maintain.json'
