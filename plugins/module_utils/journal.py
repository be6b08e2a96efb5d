# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Crash safety for long operations: a host lock, a journal, fault points.

The journal is written (and fsync'ed) BEFORE each step, so after a kill the
next run knows what was under way. Every step is also written to be
resumable from what the filesystem shows (see adopt.py), so a rerun
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
import signal
import time

from ansible_collections.storagepools.libvirt.plugins.module_utils.data_copy import flush
from ansible_collections.storagepools.libvirt.plugins.module_utils.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils.plan import FAULT_ENV, PAUSE_ENV, InjectedFault

KILL_ENV = 'STORAGEPOOLS_KILL_AT'


def write_atomically(path, data, mode=0o644, like=None):
    """Replace ``path`` with ``data`` (bytes) through a temporary file and rename, fsync'ed.

    ``like``: an existing file whose owner and group the new one takes.
    """
    directory = os.path.dirname(path)
    temporary = os.path.join(directory, '.%s.spl-tmp' % os.path.basename(path))
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fchmod(fd, mode)
        if like is not None and os.path.exists(like):
            info = os.stat(like)
            os.fchown(fd, info.st_uid, info.st_gid)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(temporary, path)
    flush(directory)


class HostLock:
    """One run per host at a time: an fcntl lock on ``<state_dir>/lock`` (released on exit or kill)."""

    def __init__(self, state_dir, timeout):
        self.path = os.path.join(state_dir, 'lock')
        self.timeout = timeout
        self.fd = None

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
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

    def __exit__(self, *exc_info):
        fcntl.lockf(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


class Journal:
    """``<state_dir>/journal/<key>.json``: the step under way for one instance, and the steps done."""

    def __init__(self, state_dir, readonly=False):
        self.directory = os.path.join(state_dir, 'journal')
        if not readonly:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
        self.counts = {}

    def path(self, key):
        return os.path.join(self.directory, '%s.json' % key)

    def read(self, key):
        try:
            with open(self.path(key)) as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return None

    def started(self, key, step, **detail):
        """Whether a run journalled ``step`` (with ``detail``) for ``key``, done or under way."""
        entry = self.read(key) or {}
        entries = list(entry.get('done', [])) + [entry.get('current') or {}]
        return any(item.get('step') == step and all(item.get(name) == value for name, value in detail.items())
                   for item in entries)

    def step(self, key, step, **detail):
        """Record that ``step`` is about to run for ``key``; then honour the fault switches."""
        entry = self.read(key) or {'key': key, 'done': []}
        previous = entry.get('current')
        if previous:
            entry['done'].append(previous)
        entry['current'] = dict(detail, step=step, at=time.time())
        write_atomically(self.path(key), json.dumps(entry).encode('utf-8'), mode=0o600)
        fault_point(step, self.counts)

    def finish(self, key, result):
        entry = self.read(key) or {'key': key, 'done': []}
        if entry.get('current'):
            entry['done'].append(entry['current'])
        entry['current'] = None
        entry['result'] = result
        write_atomically(self.path(key), json.dumps(entry).encode('utf-8'), mode=0o600)


def fault_point(step, counts):
    """Fail or die here when the test switches name ``step`` (or ``step:<n>``)."""
    counts[step] = counts.get(step, 0) + 1
    names = (step, '%s:%d' % (step, counts[step]))
    if os.environ.get(KILL_ENV) in names:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get(PAUSE_ENV) in names:
        time.sleep(5)
    if os.environ.get(FAULT_ENV) in names:
        raise InjectedFault('fault injected at %s by %s' % (step, FAULT_ENV))
