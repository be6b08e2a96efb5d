# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The journal, the host lock, the fault points, and the atomic replacement of a name.

The attacker of these tests is the nova user: it owns the directory a file is
replaced in and plants symlinks at the names we use. A canary file stands in
for /etc/shadow; nothing may change its content, mode, owner or atime.
"""

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.storagepools.libvirt.plugins.module_utils._core import atomic_file
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.atomic_file import (
    link_atomically,
    symlink_atomically,
    write_atomically,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.faults import (
    FAULT_ENV,
    InjectedFault,
    fault_point,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.journal import HISTORY, HostLock, Journal

NOVA = 4242  # the nova user and group of these tests (no such account is needed: root chowns to it)
SHADOW_OWNER = 4343  # the canary's owner, so that copying its owner shows


@pytest.fixture
def canary(tmp_path):
    """A stand-in for /etc/shadow (0600, its own owner, an old atime); returns a check that it is unchanged."""
    directory = tmp_path / 'etc'
    directory.mkdir()
    path = str(directory / 'shadow')
    with open(path, 'wb') as handle:
        handle.write(b'root:$6$secret:19000:0:99999:7:::\n')
    os.chmod(path, 0o600)
    os.chown(path, SHADOW_OWNER, SHADOW_OWNER)
    os.utime(path, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    before = os.stat(path)

    def unchanged():
        now = os.stat(path)
        fd = os.open(path, os.O_RDONLY | os.O_NOATIME)  # this check must not touch the atime it checks
        with os.fdopen(fd, 'rb') as handle:
            assert handle.read() == b'root:$6$secret:19000:0:99999:7:::\n'
        assert (stat.S_IMODE(now.st_mode), now.st_uid, now.st_gid, now.st_atime_ns, now.st_mtime_ns, now.st_nlink) \
            == (stat.S_IMODE(before.st_mode), before.st_uid, before.st_gid, before.st_atime_ns, before.st_mtime_ns,
                before.st_nlink)

    unchanged.path = path
    return unchanged


@pytest.fixture
def nova_dir(tmp_path):
    """An instance directory as nova has it (nova's, 0755) with a disk.info of nova's."""
    directory = tmp_path / 'instances' / 'uuid'
    directory.mkdir(parents=True)
    os.chown(str(directory), NOVA, NOVA)
    info = str(directory / 'disk.info')
    with open(info, 'w') as handle:
        handle.write('{"disk": "raw"}')
    os.chown(info, NOVA, NOVA)
    return str(directory)


def plant(directory, name, target, owner=NOVA):
    path = os.path.join(directory, name)
    os.symlink(target, path)
    os.lchown(path, owner, owner)
    return path


def predictable_names(monkeypatch, *tokens):
    """Make the helper's random temporaries predictable, as an attacker would wish them."""
    queue = list(tokens)
    monkeypatch.setattr(atomic_file.secrets, 'token_hex', lambda _count: queue.pop(0))


def read(path):
    with open(path, 'rb') as handle:
        return handle.read()


# -- atomic replacement ---------------------------------------------------------------------------------

def test_write_atomically_replaces_and_keeps_no_temporary(tmp_path):
    path = str(tmp_path / 'disk.info')
    write_atomically(path, b'{"a": "raw"}')
    write_atomically(path, b'{"a": "qcow2"}', 0o644, path)
    assert read(path) == b'{"a": "qcow2"}'
    assert os.listdir(str(tmp_path)) == ['disk.info']


def test_a_symlink_at_the_old_predictable_temporary_is_not_written_through(nova_dir, canary):
    path = os.path.join(nova_dir, 'disk.info')
    planted = plant(nova_dir, '.disk.info.spl-tmp', canary.path)
    write_atomically(path, b'{"disk": "qcow2"}', 0o644, path)  # owner_like: the file it replaces
    canary()
    assert read(path) == b'{"disk": "qcow2"}'
    info = os.lstat(path)
    assert stat.S_ISREG(info.st_mode) and (info.st_uid, info.st_gid) == (NOVA, NOVA)
    assert stat.S_IMODE(info.st_mode) == 0o644
    assert os.readlink(planted) == canary.path  # not ours: left alone


def test_symlinks_at_the_random_temporaries_are_skipped_not_written_through(nova_dir, canary, monkeypatch):
    path = os.path.join(nova_dir, 'disk.info')
    first, second, third = 'a' * 16, 'b' * 16, 'c' * 16
    # the attacker knows (here: is told) the next two names; they look like leftovers of ours
    plant(nova_dir, '.disk.info.%s.spl-tmp' % first, canary.path)
    plant(nova_dir, '.disk.info.%s.spl-tmp' % second, canary.path)
    predictable_names(monkeypatch, first, second, third)
    monkeypatch.setattr(atomic_file, '_remove_leftovers', lambda _fd, _name: None)  # as if planted just now
    write_atomically(path, b'{"disk": "qcow2"}', 0o644, path)
    canary()
    assert read(path) == b'{"disk": "qcow2"}' and os.lstat(path).st_uid == NOVA


def test_a_symlink_planted_at_the_file_itself_lends_only_its_own_owner(nova_dir, canary):
    path = os.path.join(nova_dir, 'disk.info')
    os.unlink(path)
    plant(nova_dir, 'disk.info', canary.path)  # nova swapped disk.info for a link to "/etc/shadow"
    write_atomically(path, b'{"disk": "raw"}', 0o644, path)
    canary()
    info = os.lstat(path)
    assert stat.S_ISREG(info.st_mode) and (info.st_uid, info.st_gid) == (NOVA, NOVA)  # not the canary's owner
    assert read(path) == b'{"disk": "raw"}'


def test_leftover_temporaries_of_a_killed_run_go(nova_dir):
    leftover = os.path.join(nova_dir, '.disk.info.%s.spl-tmp' % ('d' * 16))
    with open(leftover, 'w'):
        pass
    path = os.path.join(nova_dir, 'disk.info')
    write_atomically(path, b'{}', 0o644, path)
    assert sorted(os.listdir(nova_dir)) == ['disk.info']


def test_the_symlink_swap_uses_an_unpredictable_name_and_skips_planted_ones(nova_dir, canary, monkeypatch):
    legacy = os.path.join(nova_dir, 'disk')
    with open(legacy, 'w') as handle:
        handle.write('legacy')
    plant(nova_dir, '.disk.spl-link', canary.path)  # the name the swap used to take
    plant(nova_dir, '.disk.%s.spl-tmp' % ('a' * 16), canary.path)
    predictable_names(monkeypatch, 'a' * 16, 'b' * 16)
    monkeypatch.setattr(atomic_file, '_remove_leftovers', lambda _fd, _name: None)
    symlink_atomically('/pool/uuid_disk', legacy)
    canary()
    assert os.readlink(legacy) == '/pool/uuid_disk'


def test_a_hard_link_replaces_the_name_through_a_checked_descriptor(tmp_path, canary):
    pool = tmp_path / 'pool'
    pool.mkdir()
    source = str(tmp_path / 'disk')
    with open(source, 'w') as handle:
        handle.write('data')
    dest = str(pool / 'uuid_disk')
    with open(dest, 'w'):
        pass  # the placeholder
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        os.rename(source, source + '.moved')
        os.symlink(canary.path, source)  # swapped after the open: the descriptor still names the checked file
        link_atomically(fd, dest)
    finally:
        os.close(fd)
    canary()
    assert os.path.samefile(dest, source + '.moved') and os.listdir(str(pool)) == ['uuid_disk']
    link_atomically(source, str(pool / 'by-name'))  # a path's own name: the symlink, never its target
    assert os.path.islink(str(pool / 'by-name'))
    canary()


# -- the journal -----------------------------------------------------------------------------------------

def test_the_journal_records_steps_before_they_run(tmp_path):
    journal = Journal(str(tmp_path))
    journal.step('u1', 'register', disk='disk')
    journal.step('u1', 'link', disk='disk')
    assert journal.under_way('u1', 'register', disk='disk')['step'] == 'register'
    assert journal.under_way('u1', 'link', disk='disk')
    assert journal.under_way('u1', 'register', disk='disk.local') is None
    journal.finish('u1', 'adopted')
    entry = journal.read('u1')
    assert entry['current'] is None and entry['result'] == 'adopted' and entry['done'] == []
    assert [item['step'] for item in entry['history'][-1]['steps']] == ['register', 'link']
    assert stat.S_IMODE(os.stat(journal.path('u1')).st_mode) == 0o600


def test_a_daily_run_keeps_only_the_last_runs_as_history(tmp_path):
    journal = Journal(str(tmp_path))
    for run in range(HISTORY + 5):
        journal.step('prune-pool', 'quarantine', volume='v%d' % run)
        journal.finish('prune-pool', 'done')
    history = journal.read('prune-pool')['history']
    assert len(history) == HISTORY
    assert history[0]['steps'][0]['volume'] == 'v5' and history[-1]['steps'][0]['volume'] == 'v%d' % (HISTORY + 4)


def test_steps_ahead_are_recorded_in_one_write_and_each_still_honours_the_fault_switches(tmp_path, monkeypatch):
    journal = Journal(str(tmp_path))
    steps = [{'step': 'mark', 'volume': 'a'}, {'step': 'quarantine', 'volume': 'a'}, {'step': 'mark', 'volume': 'b'}]
    journal.ahead('prune-p', steps)
    assert journal.read('prune-p')['current']['steps'] == steps
    monkeypatch.setenv(FAULT_ENV, 'mark:2')
    journal.passing('mark')
    journal.passing('quarantine')
    with pytest.raises(InjectedFault):
        journal.passing('mark')
    journal.finish('prune-p', 'done')
    assert journal.read('prune-p')['history'][-1]['steps'][0]['steps'] == steps


def test_a_finished_run_never_vouches_for_a_destination(tmp_path):
    """adopt, roll back by hand, the name reused: the old run's register must not claim the new volume."""
    journal = Journal(str(tmp_path))
    journal.step('u1', 'register', disk='disk')
    journal.finish('u1', 'adopted')
    assert journal.under_way('u1', 'register', disk='disk') is None
    journal.step('u1', 'register', disk='disk.local')  # a new run, killed: only its own steps count
    assert journal.under_way('u1', 'register', disk='disk.local') is not None
    assert journal.under_way('u1', 'register', disk='disk') is None


def test_a_journal_written_before_runs_were_kept_apart_keeps_its_finished_run_as_history(tmp_path):
    journal = Journal(str(tmp_path))
    with open(journal.path('u1'), 'w') as handle:
        json.dump({'key': 'u1', 'done': [{'step': 'register', 'disk': 'disk'}], 'current': None,
                   'result': 'adopted'}, handle)
    assert journal.under_way('u1', 'register', disk='disk') is None
    journal.step('u1', 'register', disk='disk')
    assert journal.under_way('u1', 'register', disk='disk') is not None


def test_a_readonly_journal_writes_nothing(tmp_path):
    journal = Journal(str(tmp_path / 'state'), readonly=True)
    assert journal.read('u1') is None and journal.under_way('u1', 'register') is None
    assert not (tmp_path / 'state').exists()


@pytest.mark.parametrize('content', [b'{"key": "u1", "done": [{"step": "regis', b'', b'\xff\xfe', b'[1, 2]',
                                     b'{"key": "u1", "done": 3}'])
def test_a_corrupt_or_truncated_journal_is_an_error_naming_the_file(tmp_path, content):
    journal = Journal(str(tmp_path))
    with open(journal.path('u1'), 'wb') as handle:
        handle.write(content)
    with pytest.raises(StoragePoolsError) as raised:
        journal.read('u1')
    assert raised.value.msg.startswith('state_dir: the journal %s ' % journal.path('u1'))
    assert 'no run is under way' in raised.value.msg and 'move it aside' in raised.value.msg
    with pytest.raises(StoragePoolsError):
        journal.step('u1', 'register', disk='disk')  # never overwritten as if it were empty
    assert read(journal.path('u1')) == content


def test_a_journal_file_that_is_a_symlink_is_refused(tmp_path, canary):
    journal = Journal(str(tmp_path))
    os.symlink(canary.path, journal.path('u1'))
    with pytest.raises(StoragePoolsError, match='symlink'):
        journal.read('u1')
    canary()


# -- state_dir and the host lock ------------------------------------------------------------------------

def test_a_missing_state_dir_is_made_0700_with_its_parents(tmp_path):
    state = tmp_path / 'var' / 'lib' / 'storagepools'
    with HostLock(str(state), timeout=1):
        pass
    Journal(str(state))
    for path in (state, state / 'journal', state / 'lock'):
        info = os.lstat(str(path))
        assert info.st_uid == os.geteuid() and not info.st_mode & 0o077, path


@pytest.mark.parametrize('mode, owner, problem', [
    (0o777, None, 'writable by group and others'),
    (0o757, None, 'writable by others'),
    (0o770, None, 'writable by its group'),
    (0o700, NOVA, 'owned by uid %d' % NOVA),
])
def test_a_state_dir_others_could_write_is_refused(tmp_path, mode, owner, problem):
    state = tmp_path / 'state'
    state.mkdir()
    os.chmod(str(state), mode)
    if owner is not None:
        os.chown(str(state), owner, owner)
    for make in (lambda: Journal(str(state)), lambda: Journal(str(state), readonly=True),
                 lambda: HostLock(str(state), timeout=1).__enter__()):
        with pytest.raises(StoragePoolsError) as raised:
            make()
        assert raised.value.msg.startswith('state_dir: the directory %s is ' % state) and problem in raised.value.msg
        assert 'chown root:root' in raised.value.msg and 'chmod go-w' in raised.value.msg
    assert os.listdir(str(state)) == []  # nothing made in it


def test_a_journal_directory_others_could_write_is_refused(tmp_path):
    (tmp_path / 'journal').mkdir()
    os.chmod(str(tmp_path / 'journal'), 0o777)
    with pytest.raises(StoragePoolsError, match='state_dir: the directory .*journal is writable'):
        Journal(str(tmp_path))


def test_a_state_dir_that_is_a_symlink_is_refused(tmp_path):
    (tmp_path / 'real').mkdir(mode=0o700)
    os.symlink(str(tmp_path / 'real'), str(tmp_path / 'state'))
    with pytest.raises(StoragePoolsError, match='state_dir: .* is a symlink or not a directory'):
        Journal(str(tmp_path / 'state'))


def test_a_lock_symlink_is_refused_and_its_target_untouched(tmp_path, canary):
    state = tmp_path / 'state'
    state.mkdir(mode=0o700)
    os.symlink(canary.path, str(state / 'lock'))
    with pytest.raises(StoragePoolsError) as raised:
        with HostLock(str(state), timeout=1):
            pass
    assert raised.value.msg.startswith('state_dir: the lock file %s is a symlink' % (state / 'lock'))
    canary()


def test_a_lock_file_others_could_write_is_refused(tmp_path):
    lock = tmp_path / 'lock'
    lock.write_text('')
    os.chmod(str(lock), 0o666)
    with pytest.raises(StoragePoolsError, match='state_dir: the lock file .* is writable by group and others'):
        with HostLock(str(tmp_path), timeout=1):
            pass


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
