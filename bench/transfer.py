# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""bench/transfer: virt_volume_clone from another libvirt host (source.uri) against the plain tools.

A 2 GiB dense and a 20 GiB sparse (256 MiB of data) raw volume of a second
libvirtd (tests/integration/peer_libvirtd.py, on 127.0.0.9, reached over tcp)
copied into a dir pool of the system libvirtd:

- ours: the module's plan applied in this process (create, sparse download
  stream written here, fsync, record), as bench/clone times it;
- virsh: `virsh vol-download --sparse` from the peer into a file, then
  `vol-create-as` and `vol-upload --sparse` from that file into the
  destination pool (what one does by hand between two hosts), then sync;
- cp: `cp --sparse=always` of the source file to the destination directory,
  then sync: the local copy no host-to-host transfer can beat.

Every side ends with its data on disk; the page cache is dropped before each
side (root) and each repeat starts with another side. Printed: medians,
ratios (the faster plain tool's time over ours), and for the sparse volume
the time per GiB of data. Usage: transfer.py [REPEATS]
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, '.build', 'collections'))
sys.path.insert(0, os.path.join(REPO, 'tests', 'integration'))

from clone import dir_pool, timed  # noqa: E402 (bench/clone.py: the same settle-then-time)
from peer_libvirtd import PeerLibvirtd  # noqa: E402

from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.volume import cloner_for  # noqa: E402
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.connection import (  # noqa: E402
    open_connection,
)

GiB = 1024 ** 3
MiB = 1024 ** 2
URI = 'qemu:///system'
PEER_ADDRESS = '127.0.0.9'


def run(*argv):
    subprocess.run(argv, check=True, capture_output=True, timeout=3600)


def make_volumes(directory):
    """{kind: (path, data bytes)}: a dense 2 GiB and a sparse 20 GiB raw file (the peer pool's volumes)."""
    dense = os.path.join(directory, 'dense.raw')
    with open(dense, 'wb') as handle:
        block = os.urandom(16 * MiB)
        for _block in range(2 * GiB // len(block)):
            handle.write(block)
    sparse = os.path.join(directory, 'sparse.raw')
    with open(sparse, 'wb') as handle:
        handle.truncate(20 * GiB)
        for offset in range(0, 20 * GiB, 20 * GiB // 16):  # 16 extents of 16 MiB
            handle.seek(offset)
            handle.write(os.urandom(16 * MiB))
    run('sync')
    return {'dense': (dense, 2 * GiB), 'sparse': (sparse, 256 * MiB)}


def ours(conn, pool, name, source):
    cloner = cloner_for(conn, URI, pool, name)
    try:
        plan = cloner.plan_clone(dict(source, format='raw'), 'copy', None, None, None, False)
        return timed(plan.apply), cloner.method
    finally:
        cloner.close()


def main():
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    work = tempfile.mkdtemp(prefix='spl-bench-transfer-', dir='/var/tmp')
    os.chmod(work, 0o755)
    for directory in ('source', 'pool', 'plain', 'staging'):
        os.mkdir(os.path.join(work, directory))
    peer = PeerLibvirtd(os.path.join(work, 'peer'), address=PEER_ADDRESS).start()
    conn = open_connection(URI)
    peer_conn = open_connection(peer.uri)
    prefix = 'spl-bench-transfer-%s' % uuid.uuid4().hex[:6]
    made = []
    try:
        volumes = make_volumes(os.path.join(work, 'source'))
        made.append(dir_pool(peer_conn, prefix + '-src', os.path.join(work, 'source')))
        made.append(dir_pool(conn, prefix, os.path.join(work, 'pool')))
        pool = made[-1]
        print('bench/transfer: %d repeats, medians in seconds (data on disk at the end of each); source on %s'
              % (repeats, peer.uri))
        print('%-30s %8s %8s %8s  %-8s %s' % ('case', 'cp', 'virsh', 'ours', 'method', 'ours vs faster (vs virsh)'))
        for kind, (path, data) in sorted(volumes.items()):
            volume = os.path.basename(path)
            size = os.stat(path).st_size
            staged = os.path.join(work, 'staging', volume)
            copied = os.path.join(work, 'plain', volume)
            times = {'cp': [], 'virsh': [], 'ours': []}
            method = None

            def virsh(name):
                run('virsh', '-c', peer.uri, 'vol-download', '--sparse', '--pool', prefix + '-src', volume, staged)
                run('virsh', '-c', URI, 'vol-create-as', prefix, name, str(size), '--allocation', '0',
                    '--format', 'raw')
                run('virsh', '-c', URI, 'vol-upload', '--sparse', '--pool', prefix, name, staged)
                run('sync', '-f', os.path.join(work, 'pool'))

            sides = sorted(times)
            for repeat in range(repeats):
                for side in sides[repeat % len(sides):] + sides[:repeat % len(sides)]:
                    name = '%s-%s-%d' % (kind, side, repeat)
                    if side == 'cp':
                        times[side].append(timed(lambda: run('cp', '--sparse=always', path, copied)
                                                 or run('sync', copied)))
                        os.unlink(copied)
                        continue
                    if side == 'virsh':
                        times[side].append(timed(lambda: virsh(name)))
                        os.unlink(staged)
                    else:
                        elapsed, method = ours(conn, prefix, name, {'uri': peer.uri, 'pool': prefix + '-src',
                                                                    'volume': volume})
                        times[side].append(elapsed)
                        written = os.path.join(work, 'pool', name)
                        if os.stat(written).st_blocks * 512 > data * 11 // 10:
                            raise SystemExit('%s arrived with %d bytes allocated for %d of data'
                                             % (name, os.stat(written).st_blocks * 512, data))
                    pool.storageVolLookupByName(name).delete(0)
            medians = {side: statistics.median(values) for side, values in times.items()}
            fastest = min(medians['cp'], medians['virsh'])
            print('%-30s %8.3f %8.3f %8.3f  %-8s %.2fx (%.2fx)' % (
                '%s %d GiB (%d MiB data)' % (kind, size // GiB, data // MiB), medians['cp'], medians['virsh'],
                medians['ours'], method, fastest / medians['ours'], medians['virsh'] / medians['ours']))
            if kind == 'sparse':
                print('%-30s %8.3f %8.3f %8.3f  s per GiB of data (sparse: time follows the data, not the size)'
                      % ('', medians['cp'] * GiB / data, medians['virsh'] * GiB / data, medians['ours'] * GiB / data))
        print('(goal: ours >= 0.9x the faster plain tool; cp is a local copy, the lower bound of any transfer)')
    finally:
        for pool_made in reversed(made):
            pool_made.destroy()
        peer_conn.close()
        conn.close()
        peer.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
