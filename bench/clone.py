# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""bench/clone: virt_volume_clone's data movement against the plain tools.

Full copies raw->raw and raw->qcow2 of a 2 GiB sparse and a 2 GiB dense raw
image, against `cp --sparse=always` and `qemu-img convert` on the same files,
and cow clones of a 1 GiB and a 20 GiB (sparse) parent. Every side ends with
its data on disk: ours fsyncs, so the plain tools are followed by `sync FILE`.

The images are volumes of a source pool: "ours" is the full copy across pools
(source pool/volume). An import of the same file by ``source.path`` is timed
beside it. A conversion is, in both cases, libvirt's createXML of the empty
volume (``qemu-img create`` for a qcow2) and then ``qemu-img convert -n``
into it from the inspected source file (never libvirt's createXMLFrom, which
reads the source as the format libvirt probed).

"ours" is the module's plan applied in this process (libvirt calls, copy,
record); a module run adds its fixed start-up (Python, Ansible, libvirt
imports: ~0.2 s), printed once at the end. Usage: clone.py [REPEATS]
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, '.build', 'collections'))

from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.volume import cloner_for  # noqa: E402
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.connection import (
    open_connection  # noqa: E402,
)

GiB = 1024 ** 3
URI = 'qemu:///system'


def settle():
    """Every side starts alike: dirty pages written out and the page cache dropped (root only)."""
    subprocess.run(['sync'], check=True)
    try:
        with open('/proc/sys/vm/drop_caches', 'w') as handle:
            handle.write('1\n')
    except OSError:
        pass  # not root: the numbers are noisier


def timed(action):
    settle()
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def run(*argv):
    subprocess.run(argv, check=True, capture_output=True)


def make_images(directory):
    sparse = os.path.join(directory, 'sparse.raw')
    with open(sparse, 'wb') as handle:
        handle.truncate(2 * GiB)
        for offset in range(0, 2 * GiB, 256 * 1024 * 1024):
            handle.seek(offset)
            handle.write(os.urandom(1024 * 1024))
    dense = os.path.join(directory, 'dense.raw')
    with open(dense, 'wb') as handle:
        block = os.urandom(16 * 1024 * 1024)
        for _block in range(2 * GiB // len(block)):
            handle.write(block)
    parents = {}
    for size in (1, 20):
        parent = os.path.join(directory, 'parent-%dg.raw' % size)
        with open(parent, 'wb') as handle:
            handle.truncate(size * GiB)
            handle.write(os.urandom(1024 * 1024))
        parents[size] = parent
    run('sync')
    return {'sparse': sparse, 'dense': dense}, parents


def ours(conn, pool, name, source, fmt=None, mode='copy'):
    """``source``: as the module's ``source`` option (a pool volume or a path); declared raw."""
    cloner = cloner_for(conn, URI, pool, name)
    try:
        plan = cloner.plan_clone(dict(source, format='raw'), mode, fmt, None, None, False)
        return timed(plan.apply), cloner.method
    finally:
        cloner.close()


def dir_pool(conn, name, target):
    return conn.storagePoolCreateXML(
        "<pool type='dir'><name>%s</name><target><path>%s</path></target></pool>" % (name, target), 0)


def median_or_none(values):
    return statistics.median(values) if values else None


def main():
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    work = tempfile.mkdtemp(prefix='spl-bench-clone-', dir='/var/tmp')
    os.chmod(work, 0o755)
    conn = open_connection(URI)
    prefix = 'spl-bench-%s' % uuid.uuid4().hex[:6]
    pools = []
    try:
        for directory in ('source', 'pool', 'plain'):
            os.mkdir(os.path.join(work, directory))
        images, parents = make_images(os.path.join(work, 'source'))
        pools.append(dir_pool(conn, prefix + '-src', os.path.join(work, 'source')))  # the images are its volumes
        pools.append(dir_pool(conn, prefix, os.path.join(work, 'pool')))
        pool = pools[-1]
        print('bench/clone: %d repeats (sparse: %d), medians in seconds (data on disk at the end of each)'
              % (repeats, repeats * 5))
        header = ('case', 'cp', 'qemu-img', 'ours', 'ours path', 'our method (volume, path)', 'ours vs faster (path)')
        print('%-18s %7s %8s %9s %9s  %-26s %s' % header)
        for kind, image in sorted(images.items()):
            for fmt in ('raw', 'qcow2'):
                times = {'cp': [], 'qemu-img': [], 'ours': [], 'path': []}
                methods = {}
                out = os.path.join(work, 'plain', 'out')
                plain = {'qemu-img': ('qemu-img', 'convert', '-f', 'raw', '-O', fmt, image, out)}
                if fmt == 'raw':
                    plain['cp'] = ('cp', '--sparse=always', image, out)
                sources = {'ours': {'pool': prefix + '-src', 'volume': os.path.basename(image)},
                           'path': {'path': image}}
                sides = sorted(plain) + sorted(sources)
                # a sparse side takes ~0.1 s and its few-ms differences are within the noise: more repeats
                for repeat in range(repeats * 5 if kind == 'sparse' else repeats):
                    # each repeat starts with another side, so the order favours none of them
                    for side in sides[repeat % len(sides):] + sides[:repeat % len(sides)]:
                        if side in plain:
                            times[side].append(timed(lambda: run(*plain[side]) or run('sync', out)))
                            os.unlink(out)
                            continue
                        name = '%s-%s-%s-%d' % (kind, fmt, side, repeat)
                        elapsed, methods[side] = ours(conn, prefix, name, sources[side], fmt)
                        times[side].append(elapsed)
                        pool.storageVolLookupByName(name).delete(0)
                medians = {tool: median_or_none(values) for tool, values in times.items()}
                fastest = min(medians[tool] for tool in ('cp', 'qemu-img') if medians[tool])
                print('%-18s %7s %8.3f %9.3f %9.3f  %-26s %.2fx (%.2fx)' % (
                    '%s raw->%s' % (kind, fmt), '%.3f' % medians['cp'] if medians['cp'] else '-',
                    medians['qemu-img'], medians['ours'], medians['path'],
                    '%s, %s' % (methods['ours'], methods['path']),
                    fastest / medians['ours'], fastest / medians['path']))
        print('(goal: a full copy >= 0.9x the speed of the faster plain tool)')
        for size, parent in sorted(parents.items()):
            values = []
            for repeat in range(repeats):
                name = 'cow-%dg-%d' % (size, repeat)
                elapsed, _method = ours(conn, prefix, name, {'path': parent}, mode='cow')
                values.append(elapsed)
                pool.storageVolLookupByName(name).delete(0)
            print('cow clone of a %2d GiB parent: %.3f s (qcow2 overlay; goal: equal for both sizes, < 0.2 s)'
                  % (size, statistics.median(values)))
        module = [sys.executable, '-c', 'import ansible.module_utils.basic, libvirt, lxml.etree; '
                  'import ansible_collections.storagepools.libvirt.plugins.module_utils._converge.volume']
        env = dict(os.environ, PYTHONPATH=os.path.join(REPO, '.build', 'collections'))
        startup = statistics.median(timed(lambda: subprocess.run(module, env=env, check=True))
                                    for _run in range(5))
        print('a module run adds its start-up: %.3f s' % startup)
    finally:
        for made in reversed(pools):
            made.destroy()
        conn.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
