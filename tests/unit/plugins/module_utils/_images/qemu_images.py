# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Real image headers, made by qemu-img, for the header checks (image_inspect) to be tried on.

A module the tests import the fixture from, not a conftest.py: the integration tests import their own
``conftest`` by name, and two conftest modules in one pytest run would shadow each other."""

from __future__ import annotations

import shutil
import subprocess

import pytest


@pytest.fixture(scope='session')
def qemu_image(tmp_path_factory):
    """``qemu_image(fmt, size, *options, data=None)``: the bytes of an image qemu-img made (a copy of
    ``data`` converted to ``fmt`` when given), made once per session.

    qemu-utils is a dependency of the collection (make setup installs it): without qemu-img the tests fail."""
    if shutil.which('qemu-img') is None:
        pytest.fail('qemu-img is missing; make setup installs qemu-utils')
    directory = tmp_path_factory.mktemp('qemu-images')
    made = {}

    def make(fmt, size, *options, data=None):
        key = (fmt, size, options, data)
        if key not in made:
            path = directory / ('image-%d.%s' % (len(made), fmt))
            if data is None:
                argv = ['qemu-img', 'create', '-q', '-f', fmt] + list(options) + [str(path), str(size)]
            else:
                source = directory / ('source-%d.raw' % len(made))
                source.write_bytes(data.ljust(size, b'\x00'))
                argv = ['qemu-img', 'convert', '-q', '-f', 'raw', '-O', fmt] + list(options) + [str(source), str(path)]
            subprocess.run(argv, check=True)
            made[key] = path.read_bytes()
        return made[key]

    return make
