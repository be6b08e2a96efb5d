# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The harness acts on a daemon by its pidfile, never by process name: the tests run second libvirtds
(tests/integration/peer_libvirtd.py) beside the system one, and a name finds them all."""

from __future__ import annotations

import re
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
BY_NAME = re.compile(r'\b(pidof|pgrep|pkill|killall)\b')


def test_no_script_or_test_finds_a_daemon_by_its_name():
    found = []
    for top in ('scripts', 'tests', '.ci', 'Makefile'):
        root = REPOSITORY / top
        files = [root] if root.is_file() else sorted(path for path in root.rglob('*') if path.is_file())
        for path in files:
            if path == Path(__file__).resolve() or path.suffix in ('.img', '.qcow2', '.xml', '.json'):
                continue
            try:
                text = path.read_text()
            except (UnicodeDecodeError, OSError):
                continue
            found += ['%s:%d' % (path.relative_to(REPOSITORY), number)
                      for number, line in enumerate(text.splitlines(), 1) if BY_NAME.search(line)]
    assert found == []
