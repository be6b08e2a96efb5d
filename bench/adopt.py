# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""bench/adopt: legacy_disk_adopt against the plain tools, and at fleet scale.

1. Same filesystem: adopting an instance whose disk.local is 20 GiB (sparse,
   1 GiB of data) vs `cp --sparse=always` of that file + sync.
2. Other filesystem: adopting a 2 GiB dense disk (copy + fsync + verify) vs
   `qemu-img convert -f raw -O raw` of it alone (+ sync).
3. 200 shut-off instances in one module call, then the idempotent rerun.

The fake Nova host is the test suite's (tests/integration/nova_host.py).
Usage: _converge/adopt.py [INSTANCES]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(REPO, '.build', 'collections')
sys.path[:0] = [COLLECTIONS, os.path.join(REPO, 'tests', 'integration')]

from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.connection import (
    open_connection  # noqa: E402,
)
from nova_host import MiB, NovaHost  # noqa: E402

GiB = 1024 * MiB


def module(args):
    """Run legacy_disk_adopt as Ansible would (its own process): (seconds, result)."""
    with tempfile.NamedTemporaryFile('w', suffix='.json', delete=False) as handle:
        json.dump({'ANSIBLE_MODULE_ARGS': args}, handle)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, '-m', 'ansible_collections.storagepools.libvirt.plugins.modules.'
                           'legacy_disk_adopt', handle.name], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=COLLECTIONS), check=False)
    elapsed = time.perf_counter() - started
    os.unlink(handle.name)
    result = json.loads(proc.stdout)
    if result.get('failed'):
        raise SystemExit('adoption failed: %s' % proc.stdout)
    return elapsed, result


def timed(*argv):
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - started


class Bench:
    def __init__(self, conn, root):
        self.conn = conn
        self.root = root
        self.pools = []

    def host(self, name, disks_dir):
        host = NovaHost(self.conn, os.path.join(self.root, name), 'spl-bench-%s' % uuid.uuid4().hex[:6])
        pool = 'spl-bench-%s' % uuid.uuid4().hex[:6]
        os.makedirs(disks_dir, mode=0o755, exist_ok=True)
        self.pools.append(self.conn.storagePoolCreateXML(
            "<pool type='dir'><name>%s</name><target><path>%s</path></target></pool>" % (pool, disks_dir), 0))
        host.disks_pool, host.disks_dir = pool, disks_dir
        return host

    def args(self, host):
        return dict(instances_path=host.instances, disks_pool=host.disks_pool, nova_conf=host.nova_conf,
                    state_dir=os.path.join(host.root, 'state'))

    def cleanup(self):
        for pool in self.pools:
            pool.destroy()


def big_local(host, instance, size, data):
    path = os.path.join(host.instances, instance, 'disk.local')
    with open(path, 'r+b') as handle:
        handle.truncate(size)
        block = os.urandom(16 * MiB)
        for offset in range(0, data, len(block)):
            handle.seek(offset * (size // data))
            handle.write(block)
    subprocess.run(['sync'], check=True)
    return path


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    root = tempfile.mkdtemp(prefix='spl-bench-adopt-', dir='/var/tmp')
    os.chmod(root, 0o755)
    conn = open_connection('qemu:///system')
    bench = Bench(conn, root)
    hosts = []
    try:
        # 1. same filesystem, 20 GiB sparse with 1 GiB of data
        host = bench.host('same-fs', os.path.join(root, 'same-fs', 'disks'))
        hosts.append(host)
        instance = host.instance(config=False)
        local = big_local(host, instance, 20 * GiB, 1 * GiB)
        cp_time = timed('cp', '--sparse=always', local, os.path.join(root, 'cp-copy')) \
            + timed('sync', os.path.join(root, 'cp-copy'))
        os.unlink(os.path.join(root, 'cp-copy'))
        adopt_time, _result = module(bench.args(host))
        journal = os.path.join(host.root, 'state', 'journal', '%s.json' % instance)
        with open(journal) as handle:
            entry = json.load(handle)
        steps = entry['history'][-1]['steps'] if entry.get('history') else entry['done']  # a finished run: history
        first = [step for step in steps if step.get('disk') == 'disk.local']
        last = [step for step in steps if step['step'] in ('disk_info', 'domain')]
        disk_time = (last[0]['at'] - first[0]['at']) if first and last else float('nan')
        print('1. same filesystem, 20 GiB sparse disk (1 GiB data):')
        print('   cp --sparse=always + sync   %7.3f s' % cp_time)
        print('   legacy_disk_adopt module    %7.3f s  (%.0fx faster; the whole run, 2 disks, start-up included)'
              % (adopt_time, cp_time / adopt_time))
        print('   its disk.local steps        %7.3f s  (%.0fx faster; from the journal)'
              % (disk_time, cp_time / disk_time))

        # 2. other filesystem: 2 GiB dense, copy + verify vs qemu-img convert alone
        other = os.path.join(root, 'other-fs')
        os.makedirs(other)
        image = os.path.join(root, 'xfs.img')
        with open(image, 'wb') as handle:
            handle.truncate(6 * GiB)
        subprocess.run(['mkfs.xfs', '-q', '-f', image], check=True)
        device = subprocess.run(['losetup', '-f', '--show', image], check=True, capture_output=True,
                                text=True).stdout.strip()
        subprocess.run(['mount', device, other], check=True)
        try:
            host = bench.host('cross-fs', os.path.join(other, 'disks'))
            hosts.append(host)
            instance = host.instance(config=False)
            local = big_local(host, instance, 2 * GiB, 2 * GiB)
            convert = timed('qemu-img', 'convert', '-f', 'raw', '-O', 'raw', local, os.path.join(other, 'qi.raw')) \
                + timed('sync', os.path.join(other, 'qi.raw'))
            os.unlink(os.path.join(other, 'qi.raw'))
            adopt_time, _result = module(bench.args(host))
            print('2. other filesystem, 2 GiB dense disk:')
            print('   qemu-img convert + sync     %7.3f s' % convert)
            print('   adopt (copy+fsync+verify)   %7.3f s  (%.2fx the time; goal <= 1.5x)'
                  % (adopt_time, adopt_time / convert))
            for each in hosts[1:]:
                each.cleanup()
            bench.pools.pop().destroy()
        finally:
            subprocess.run(['umount', other], check=False)
            subprocess.run(['losetup', '-d', device], check=False)

        # 3. fleet scale
        host = bench.host('fleet', os.path.join(root, 'fleet', 'disks'))
        hosts.append(host)
        for _index in range(count):
            host.instance(config=False)
        adopt_time, result = module(bench.args(host))
        rerun_time, rerun = module(bench.args(host))
        print('3. %d shut-off instances, one module call:' % count)
        print('   adopt                       %7.3f s  (%s)' % (adopt_time, result['summary']))
        print('   idempotent rerun            %7.3f s  (changed=%s; goal well under 10 s)'
              % (rerun_time, rerun['changed']))
    finally:
        for host in hosts:
            host.cleanup()
        bench.cleanup()
        conn.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == '__main__':
    main()
