# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one place this collection runs an external command: bounded by a timeout, never a shell."""

from __future__ import annotations

import os
import selectors
import subprocess
import time
from typing import TYPE_CHECKING

from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError

if TYPE_CHECKING:  # annotations only: nothing more is imported at run time
    from collections.abc import Callable, Sequence

MiB = 1024 * 1024
TIMEOUT_FLOOR = 60  # seconds any command may take, however little it moves
SLOWEST_RATE = 20 * MiB  # bytes per second even a busy healthy storage sustains


def run(argv: Sequence[str], option: str, size: int = 0, timeout: float | None = None,
        pass_fds: Sequence[int] = (), on_output: Callable[[str], object] | None = None
        ) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` (text output captured) for at most ``timeout`` seconds (default: scaled to ``size``, the
    bytes it moves); the CompletedProcess, or a StoragePoolsError naming ``option`` and the command when it
    did not finish (it is killed: the caller's cleanup then removes what it half wrote).

    ``on_output``: called with each piece of stdout as the command writes it (a progress meter), not only at
    the end; stdout is still returned whole."""
    timeout = timeout_for(size) if timeout is None else timeout
    try:
        if on_output is not None:
            return _run_watched(argv, timeout, pass_fds, on_output)
        return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout,
                              pass_fds=pass_fds)
    except subprocess.TimeoutExpired as exc:
        raise StoragePoolsError('%s: %s did not finish within %s s and was stopped (a hung NFS mount or an '
                                'unreachable Ceph cluster?)' % (option, ' '.join(argv[:2]), timeout)) from exc


def _run_watched(argv, timeout, pass_fds, on_output):
    """subprocess.run's capture and timeout, with stdout handed to ``on_output`` as it comes."""
    deadline = time.monotonic() + timeout
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=pass_fds) as proc:
        streams = {proc.stdout.fileno(): [], proc.stderr.fileno(): []}
        with selectors.DefaultSelector() as selector:
            for fd in streams:
                selector.register(fd, selectors.EVENT_READ)
            while selector.get_map():
                left = deadline - time.monotonic()
                if left <= 0:
                    proc.kill()
                    raise subprocess.TimeoutExpired(argv, timeout)
                for key, _events in selector.select(left):
                    data = os.read(key.fd, 65536)
                    if not data:
                        selector.unregister(key.fd)
                        continue
                    streams[key.fd].append(data)
                    if key.fd == proc.stdout.fileno():
                        on_output(data.decode('utf-8', 'replace'))
        try:
            proc.wait(max(deadline - time.monotonic(), 0.001))
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        stdout, stderr = (b''.join(streams[stream.fileno()]).decode('utf-8', 'replace')
                          for stream in (proc.stdout, proc.stderr))
    return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)


def timeout_for(size: int | None) -> int:
    """Seconds a command moving ``size`` bytes may take."""
    return TIMEOUT_FLOOR + int(size or 0) // SLOWEST_RATE
