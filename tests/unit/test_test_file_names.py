# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""pytest runs without __init__.py files (rootdir-relative module names are not used), so two test files of
the same basename anywhere under tests/ break the collection of `make test`, which collects the unit and
integration tests together: this says so when the unit tests run alone."""

from __future__ import annotations

import collections
import os

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_test_file_basename_is_unique_under_tests():
    seen = collections.defaultdict(list)
    for directory, _dirs, files in os.walk(TESTS):
        for name in files:
            if name.startswith('test_') and name.endswith('.py'):
                seen[name].append(os.path.relpath(os.path.join(directory, name), TESTS))
    assert {name: paths for name, paths in seen.items() if len(paths) > 1} == {}
