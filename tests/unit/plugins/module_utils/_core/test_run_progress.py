# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A run's status file: written root-only at a bounded rate, marked finished, stale when its process is gone,
and read only where root alone writes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from ansible_collections.storagepools.libvirt.plugins.module_utils._core import progress as run_progress
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._images import copy as data_copy


class Clock:
    def __init__(self):
        self.now = 1_800_000_000.0

    def __call__(self):
        return self.now


def status(state_dir, module='legacy_disk_adopt'):
    with open(run_progress.status_path(str(state_dir), module, os.getpid())) as handle:
        return json.load(handle)


def test_the_status_file_is_roots_alone_and_says_what_the_run_does(tmp_path):
    state_dir = tmp_path / 'state'
    reporter = run_progress.Progress(str(state_dir), 'legacy_disk_adopt').start()
    path = run_progress.status_path(str(state_dir), 'legacy_disk_adopt', os.getpid())
    assert stat.S_IMODE(os.stat(state_dir / 'progress').st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert status(state_dir)['state'] == 'running' and status(state_dir)['phase'] is None
    reporter.item('uuid-1')
    reporter.begin('copy', 'disk', 100)
    assert {key: status(state_dir)[key] for key in ('phase', 'instance', 'disk', 'bytes_done', 'bytes_total')} == \
        {'phase': 'copy', 'instance': 'uuid-1', 'disk': 'disk', 'bytes_done': 0, 'bytes_total': 100}
    [run] = run_progress.read_runs(str(state_dir))
    assert run['state'] == 'running' and run['pid'] == os.getpid() and run['file'] == os.path.basename(path)


def test_bytes_are_written_on_the_first_advance_then_at_most_once_an_interval(tmp_path):
    clock = Clock()
    reporter = run_progress.Progress(str(tmp_path), 'virt_volume_clone', clock=clock).start()
    reporter.begin('copy', 'pool/volume', 1000)
    reporter.advance(10)
    assert status(tmp_path, 'virt_volume_clone')['bytes_done'] == 10  # the first bytes show at once
    clock.now += run_progress.INTERVAL / 2
    reporter.advance(20)
    assert status(tmp_path, 'virt_volume_clone')['bytes_done'] == 10  # not a write per block
    clock.now += run_progress.INTERVAL
    reporter.advance(30)
    assert status(tmp_path, 'virt_volume_clone')['bytes_done'] == 30
    reporter.begin('verify', 'pool/volume', 1000)  # a new phase is written at once
    reporter.advance(5)
    assert status(tmp_path, 'virt_volume_clone')['phase'] == 'verify'
    assert status(tmp_path, 'virt_volume_clone')['bytes_done'] == 5


def test_a_finished_run_is_kept_until_the_next_run_of_its_module(tmp_path):
    with run_progress.Progress(str(tmp_path), 'legacy_disk_adopt'):
        pass
    with pytest.raises(RuntimeError):
        with run_progress.Progress(str(tmp_path), 'virt_volume_clone'):
            raise RuntimeError('the run stopped')
    states = {run['module']: run['state'] for run in run_progress.read_runs(str(tmp_path))}
    assert states == {'legacy_disk_adopt': 'finished', 'virt_volume_clone': 'failed'}
    assert status(tmp_path)['finished']
    # the next run of legacy_disk_adopt (another process: another file) removes the finished one
    os.rename(run_progress.status_path(str(tmp_path), 'legacy_disk_adopt', os.getpid()),
              run_progress.status_path(str(tmp_path), 'legacy_disk_adopt', 1))
    run_progress.Progress(str(tmp_path), 'legacy_disk_adopt').start()
    runs = run_progress.read_runs(str(tmp_path))
    assert sorted((run['module'], run['pid'], run['state']) for run in runs) == [
        ('legacy_disk_adopt', os.getpid(), 'running'), ('virt_volume_clone', os.getpid(), 'failed')]


def _dead_pid():
    child = subprocess.Popen([sys.executable, '-c', 'pass'])
    child.wait()
    return child.pid


def test_a_run_whose_process_is_gone_or_was_replaced_is_stale(tmp_path):
    reporter = run_progress.Progress(str(tmp_path), 'legacy_disk_adopt').start()
    killed = dict(reporter.status, pid=_dead_pid())
    reused = dict(reporter.status, pid=1)  # a live process, not the one that wrote the status
    for record in (killed, reused):
        with open(run_progress.status_path(str(tmp_path), 'legacy_disk_adopt', record['pid']), 'w') as handle:
            json.dump(record, handle)
    states = {run['pid']: run['state'] for run in run_progress.read_runs(str(tmp_path))}
    assert states == {os.getpid(): 'running', killed['pid']: 'stale', 1: 'stale'}
    run_progress.Progress(str(tmp_path), 'legacy_disk_adopt').start()  # a new run clears the stale ones
    assert [run['pid'] for run in run_progress.read_runs(str(tmp_path))] == [os.getpid()]


def test_a_status_someone_else_could_write_is_never_read(tmp_path):
    run_progress.Progress(str(tmp_path), 'legacy_disk_adopt').start()
    directory = tmp_path / 'progress'
    writable = directory / 'virt_volume_clone-2.json'
    writable.write_text(json.dumps({'module': 'virt_volume_clone', 'pid': 2, 'state': 'running'}))
    writable.chmod(0o666)
    (directory / 'virt_volume_clone-3.json').symlink_to(writable)
    (directory / 'virt_volume_clone-4.json').write_text('{not json')
    untrusted = {run['pid']: run['reason'] for run in run_progress.read_runs(str(tmp_path))
                 if run['state'] == 'untrusted'}
    assert untrusted == {2: 'writable by group and others (mode 0666)', 3: 'a symlink', 4: 'not a status record'}
    directory.chmod(0o777)
    with pytest.raises(StoragePoolsError, match='writable by group and others'):
        run_progress.read_runs(str(tmp_path))


def test_no_state_dir_no_runs_and_a_failed_write_fails_nothing(tmp_path):
    assert run_progress.read_runs(str(tmp_path / 'missing')) == []
    blocked = tmp_path / 'a-file'
    blocked.write_text('')
    reporter = run_progress.Progress(str(blocked), 'legacy_disk_adopt').start()
    reporter.begin('copy', 'disk', 10)
    reporter.advance(5)
    reporter.finish()
    assert run_progress.progress_for(str(tmp_path), 'legacy_disk_adopt', check_mode=True) is run_progress.NO_PROGRESS


def test_the_copy_loops_report_how_far_into_the_file_they_are(tmp_path):
    mib = 1024 * 1024
    source, target = tmp_path / 'source', tmp_path / 'target'
    with open(source, 'wb') as handle:
        handle.write(os.urandom(mib))
        handle.seek(5 * mib)
        handle.write(os.urandom(mib))
    target.write_bytes(b'')
    copied, compared = [], []
    data_copy.copy_file(str(source), str(target), allow_reflink=False, progress=copied.append)
    assert data_copy.same_bytes(str(source), str(target), progress=compared.append)
    for offsets in (copied, compared):
        assert offsets == sorted(offsets) and offsets[-1] == 6 * mib, offsets
        assert any(0 < offset < 6 * mib for offset in offsets), offsets
