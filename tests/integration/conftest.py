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

import glob
import hashlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
import yaml

libvirt = pytest.importorskip('libvirt')

URI = 'qemu:///system'
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(REPO, '.build', 'collections')
MODULES = 'ansible_collections.storagepools.libvirt.plugins.modules.'
BIN = os.path.dirname(sys.executable)


def collection_version():
    """galaxy.yml's version: what the tarball is named after and MANIFEST.json says."""
    with open(os.path.join(REPO, 'galaxy.yml')) as handle:
        return yaml.safe_load(handle)['version']


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


def start_module(module, args, env=None):
    """Start ``module`` as a process a test may SIGKILL: the Popen (text pipes)."""
    args_file = os.path.join(scratch_root(), 'args-%s-%d.json' % (RUN_ID, next(_counter)))
    with open(args_file, 'w') as handle:
        json.dump({'ANSIBLE_MODULE_ARGS': args}, handle)
    return subprocess.Popen([sys.executable, '-m', MODULES + module, args_file], env=module_env(env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def sha256(path):
    """The sha256 hex digest of a file's bytes, read a MiB at a time."""
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def actions(result):
    """The action names of a module result's planned or applied steps, in order."""
    return [step['action'] for step in result['actions']]


def scratch_root():
    """Where tests make their files: ``$STORAGEPOOLS_TEST_SCRATCH`` (made here, as on a fresh machine)."""
    root = os.environ.get('STORAGEPOOLS_TEST_SCRATCH', '/var/tmp/storagepools-tests')
    os.makedirs(root, mode=0o755, exist_ok=True)
    os.chmod(root, 0o755)  # QEMU (libvirt-qemu) must reach into it; makedirs' parents follow the umask
    return root


def fresh_connection(connection):
    """``connection`` if it still works, else a new one (a test may have restarted libvirtd)."""
    try:
        connection.getLibVersion()
        return connection
    except libvirt.libvirtError:
        return libvirt.open(URI)


@pytest.fixture
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
        self.conn = fresh_connection(self.conn)
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
def dir_pool(pools, workdir):
    """(name, target) of a fresh dir pool made by virt_pool_ensure, in the test's directory."""
    name = pools.new()
    target = os.path.join(workdir, 'pool-%s' % name)
    result = run_module('virt_pool_ensure', dict(name=name, type='dir', target=target, autostart=False))
    assert not result.get('failed'), result
    return name, target


@pytest.fixture
def loop_device(workdir, pools):
    """Make loop devices on fresh 64 MiB image files (optionally with a filesystem)."""
    devices = []

    def make(mkfs=None, size_mib=64, mkfs_options=('-F',)):
        image = os.path.join(workdir, 'disk-%d.img' % next(_counter))
        with open(image, 'wb') as handle:
            handle.truncate(size_mib * 1024 * 1024)
        if mkfs:
            subprocess.run([mkfs, '-q'] + list(mkfs_options) + [image], check=True, capture_output=True)
        device = subprocess.run(['losetup', '-f', '--show', image], check=True, capture_output=True,
                                text=True).stdout.strip()
        devices.append(device)
        return device

    yield make
    pools.cleanup()  # unmount the test's fs pools before their devices go
    for device in devices:
        subprocess.run(['umount', device], capture_output=True, check=False)
        subprocess.run(['losetup', '-d', device], capture_output=True, check=False)


class Secrets:
    """Unique secret usages for one test; undefines exactly those secrets afterwards."""

    def __init__(self, connection):
        self.conn = connection
        self.usages = []

    def new_usage(self, user):
        usage = 'client.%s spl-%s-%d' % (user, RUN_ID, next(_counter))
        self.usages.append(usage)
        return usage

    def lookup(self, usage):
        try:
            return self.conn.secretLookupByUsage(libvirt.VIR_SECRET_USAGE_TYPE_CEPH, usage)
        except libvirt.libvirtError:
            return None

    def cleanup(self):
        self.conn = fresh_connection(self.conn)
        for usage in self.usages:
            secret = self.lookup(usage)
            if secret is not None:
                secret.undefine()


@pytest.fixture
def secrets(conn):
    made = Secrets(conn)
    yield made
    made.cleanup()


class CephCluster:
    """The suite's own single-node Ceph (tests/ceph/cluster.sh), and helpers on it."""

    def __init__(self, directory):
        self.dir = directory
        with open(os.path.join(directory, 'env')) as handle:
            self.env = dict(line.strip().split('=', 1) for line in handle if '=' in line)
        self.conf = self.env['CEPH_CONF']
        self.mon = {'name': self.env['CEPH_MON_HOST'], 'port': int(self.env['CEPH_MON_PORT'])}
        self.pool = self.env['CEPH_POOL']

    def admin(self, *args, tool='ceph'):
        proc = subprocess.run([tool, '--conf', self.conf, '--name', 'client.admin', '--keyring',
                               self.env['CEPH_ADMIN_KEYRING']] + list(args),
                              capture_output=True, text=True, check=False, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def new_user(self):
        """A cephx user limited to the test pool: (id, key, keyring path 0600)."""
        user = 'spl%s%d' % (RUN_ID, next(_counter))
        return (user,) + self._create(user)

    def _create(self, user):
        keyring = os.path.join(self.dir, 'ceph.client.%s.keyring' % user)
        self.admin('auth', 'get-or-create', 'client.' + user, 'mon', 'profile rbd',
                   'osd', 'profile rbd pool=%s' % self.pool, '-o', keyring)
        os.chmod(keyring, 0o600)
        key = self.admin('auth', 'print-key', 'client.' + user).strip()
        return key, keyring

    def rotate(self, user):
        """Give ``user`` a new key (as an operator's key rotation would): (key, keyring)."""
        self.admin('auth', 'rm', 'client.' + user)
        return self._create(user)

    def rbd_ls(self):
        return self.admin('ls', self.pool, tool='rbd').split()

    def image_sha256(self, image, scratch):
        """sha256 of an image's whole content (rbd export into ``scratch``)."""
        out = os.path.join(scratch, 'export-' + image)
        self.admin('export', '%s/%s' % (self.pool, image), out, tool='rbd')
        digest = hashlib.sha256()
        with open(out, 'rb') as handle:
            for block in iter(lambda: handle.read(1 << 20), b''):
                digest.update(block)
        os.unlink(out)
        return digest.hexdigest()

    def remove_images(self, prefix):
        """Remove this test's images (names starting with ``prefix``), snapshots first."""
        for image in self.rbd_ls():
            if image.startswith(prefix):
                spec = '%s/%s' % (self.pool, image)
                for snap in json.loads(self.admin('snap', 'ls', spec, '--format=json', tool='rbd')):
                    if snap.get('protected') == 'true':
                        self.admin('snap', 'unprotect', '%s@%s' % (spec, snap['name']), tool='rbd')
                self.admin('snap', 'purge', spec, tool='rbd')
                self.admin('rm', spec, tool='rbd')


@pytest.fixture(scope='session')
def ceph():
    """Start a single-node Ceph for the session (about 12 s), stop it at the end."""
    if shutil.which('ceph-mon') is None:
        pytest.fail('ceph-mon is not installed: run scripts/setup.sh (make test does)')
    directory = os.path.join(scratch_root(), 'ceph-%s' % RUN_ID)
    script = os.path.join(REPO, 'tests', 'ceph', 'cluster.sh')
    started = subprocess.run([script, 'start', directory], capture_output=True, text=True, check=False)
    if started.returncode != 0:
        subprocess.run([script, 'stop', directory], capture_output=True, check=False)
        pytest.fail('the test Ceph cluster did not start:\n%s%s' % (started.stdout, started.stderr))
    yield CephCluster(directory)
    subprocess.run([script, 'stop', directory], capture_output=True, check=False)
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def ceph_user(ceph, secrets):
    """A fresh cephx user and the libvirt secret holding its key: (user, key, keyring, usage, uuid)."""
    user, key, keyring = ceph.new_user()
    usage = secrets.new_usage(user)
    made = run_module('rbd_pool_secret', dict(user=user, key=key, usage=usage))
    assert made['changed'] is True, made
    return user, key, keyring, usage, made['secret']['uuid']


# -- the collection as operators get it: built, installed, run by ansible-playbook --

def ansible_env(collections_path):
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)  # only the installed collection is used
    env.update(ANSIBLE_COLLECTIONS_PATH=collections_path, ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0',
               ANSIBLE_STDOUT_CALLBACK='default', ANSIBLE_LOCALHOST_WARNING='0',
               ANSIBLE_INVENTORY_UNPARSED_WARNING='0')
    return env


@pytest.fixture(scope='session')
def installed(tmp_path_factory):
    """Build the collection tarball and install it; yields the collections path."""
    root = tmp_path_factory.mktemp('galaxy')
    collections = root / 'collections'
    env = ansible_env(str(collections))  # not the working tree on PYTHONPATH
    build = subprocess.run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'build', REPO,
                            '--output-path', str(root)], capture_output=True, text=True, env=env, check=False)
    assert build.returncode == 0, build.stdout + build.stderr
    tarballs = glob.glob(str(root / 'storagepools-libvirt-*.tar.gz'))
    assert [os.path.basename(path) for path in tarballs] == ['storagepools-libvirt-%s.tar.gz' % collection_version()]
    install = subprocess.run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'install', tarballs[0],
                              '-p', str(collections)], capture_output=True, text=True, env=env, check=False)
    assert install.returncode == 0, install.stdout + install.stderr
    assert (collections / 'ansible_collections/storagepools/libvirt/plugins/modules/virt_pool_ensure.py').exists()
    return str(collections)


def playbook(installed, tasks, *options, python=sys.executable):
    """Run ``tasks`` on localhost; return (returncode, output)."""
    path = os.path.join(scratch_root(), 'play-%d-%s.yml' % (os.getpid(), abs(hash(tasks))))
    with open(path, 'w') as handle:
        handle.write(textwrap.dedent('''\
            - hosts: localhost
              gather_facts: false
              tasks:
            ''') + textwrap.indent(textwrap.dedent(tasks), '    '))
    proc = subprocess.run([os.path.join(BIN, 'ansible-playbook'), '-i', 'localhost,', '-c', 'local',
                           '-e', 'ansible_python_interpreter=%s' % python, path] + list(options),
                          capture_output=True, text=True, env=ansible_env(installed), timeout=300, check=False)
    os.unlink(path)
    return proc.returncode, proc.stdout + proc.stderr


def recap(output):
    line = [line for line in output.splitlines() if line.startswith('localhost')][-1]
    return dict(field.split('=') for field in line.split(':', 1)[1].split())


def fill(directory):
    """Take every free block of ``directory``'s filesystem, as another writer would: the filler's path."""
    filler = os.path.join(directory, 'filler')
    chunk = os.urandom(1024 * 1024)
    with open(filler, 'wb') as handle:
        try:
            while True:
                handle.write(chunk)
                handle.flush()
        except OSError:
            pass
        try:
            os.fsync(handle.fileno())
        except OSError:
            pass
    return filler


def wait_for_step(host, instance, step, timeout=30):
    """Block until the module's journal (in ``host.state_dir``) says ``step`` is under way for ``instance``
    (STORAGEPOOLS_PAUSE_AT holds it there)."""
    path = os.path.join(host.state_dir, 'journal', '%s.json' % instance)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as handle:
                if (json.load(handle).get('current') or {}).get('step') == step:
                    return
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    raise AssertionError('the module never reached %s' % step)
