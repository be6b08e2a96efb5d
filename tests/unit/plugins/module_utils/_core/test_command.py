# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Commands are bounded: one that does not return is stopped, with the option in the error."""

from __future__ import annotations

import time

import pytest

from ansible_collections.storagepools.libvirt.plugins.module_utils._core import command
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError

MiB = 1024 * 1024


def test_a_command_past_its_timeout_is_stopped_with_an_error_naming_the_option():
    started = time.monotonic()
    with pytest.raises(StoragePoolsError) as raised:
        command.run(['sleep', '30'], 'disks_pool', timeout=0.5)
    assert time.monotonic() - started < 10
    assert raised.value.msg.startswith('disks_pool: sleep 30 did not finish within 0.5 s'), raised.value.msg


def test_a_command_within_its_timeout_returns_its_output():
    assert command.run(['echo', 'done'], 'pool').stdout == 'done\n'


def test_the_timeout_grows_with_the_bytes_moved():
    assert command.timeout_for(0) == command.TIMEOUT_FLOOR
    assert command.timeout_for(100 * 1024 * MiB) == command.TIMEOUT_FLOOR + 100 * 1024 // 20


def test_a_watched_command_hands_over_its_output_as_it_comes_and_still_returns_it():
    seen = []
    script = 'printf "one\\r"; sleep 0.3; printf "two\\r"; echo oops >&2; exit 3'
    proc = command.run(['sh', '-c', script], 'pool', on_output=lambda text: seen.append((text, time.monotonic())))
    assert (proc.returncode, proc.stdout, proc.stderr) == (3, 'one\rtwo\r', 'oops\n')
    assert [text for text, _at in seen] == ['one\r', 'two\r']
    assert seen[1][1] - seen[0][1] > 0.2  # the first piece came before the command ended


def test_a_watched_command_past_its_timeout_is_stopped_too():
    started = time.monotonic()
    with pytest.raises(StoragePoolsError, match='disks_pool: sleep 30 did not finish within 0.5 s'):
        command.run(['sleep', '30'], 'disks_pool', timeout=0.5, on_output=lambda text: None)
    assert time.monotonic() - started < 10
