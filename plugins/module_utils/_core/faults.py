# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fault points for tests: fail, pause or die at a named step (STORAGEPOOLS_FAIL_AT, _PAUSE_AT, _KILL_AT)."""

from __future__ import annotations

import os
import signal
import time

FAULT_ENV = 'STORAGEPOOLS_FAIL_AT'
PAUSE_ENV = 'STORAGEPOOLS_PAUSE_AT'
KILL_ENV = 'STORAGEPOOLS_KILL_AT'


class InjectedFault(Exception):
    """Raised in place of a step named by STORAGEPOOLS_FAIL_AT."""


def fault_point(step: str, counts: dict[str, int]) -> None:
    """Fail or die here when the test switches name ``step`` (or ``step:<n>``)."""
    counts[step] = counts.get(step, 0) + 1
    names = (step, '%s:%d' % (step, counts[step]))
    if os.environ.get(KILL_ENV) in names:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get(PAUSE_ENV) in names:
        time.sleep(5)
    if os.environ.get(FAULT_ENV) in names:
        raise InjectedFault('fault injected at %s by %s' % (step, FAULT_ENV))
