# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A second compute host on this machine: a libvirtd with a filesystem view of its own.

Live migration (test_nova_live_migration.py) and host-to-host volume streams
(test_volume_streams.py) use it, each on a loopback address of its own.

The shared recipe (../shared/recipes/second-libvirtd.sh) hides only libvirt's
own directories; a migration target also needs (a) a host UUID of its own
(libvirt refuses to migrate to a host with the source's UUID) and (b) its own
files at the SAME paths as the source's, else both QEMUs would open one file.
So this daemon's mount namespace also binds a private directory over
``HOSTS``: the source's disks live under ``HOSTS`` in the host's view, the
destination's under the same paths in its view (``private(path)`` is where
the test process reaches them). Stopped by its own pidfiles only.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import time
import uuid

import libvirt

HOSTS = '/var/tmp/spl-livemig-hosts'
ADDRESS = '127.0.0.3'
URI = 'qemu+tcp://%s/system' % ADDRESS


class PeerLibvirtd:
    """``address``: the loopback address it listens on (tcp, no auth: loopback only); ``uri`` reaches it."""

    def __init__(self, root, address=ADDRESS):
        self.root = root
        self.address = address
        self.uri = 'qemu+tcp://%s/system' % address
        self.pids = {name: os.path.join(root, '%s.pid' % name) for name in ('libvirtd', 'virtlogd')}

    def private(self, path):
        """Where the test process reaches the peer's view of ``path`` (under HOSTS)."""
        assert path.startswith(HOSTS + '/'), path
        return os.path.join(self.root, 'hosts', os.path.relpath(path, HOSTS))

    def start(self):
        for name in ('run', 'lib', 'cache', 'log', 'etc', 'hosts'):
            os.makedirs(os.path.join(self.root, name), mode=0o755, exist_ok=True)
        os.makedirs(HOSTS, mode=0o755, exist_ok=True)
        for path in (self.root, os.path.join(self.root, 'hosts'), HOSTS):
            os.chmod(path, 0o755)
        etc = os.path.join(self.root, 'etc')
        for conf in glob.glob('/etc/libvirt/*.conf'):
            shutil.copy(conf, etc)
        with open(os.path.join(etc, 'libvirtd.conf'), 'a') as handle:
            handle.write('listen_tls = 0\nlisten_tcp = 1\nlisten_addr = "%s"\nauth_tcp = "none"\nhost_uuid = "%s"\n'
                         % (self.address, uuid.uuid4()))
        with open(os.path.join(etc, 'qemu.conf'), 'a') as handle:
            handle.write('migration_address = "%s"\nmigration_host = "%s"\n' % (self.address, self.address))
        binds = {'run': '/run/libvirt', 'lib': '/var/lib/libvirt', 'cache': '/var/cache/libvirt',
                 'log': '/var/log/libvirt', 'etc': '/etc/libvirt', 'hosts': HOSTS}
        script = ''.join('mount --bind %s %s\n' % (os.path.join(self.root, name), target)
                         for name, target in binds.items())
        script += ('mkdir -p /var/lib/libvirt/images /var/lib/libvirt/qemu\n'
                   'virtlogd -d -p %s\nlibvirtd -d -l -p %s\n' % (self.pids['virtlogd'], self.pids['libvirtd']))
        subprocess.run(['unshare', '-m', '--propagation', 'private', 'bash', '-ec', script],
                       check=True, capture_output=True, timeout=60)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                libvirt.open(self.uri).close()
                return self
            except libvirt.libvirtError:
                time.sleep(0.2)
        self.stop()
        raise AssertionError('the peer libvirtd did not answer on %s' % self.uri)

    @property
    def socket_uri(self):
        """The same daemon through its unix socket: a URI local to this host, whose files this process reads."""
        return 'qemu+unix:///system?socket=%s' % os.path.join(self.root, 'run', 'libvirt-sock')

    def nsenter(self):
        """argv prefix that runs a command in the peer's mount namespace (its view of the files)."""
        with open(self.pids['libvirtd']) as handle:
            return ['nsenter', '-t', handle.read().strip(), '-m', '--']

    def stop(self):
        for name in ('libvirtd', 'virtlogd'):
            try:
                with open(self.pids[name]) as handle:
                    os.kill(int(handle.read().strip()), 15)
            except (OSError, ValueError):
                pass
        time.sleep(0.5)


@contextlib.contextmanager
def running_peer(root, address=ADDRESS):
    """A started PeerLibvirtd under ``root``, stopped by its pidfiles and its root removed afterwards."""
    daemon = PeerLibvirtd(root, address=address).start()
    try:
        yield daemon
    finally:
        daemon.stop()
        shutil.rmtree(daemon.root, ignore_errors=True)
