# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A bench's callback: how long each task of a play took, from its start to the next task's (or the end),
written as JSON lines {"task": name, "seconds": s} to $BENCH_TASK_SECONDS. ansible-playbook's own start-up and
the play's set-up are outside every task; a loop is one task over all its items."""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = '''
name: task_seconds
type: aggregate
short_description: seconds per task, for bench/
description: Writes how long each task took to the file named by BENCH_TASK_SECONDS.
'''


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'task_seconds'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.current = None
        self.times = []

    def _close(self):
        if self.current is not None:
            name, started = self.current
            self.times.append({'task': name, 'seconds': time.monotonic() - started})
            self.current = None

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._close()
        self.current = (task.get_name(), time.monotonic())

    def v2_playbook_on_stats(self, stats):
        self._close()
        with open(os.environ['BENCH_TASK_SECONDS'], 'a') as handle:
            for entry in self.times:
                handle.write(json.dumps(entry) + '\n')
