# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Crash safety for long operations: a host lock, a journal, fault points.

The journal is written (and fsync'ed) BEFORE each step, so after a kill the
next run knows what was under way. Every step is also written to be
resumable from what the filesystem shows (see _converge/adopt.py), so a rerun
converges whether the kill came before, during or after a step.

Fault injection for tests, named by step: ``STORAGEPOOLS_FAIL_AT=<step>``
raises before the step (a clean failure), ``STORAGEPOOLS_KILL_AT=<step>``
SIGKILLs the process right after the journal entry for the step is on disk,
``STORAGEPOOLS_PAUSE_AT=<step>`` sleeps there for 5 s (so a test can restart
libvirtd under a run). A step name may be qualified as ``<step>:<n>`` to hit
its n-th occurrence.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
import time
from typing import TYPE_CHECKING

from ansible_collections.storagepools.libvirt.plugins.module_utils._core.atomic_file import write_atomically
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.faults import fault_point
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.private import privacy_problems

if TYPE_CHECKING:  # annotations only: nothing more is imported at run time
    from typing import Any

HISTORY = 30  # finished runs a journal entry keeps for the operator


def _refuse_unless_private(info, path, what):
    """Only root may write where the journal and the lock live: anyone who could would steer our steps."""
    problems = privacy_problems(info)
    if problems:
        raise StoragePoolsError('state_dir: the %s %s is %s; only root may write there. Fix it (chown root:root '
                                '%s; chmod go-w %s) or choose another state_dir'
                                % (what, path, ' and '.join(problems), path, path))


def private_directory(path: str, create: bool) -> bool:
    """Check ``path`` is a real directory only root writes, making it (0700, parents as needed) when missing
    and ``create``. False when it is missing and not made."""
    try:
        if create:
            os.makedirs(path, mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        if create:
            raise
        return False
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EEXIST):
            raise StoragePoolsError('state_dir: %s is a symlink or not a directory; give the path of a real '
                                    'directory (made 0700 when missing)' % path)
        raise StoragePoolsError('state_dir: cannot make or open %s: %s' % (path, exc.strerror))
    try:
        _refuse_unless_private(os.fstat(fd), path, 'directory')
    finally:
        os.close(fd)
    return True


def _open_private_file(path, flags, what):
    """An fd of the regular file ``path`` (never through a symlink), checked to be root's alone."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise
        if exc.errno == errno.ELOOP:
            raise StoragePoolsError('state_dir: the %s %s is a symlink; only root may make files there. Check '
                                    'who planted it, then remove it' % (what, path))
        raise StoragePoolsError('state_dir: cannot open the %s %s: %s' % (what, path, exc.strerror))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise StoragePoolsError('state_dir: the %s %s is not a regular file; check who made it, then '
                                    'remove it' % (what, path))
        _refuse_unless_private(info, path, what)
    except BaseException:
        os.close(fd)
        raise
    return fd


class HostLock:
    """One run per host at a time: an fcntl lock on ``<state_dir>/lock`` (released on exit or kill)."""

    def __init__(self, state_dir: str, timeout: float) -> None:
        self.state_dir = state_dir
        self.path = os.path.join(state_dir, 'lock')
        self.timeout = timeout
        self.fd = None

    def __enter__(self) -> HostLock:
        private_directory(self.state_dir, create=True)
        self.fd = _open_private_file(self.path, os.O_RDWR | os.O_CREAT, 'lock file')
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.lockf(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except OSError as exc:
                if exc.errno not in (errno.EACCES, errno.EAGAIN):
                    raise
            if time.monotonic() > deadline:
                os.close(self.fd)
                raise StoragePoolsError('lock_timeout: another run holds %s for more than %d s; wait for it '
                                        'or raise lock_timeout' % (self.path, self.timeout))
            time.sleep(0.1)

    def __exit__(self, *exc_info: object) -> None:
        fcntl.lockf(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


class Journal:
    """``<state_dir>/journal/<key>.json``: for one instance, the run under way (steps done, the step under
    way) and the finished runs (history, kept for the operator; it never vouches for anything)."""

    def __init__(self, state_dir: str, readonly: bool = False) -> None:
        self.directory = os.path.join(state_dir, 'journal')
        if private_directory(state_dir, create=not readonly):
            private_directory(self.directory, create=not readonly)
        self.counts = {}

    def path(self, key: str) -> str:
        return os.path.join(self.directory, '%s.json' % key)

    def _corrupt(self, key, why):
        path = self.path(key)
        return StoragePoolsError('state_dir: the journal %s is %s, so it cannot tell what a run of %s left under '
                                 'way. Check that no run is under way on this host (and what the file says), '
                                 'then move it aside (mv %s %s.bad); the next run starts a new journal for it'
                                 % (path, why, key, path, path))

    def read(self, key: str) -> dict[str, Any] | None:
        """The journal entry of ``key``, or None when there is none; a corrupt one is an error."""
        try:
            fd = _open_private_file(self.path(key), os.O_RDONLY, 'journal')
        except FileNotFoundError:
            return None
        with os.fdopen(fd, 'rb') as handle:
            raw = handle.read()
        try:
            entry = json.loads(raw.decode('utf-8'))
        except ValueError as exc:  # also a truncated file, and bytes that are not UTF-8
            raise self._corrupt(key, 'corrupt or truncated (%s)' % exc)
        if not (isinstance(entry, dict) and isinstance(entry.get('done'), list)
                and isinstance(entry.get('history', []), list)
                and isinstance(entry.get('current') or {}, dict)):
            raise self._corrupt(key, 'not a journal entry')
        if 'history' not in entry:  # written before runs were kept apart: a finished run is history
            entry['history'] = []
            if entry.get('current') is None and 'result' in entry:
                entry['history'].append({'steps': entry['done'], 'result': entry['result']})
                entry['done'] = []
        return entry

    def _new(self, key):
        return {'key': key, 'done': [], 'current': None, 'history': []}

    def under_way(self, key: str, step: str, **detail: Any) -> dict[str, Any] | None:
        """The journalled ``step`` (with ``detail``) of the run under way for ``key`` (the steps since its last
        finish), or None. Only such a step may vouch for a half-made destination; a finished run's never does
        (the operator may have rolled it back by hand and reused the names since)."""
        entry = self.read(key) or self._new(key)
        for item in entry['done'] + [entry.get('current') or {}]:
            if item.get('step') == step and all(item.get(name) == value for name, value in detail.items()):
                return item
        return None

    def step(self, key: str, step: str, **detail: Any) -> None:
        """Record that ``step`` is about to run for ``key``; then honour the fault switches."""
        entry = self.read(key) or self._new(key)
        if entry.get('current'):
            entry['done'].append(entry['current'])
        entry['current'] = dict(detail, step=step, at=time.time())
        write_atomically(self.path(key), json.dumps(entry).encode('utf-8'), mode=0o600)
        fault_point(step, self.counts)

    def ahead(self, key: str, steps: list[dict[str, Any]]) -> None:
        """Record, in one write, every step a run is about to take for ``key``: for a workflow whose killed run
        the next one completes by observing again, never by reading the journal back (nova_storage_prune),
        where a write per step would only cost a sync each. ``passing`` then marks each step."""
        entry = self.read(key) or self._new(key)
        if entry.get('current'):
            entry['done'].append(entry['current'])
        entry['current'] = {'step': 'steps ahead', 'steps': steps, 'at': time.time()}
        write_atomically(self.path(key), json.dumps(entry).encode('utf-8'), mode=0o600)

    def passing(self, step: str) -> None:
        """A step recorded by ``ahead`` is about to run: honour the fault switches (as ``step`` does)."""
        fault_point(step, self.counts)

    def finish(self, key: str, result: str, forget: tuple[str, ...] = ()) -> None:
        """Close the run under way: its steps become history; the kept facts named in ``forget`` go with it
        (in the same write)."""
        entry = self.read(key) or self._new(key)
        steps = entry['done'] + ([entry['current']] if entry.get('current') else [])
        # the last HISTORY runs only: a daily run (maintain's prune) would otherwise grow the file forever
        entry['history'] = entry['history'][-(HISTORY - 1):] + [{'steps': steps, 'result': result, 'at': time.time()}]
        entry.update(done=[], current=None, result=result)
        for name in forget:
            entry.pop(name, None)
        write_atomically(self.path(key), json.dumps(entry).encode('utf-8'), mode=0o600)

    def keep(self, key: str, name: str, value: Any) -> None:
        """Keep a fact about ``key`` beside its runs (e.g. what a revert needs: the layout before an adoption),
        in the root-only journal: the decisive record, never the nova user's files."""
        entry = self.read(key) or self._new(key)
        entry[name] = value
        write_atomically(self.path(key), json.dumps(entry).encode('utf-8'), mode=0o600)

    def kept(self, key: str, name: str) -> Any:
        """The fact ``name`` kept for ``key`` (None when there is none)."""
        return (self.read(key) or {}).get(name)
