# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The test switches: a named step fails, pauses or kills its process; any other step runs on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from ansible_collections.storagepools.libvirt.plugins.module_utils._core import faults

DIE_AT_SECOND_LINK = '''
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.faults import fault_point
counts = {}
fault_point('link', counts)
print('first link passed', flush=True)
fault_point('link', counts)
print('second link passed', flush=True)
'''


def test_kill_at_a_step_kills_the_process_there():
    env = dict(os.environ, **{faults.KILL_ENV: 'link:2'})
    proc = subprocess.run([sys.executable, '-c', DIE_AT_SECOND_LINK], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == -signal.SIGKILL and proc.stdout == 'first link passed\n', proc.stderr


def test_pause_at_a_step_sleeps_there_and_nowhere_else(monkeypatch):
    slept = []
    monkeypatch.setattr(faults.time, 'sleep', slept.append)
    monkeypatch.setenv(faults.PAUSE_ENV, 'convert')
    counts = {}
    faults.fault_point('create', counts)
    faults.fault_point('convert', counts)
    assert slept == [5] and counts == {'create': 1, 'convert': 1}
