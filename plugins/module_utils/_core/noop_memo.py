# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Verified no-ops: a rerun whose every input is byte-identical to a run that found nothing to change returns
that run's result instead of deriving it again.

Converging is a function of the code, the task's options and mode, and what libvirt says (the documents and
states the task reads). The record's key is a digest of all of them: the code as the CRC of every file of the
AnsiballZ payload the module runs from, so any other version of any file is another key; the options; and
libvirt's answers, byte for byte. Any difference is a miss, and the full comparison runs. A record is kept only
for a clean no-op (nothing changed, nothing drifted, nothing warned) of a real run, one file per task
identity, in ``<state_dir>/noop`` where only root writes; a record anyone else could have written is ignored.

Only what is needed for a lookup is imported here: a hit must cost next to nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
from typing import Any

from ansible_collections.storagepools.libvirt.plugins.module_utils._core.private import privacy_problems

RECORD_DIR = 'noop'
MAX_RECORD = 1 << 20  # a pool task's result is a few KiB
CODE_PREFIXES = ('ansible' + os.sep, 'ansible_collections' + os.sep)


def code_digest(module_globals: dict[str, Any]) -> str | None:
    """A digest of the code a module runs, from the table of contents of the zip AnsiballZ runs it from (every
    file of Ansible's and of the collections: its name and CRC; never their timestamps, which change with each
    build, nor the bootstrap AnsiballZ writes per run); None outside such a zip."""
    loader = module_globals.get('__loader__')
    files = getattr(loader, '_files', None)  # zipimport's parsed table of contents: (..., crc) per file
    if not isinstance(files, dict) or not files:
        return None
    digest = hashlib.sha256(sys.version.encode('utf-8'))
    for name in sorted(files):
        if not name.startswith(CODE_PREFIXES):
            continue
        digest.update(('\0%s\0%s' % (name, files[name][-1])).encode('utf-8'))
    return digest.hexdigest()


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode('utf-8')).hexdigest()


class NoopMemo:
    """The record of one task identity (``identity``: e.g. uri and pool name) under ``state_dir``."""

    def __init__(self, state_dir: str, identity: Any, code: str, task: Any) -> None:
        self.state_dir = state_dir
        self.directory = os.path.join(state_dir, RECORD_DIR)
        self.name = _digest(identity)
        self.code_and_task = _digest([code, task])

    def key(self, observed: Any) -> str:
        return _digest([self.code_and_task, observed])

    def lookup(self, observed: Any) -> dict[str, Any] | None:
        """The result recorded for ``observed`` (what libvirt said), or None."""
        record = self._read()
        if not isinstance(record, dict) or record.get('key') != self.key(observed):
            return None
        result = record.get('result')
        return result if isinstance(result, dict) else None

    def _open_directory(self) -> int | None:
        """A descriptor of the record directory, never through a symlink, when only root can write it."""
        try:
            dir_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None
        if privacy_problems(os.fstat(dir_fd)):
            os.close(dir_fd)
            return None
        return dir_fd

    def _read(self) -> Any:
        dir_fd = self._open_directory()
        if dir_fd is None:
            return None
        try:
            fd = os.open(self.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
        except OSError:
            return None
        finally:
            os.close(dir_fd)
        with os.fdopen(fd, 'rb') as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode) or privacy_problems(info):
                return None
            data = handle.read(MAX_RECORD + 1)
        try:
            return json.loads(data.decode('utf-8')) if len(data) <= MAX_RECORD else None
        except ValueError:
            return None

    def forget(self) -> None:
        """Remove the record (the pool is gone); best effort, like store."""
        dir_fd = self._open_directory()
        if dir_fd is None:
            return
        try:
            os.unlink(self.name, dir_fd=dir_fd)
        except OSError:
            pass
        finally:
            os.close(dir_fd)

    def store(self, observed: Any, result: dict[str, Any]) -> None:
        """Record ``result`` as the clean no-op for ``observed``. Best effort: a state_dir that is not root's
        alone, or cannot be written, keeps no record (the next run compares in full), it fails no task."""
        from ansible_collections.storagepools.libvirt.plugins.module_utils._core.atomic_file import (
            write_atomically,
        )
        from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
        from ansible_collections.storagepools.libvirt.plugins.module_utils._core.journal import private_directory

        try:
            private_directory(self.state_dir, create=True)
            private_directory(self.directory, create=True)
            write_atomically(os.path.join(self.directory, self.name),
                             json.dumps({'key': self.key(observed), 'result': result}).encode('utf-8'), mode=0o600)
        except (StoragePoolsError, OSError):
            pass
