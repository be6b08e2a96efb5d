# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Plan/apply: check mode applies nothing, failures roll back newest first."""

from __future__ import annotations

import pytest

from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.faults import FAULT_ENV
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.plan import Plan


def recording_plan(log, fail=None, undo_fails=None):
    plan = Plan()
    for action in ('define', 'build', 'start', 'autostart'):
        def do(action=action):
            if action == fail:
                raise RuntimeError('%s broke' % action)
            log.append('do ' + action)

        def undo(action=action):
            if action == undo_fails:
                raise RuntimeError('cannot undo %s' % action)
            log.append('undo ' + action)
        plan.add(action, '%s the pool' % action, do, undo=None if action == 'autostart' else undo,
                 option='opt_' + action, hint='Fix %s' % action)
    return plan


def test_check_mode_applies_nothing_and_describes_everything():
    log = []
    plan = recording_plan(log)
    plan.apply(check_mode=True)
    assert log == []
    assert [step['action'] for step in plan.describe()] == ['define', 'build', 'start', 'autostart']


def test_apply_runs_the_steps_in_order():
    log = []
    recording_plan(log).apply()
    assert log == ['do define', 'do build', 'do start', 'do autostart']


def test_a_failure_rolls_back_what_was_done_newest_first():
    log = []
    with pytest.raises(StoragePoolsError) as err:
        recording_plan(log, fail='start').apply()
    assert log == ['do define', 'do build', 'undo build', 'undo define']
    error = err.value
    assert error.msg == 'opt_start: start the pool failed. Fix start'
    assert error.libvirt_error == 'start broke'
    assert [step['action'] for step in error.details['actions']] == ['define', 'build']
    assert [step['action'] for step in error.details['rolled_back']] == ['build', 'define']
    assert error.details['failed_action']['action'] == 'start'
    assert 'rollback_errors' not in error.details


def test_a_failing_undo_is_reported_and_the_rest_still_undone():
    log = []
    with pytest.raises(StoragePoolsError) as err:
        recording_plan(log, fail='autostart', undo_fails='start').apply()
    assert log == ['do define', 'do build', 'do start', 'undo build', 'undo define']
    assert err.value.details['rollback_errors'] == ['start the pool: cannot undo start']


def test_explain_overrides_option_and_hint():
    plan = Plan()
    plan.add('build', 'build it', lambda: 1 / 0, option='build', hint='generic',
             explain=lambda exc: ('source.device', 'specific') if isinstance(exc, ZeroDivisionError) else None)
    with pytest.raises(StoragePoolsError) as err:
        plan.apply()
    assert err.value.msg == 'source.device: build it failed. specific'


def test_fault_injection_fails_the_named_step_before_it_runs(monkeypatch):
    monkeypatch.setenv(FAULT_ENV, 'start')
    log = []
    with pytest.raises(StoragePoolsError) as err:
        recording_plan(log).apply()
    assert log == ['do define', 'do build', 'undo build', 'undo define']
    assert err.value.libvirt_error is None
