# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Applying an instance's plan: each step journalled before it runs, fault switches by step name, a failure
undoes its group's steps only."""

from __future__ import annotations

import json

import pytest

from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.instance_plan import InstancePlan
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.faults import FAULT_ENV, InjectedFault
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.journal import Journal

KEY = '6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b'


def plan_of(done, fail=None):
    """import/verify per disk (undo: forget the disk), kept, then the domain."""
    plan = InstancePlan(KEY)

    def step(name):
        def do():
            if name == fail:
                raise RuntimeError('%s failed' % name)
            done.append(name)
        return do

    for disk in ('disk', 'disk.local'):
        plan.add('import', step('import ' + disk), disk=disk, undo=lambda disk=disk: done.append('undo ' + disk))
        plan.add('verify', step('verify ' + disk), disk=disk)
    plan.keep()
    plan.add('domain', step('domain'))
    return plan


def test_every_step_is_journalled_then_done_and_the_run_finishes(tmp_path):
    done = []
    journal = Journal(str(tmp_path))
    plan_of(done).apply(journal)
    assert done == ['import disk', 'verify disk', 'import disk.local', 'verify disk.local', 'domain']
    with open(journal.path(KEY)) as handle:
        entry = json.load(handle)
    assert [(step['step'], step.get('disk')) for step in entry['history'][-1]['steps']] == [
        ('import', 'disk'), ('verify', 'disk'), ('import', 'disk.local'), ('verify', 'disk.local'), ('domain', None)]
    assert entry['result'] == 'adopted' and entry['current'] is None


def test_a_failed_step_undoes_its_group_newest_first_and_re_raises(tmp_path):
    done = []
    with pytest.raises(RuntimeError):
        plan_of(done, fail='verify disk.local').apply(Journal(str(tmp_path)))
    assert done == ['import disk', 'verify disk', 'import disk.local', 'undo disk.local', 'undo disk']


def test_what_was_kept_stays_when_a_later_step_fails(tmp_path):
    done = []
    with pytest.raises(RuntimeError):
        plan_of(done, fail='domain').apply(Journal(str(tmp_path)))
    assert 'undo disk' not in done and 'undo disk.local' not in done


def test_a_fault_switch_names_a_journalled_step(tmp_path, monkeypatch):
    monkeypatch.setenv(FAULT_ENV, 'verify:2')
    done = []
    journal = Journal(str(tmp_path))
    with pytest.raises(InjectedFault):
        plan_of(done).apply(journal)
    assert done == ['import disk', 'verify disk', 'import disk.local', 'undo disk.local', 'undo disk']
    assert journal.under_way(KEY, 'verify', disk='disk.local') is not None  # the journal shows where it stopped
