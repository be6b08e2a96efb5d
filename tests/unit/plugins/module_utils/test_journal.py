# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The journal, the host lock and the fault points."""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.storagepools.libvirt.plugins.module_utils.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils.journal import (
    HostLock,
    Journal,
    fault_point,
    write_atomically,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils.plan import FAULT_ENV, InjectedFault


def test_the_journal_records_steps_before_they_run(tmp_path):
    journal = Journal(str(tmp_path))
    journal.step('u1', 'register', disk='disk')
    journal.step('u1', 'link', disk='disk')
    assert journal.started('u1', 'register', disk='disk')
    assert journal.started('u1', 'link', disk='disk')
    assert not journal.started('u1', 'register', disk='disk.local')
    journal.finish('u1', 'adopted')
    entry = journal.read('u1')
    assert entry['current'] is None and entry['result'] == 'adopted'
    assert [item['step'] for item in entry['done']] == ['register', 'link']
    assert stat.S_IMODE(os.stat(journal.path('u1')).st_mode) == 0o600


def test_a_readonly_journal_writes_nothing(tmp_path):
    journal = Journal(str(tmp_path / 'state'), readonly=True)
    assert journal.read('u1') is None and not journal.started('u1', 'register')
    assert not (tmp_path / 'state').exists()


def test_write_atomically_replaces_and_keeps_no_temporary(tmp_path):
    path = str(tmp_path / 'disk.info')
    write_atomically(path, b'{"a": "raw"}')
    write_atomically(path, b'{"a": "qcow2"}', mode=0o644, like=path)
    with open(path, 'rb') as handle:
        assert handle.read() == b'{"a": "qcow2"}'
    assert os.listdir(str(tmp_path)) == ['disk.info']


def test_fault_points_count_occurrences(monkeypatch):
    monkeypatch.setenv(FAULT_ENV, 'link:2')
    counts = {}
    fault_point('link', counts)  # the first passes
    with pytest.raises(InjectedFault):
        fault_point('link', counts)


def test_the_host_lock_times_out_with_a_message_naming_the_option(tmp_path):
    with HostLock(str(tmp_path), timeout=5):
        # fcntl locks are per process: a second lock of this process would not block,
        # so the contention is shown from a child process.
        pid = os.fork()
        if pid == 0:
            try:
                with HostLock(str(tmp_path), timeout=0.3):
                    os._exit(1)
            except StoragePoolsError as exc:
                os._exit(0 if exc.msg.startswith('lock_timeout: ') else 2)
        _pid, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0
