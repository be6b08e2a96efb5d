# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a long run is doing, for an operator watching from another terminal (docs/operator-guide.md).

A module that moves disk data keeps one status file per run,
``<state_dir>/progress/<module>-<pid>.json``: the phase (``copy``,
``verify``, ``import``, ...), the instance and disk, and the bytes of the
disk done of its total. The copy loops report through ``Progress.advance``;
the file is written when a phase begins, on its first bytes, then at most
once per ``INTERVAL`` (a write per block would cost more than the copy). At
the end the run is marked finished (or failed), and the next run of the same
module removes it. The progress_info module lists the runs: a run whose
process is gone (killed) is ``stale``.

Written like the journal: root's only (0600 in a 0700 directory), replaced
atomically, never through a symlink. A status write that fails (a full
state_dir) stops the reporting, never the copy: progress is for watching.
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import TYPE_CHECKING

from ansible_collections.storagepools.libvirt.plugins.module_utils._core.atomic_file import write_atomically
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.faults import fault_point
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.journal import private_directory
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.private import (
    privacy_problems,
    read_private_file,
)

if TYPE_CHECKING:  # annotations only: nothing more is imported at run time
    from typing import Any

DIRECTORY = 'progress'
INTERVAL = 1.0  # seconds between two writes of one phase's bytes
MAX_STATUS = 64 * 1024
RUNNING, FINISHED, FAILED, STALE = 'running', 'finished', 'failed', 'stale'
_NAME = re.compile(r'(?P<module>[a-z_]+)-(?P<pid>[0-9]+)\.json\Z')


def _utc(seconds: float) -> str:
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(seconds))


def process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, /proc/<pid>/stat field 22), or None when there is
    no such process: with the pid it names one process, even after the pid is reused."""
    try:
        with open('/proc/%d/stat' % pid, 'rb') as handle:
            fields = handle.read().rsplit(b')', 1)[1].split()  # the command name may hold spaces and ')'
    except (OSError, IndexError):
        return None
    return fields[19].decode('ascii') if len(fields) > 19 else None


def status_path(state_dir: str, module: str, pid: int) -> str:
    return os.path.join(state_dir, DIRECTORY, '%s-%d.json' % (module, pid))


class Progress:
    """The status file of this process's run of ``module``; ``start`` makes it."""

    def __init__(self, state_dir: str, module: str, clock: Any = time.time) -> None:
        self.state_dir = state_dir
        self.directory = os.path.join(state_dir, DIRECTORY)
        self.clock = clock
        pid = os.getpid()
        self.path = status_path(state_dir, module, pid)
        now = clock()
        self.status = {'module': module, 'pid': pid, 'pid_start': process_start(pid), 'state': RUNNING,
                       'started': _utc(now), 'updated': _utc(now), 'phase': None, 'instance': None, 'disk': None,
                       'bytes_done': None, 'bytes_total': None}
        self.written_at = None  # when this phase's bytes were last written (None: not yet)
        self.broken = False
        self.counts = {}

    def start(self) -> Progress:
        """Make the directory, remove the finished and stale runs of this module, write the first status."""
        try:
            private_directory(self.state_dir, create=True)
            private_directory(self.directory, create=True)
        except (StoragePoolsError, OSError):
            self.broken = True
            return self
        for run in read_runs(self.state_dir):
            if run['module'] == self.status['module'] and run['state'] != RUNNING:
                forget(self.state_dir, run)
        self._write()
        return self

    def item(self, instance: str | None) -> None:
        """The instance the run works on now (shown before its first phase)."""
        self.status['instance'] = instance
        self.begin(None)

    def begin(self, phase: str | None, disk: str | None = None, bytes_total: int | None = None) -> None:
        """A phase of a disk (or a volume, ``<pool>/<name>``) of the current instance begins; ``bytes_total``:
        the disk's size, what the phase goes through (None: not counted)."""
        self.status.update(phase=phase, disk=disk, bytes_total=bytes_total,
                           bytes_done=0 if bytes_total is not None else None)
        self.written_at = None
        self._write()

    def advance(self, bytes_done: int) -> None:
        """``bytes_done`` of the phase's total are done (the copy loops' callback)."""
        self.status['bytes_done'] = bytes_done
        now = self.clock()
        if bytes_done == 0 or self.written_at is not None and now - self.written_at < INTERVAL:
            return  # begin wrote the 0
        first = self.written_at is None
        self.written_at = now
        self._write()
        if first and self.status['bytes_total'] and bytes_done < self.status['bytes_total']:
            # tests hold a run here, with its first bytes shown (STORAGEPOOLS_PAUSE_AT=progress-<phase>)
            fault_point('progress-%s' % self.status['phase'], self.counts)

    def finish(self, failed: bool = False) -> None:
        self.status.update(state=FAILED if failed else FINISHED, finished=_utc(self.clock()))
        self._write()

    def _write(self):
        if self.broken:
            return
        self.status['updated'] = _utc(self.clock())
        try:
            write_atomically(self.path, json.dumps(self.status, sort_keys=True).encode('utf-8'), mode=0o600)
        except OSError:
            self.broken = True

    def __enter__(self) -> Progress:
        return self.start()

    def __exit__(self, exc_type: Any, *_rest: Any) -> None:
        self.finish(failed=exc_type is not None)


class NoProgress:
    """Reports nothing: check mode, which writes nothing, and code run without a status file."""

    def item(self, instance: str | None) -> None:
        pass

    def begin(self, phase: str | None, disk: str | None = None, bytes_total: int | None = None) -> None:
        pass

    def advance(self, bytes_done: int) -> None:
        pass

    def finish(self, failed: bool = False) -> None:
        pass

    def __enter__(self) -> NoProgress:
        return self

    def __exit__(self, *_exc_info: Any) -> None:
        pass


NO_PROGRESS = NoProgress()


def progress_for(state_dir: str, module: str, check_mode: bool) -> Progress | NoProgress:
    """The reporter of a module's run (a context manager: started on enter, finished on exit)."""
    return NO_PROGRESS if check_mode else Progress(state_dir, module)


def _open_directory(state_dir):
    try:
        fd = os.open(os.path.join(state_dir, DIRECTORY), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoragePoolsError('state_dir: cannot open %s: %s (a symlink?)'
                                % (os.path.join(state_dir, DIRECTORY), exc.strerror))
    return fd


def read_runs(state_dir: str) -> list[dict[str, Any]]:
    """Every run's status under ``state_dir``, oldest first; a running one whose process is gone is ``stale``.

    Only files root alone can write are read (the directory included); another file is reported as
    ``untrusted`` with why, never read."""
    dir_fd = _open_directory(state_dir)
    if dir_fd is None:
        return []
    runs = []
    try:
        problems = privacy_problems(os.fstat(dir_fd))
        if problems:
            raise StoragePoolsError('state_dir: %s is %s; only root may write there'
                                    % (os.path.join(state_dir, DIRECTORY), ' and '.join(problems)))
        for name in sorted(os.listdir(dir_fd)):
            match = _NAME.match(name)
            if match is None:
                continue  # a temporary of a write under way, or not ours
            data, problems = read_private_file(dir_fd, name, MAX_STATUS)
            if data is None and not problems:
                continue  # replaced or removed meanwhile
            run = _parse(data) if not problems else None
            if run is None:
                runs.append({'module': match.group('module'), 'pid': int(match.group('pid')), 'state': 'untrusted',
                             'file': name, 'reason': ' and '.join(problems) or 'not a status record'})
                continue
            run['file'] = name
            if run['state'] == RUNNING and process_start(run['pid']) != run.get('pid_start'):
                run['state'] = STALE
            runs.append(run)
    finally:
        os.close(dir_fd)
    return sorted(runs, key=lambda run: (run.get('started') or '', run['file']))


def _parse(data):
    try:
        run = json.loads(data.decode('utf-8'))
    except ValueError:
        return None
    if not isinstance(run, dict) or not isinstance(run.get('pid'), int) or not isinstance(run.get('module'), str):
        return None
    return run


def forget(state_dir: str, run: dict[str, Any]) -> None:
    """Remove a run's status file (best effort: another run may have removed it first)."""
    try:
        os.unlink(os.path.join(state_dir, DIRECTORY, run['file']))  # unlink never follows a symlink
    except OSError:
        pass
