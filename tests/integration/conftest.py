# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Integration harness: the real libvirtd on qemu:///system, no mocks.

The daemon may serve other work at the same time, so every object a test
makes has a unique name (``spl-<run>-<n>``) and only those are cleaned up.
Modules run as Ansible runs them on a managed host: a separate Python
process reading its arguments from a JSON file.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest

libvirt = pytest.importorskip('libvirt')

URI = 'qemu:///system'
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(REPO, '.build', 'collections')
MODULES = 'ansible_collections.storagepools.libvirt.plugins.modules.'
RUN_ID = uuid.uuid4().hex[:6]
_counter = itertools.count()


def module_env(extra=None):
    env = dict(os.environ)
    env['PYTHONPATH'] = COLLECTIONS + os.pathsep + env.get('PYTHONPATH', '')
    env.update(extra or {})
    return env


class ModuleRun(dict):
    """A module's JSON result, plus what it printed besides."""

    stderr = ''

    @property
    def warnings(self):
        """Warning texts (ansible-core 2.19 wraps each in a structured event)."""
        return [warning['event']['msg'] if isinstance(warning, dict) else warning
                for warning in self.get('warnings', [])]


def run_module(module, args, check=False, diff=False, env=None):
    """Run ``module`` with ``args`` in its own process; return its JSON result."""
    payload = dict(args)
    payload['_ansible_check_mode'] = check
    payload['_ansible_diff'] = diff
    payload['_ansible_remote_tmp'] = '/tmp'
    args_file = os.path.join(scratch_root(), 'args-%s-%d.json' % (RUN_ID, next(_counter)))
    with open(args_file, 'w') as handle:
        json.dump({'ANSIBLE_MODULE_ARGS': payload}, handle)
    proc = subprocess.run([sys.executable, '-m', MODULES + module, args_file], capture_output=True,
                          text=True, env=module_env(env), timeout=300, check=False)
    os.unlink(args_file)
    assert 'Traceback' not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    try:
        result = ModuleRun(json.loads(proc.stdout))
    except ValueError:
        raise AssertionError('module printed no JSON:\n%s\n%s' % (proc.stdout, proc.stderr))
    result.stderr = proc.stderr
    assert 'exception' not in result, result['exception']
    return result


def scratch_root():
    root = '/var/tmp/storagepools-tests'
    os.makedirs(root, mode=0o755, exist_ok=True)
    return root


@pytest.fixture(scope='session')
def conn():
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    try:
        connection = libvirt.open(URI)
    except libvirt.libvirtError as exc:
        pytest.fail('no libvirtd answers on %s (run scripts/start-libvirtd.sh): %s' % (URI, exc))
    yield connection
    connection.close()


@pytest.fixture
def workdir():
    """A 0755 directory of this test's own (QEMU, as libvirt-qemu, must reach into it)."""
    path = os.path.join(scratch_root(), '%s-%d' % (RUN_ID, next(_counter)))
    os.makedirs(path, mode=0o755)
    os.chmod(path, 0o755)
    yield path
    subprocess.run(['umount', '-l', path], capture_output=True, check=False)
    shutil.rmtree(path, ignore_errors=True)


class PoolNames:
    """Unique pool names for one test; removes exactly those pools afterwards."""

    def __init__(self, connection):
        self.conn = connection
        self.made = []

    def new(self):
        name = 'spl-%s-%d' % (RUN_ID, next(_counter))
        self.made.append(name)
        return name

    def lookup(self, name):
        try:
            return self.conn.storagePoolLookupByName(name)
        except libvirt.libvirtError:
            return None

    def cleanup(self):
        for name in self.made:
            pool = self.lookup(name)
            if pool is None:
                continue
            if pool.isActive():
                pool.destroy()
            if pool.isPersistent():
                pool.undefine()


@pytest.fixture
def pools(conn):
    names = PoolNames(conn)
    yield names
    names.cleanup()


@pytest.fixture
def loop_device(workdir, pools):
    """Make loop devices on fresh 64 MiB image files (optionally with a filesystem)."""
    devices = []

    def make(mkfs=None):
        image = os.path.join(workdir, 'disk-%d.img' % next(_counter))
        with open(image, 'wb') as handle:
            handle.truncate(64 * 1024 * 1024)
        if mkfs:
            subprocess.run([mkfs, '-q', '-F', image], check=True, capture_output=True)
        device = subprocess.run(['losetup', '-f', '--show', image], check=True, capture_output=True,
                                text=True).stdout.strip()
        devices.append(device)
        return device

    yield make
    pools.cleanup()  # unmount the test's fs pools before their devices go
    for device in devices:
        subprocess.run(['umount', device], capture_output=True, check=False)
        subprocess.run(['losetup', '-d', device], capture_output=True, check=False)
