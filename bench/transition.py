# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""bench/transition: the transition playbook's idempotent rerun vs an equivalent per-instance task loop.

A fake Nova host (tests/integration/nova_host.py) with INSTANCES shut-off
instances on BASES sparse images is transitioned once by
``ansible-playbook storagepools.libvirt.transition``; then, on the adopted
host, the rerun of that playbook (one module call per host per step) is
timed against a playbook doing the same steps with one legacy_disk_adopt
task per instance (``loop``), as hand-written roles do. Goal: >= 20x.
Usage: transition.py [INSTANCES] [BASES]
"""

from __future__ import annotations

import datetime
import os
import re
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

LOOP_PLAY = """- name: The same steps, one legacy_disk_adopt task per instance
  hosts: all
  gather_facts: false
  roles:
    - role: storagepools.libvirt.pools
  tasks:
    - name: Image cache
      storagepools.libvirt.nova_image_cache:
        instances_path: "{{ storagepools_instances_path }}"
        cache_pool: "{{ storagepools_cache_pool }}"
        nova_conf: "{{ storagepools_nova_conf }}"
    - name: Adopt one instance
      storagepools.libvirt.legacy_disk_adopt:
        instances: ["{{ item }}"]
        instances_path: "{{ storagepools_instances_path }}"
        disks_pool: "{{ storagepools_disks_pool }}"
        cache_pool: "{{ storagepools_cache_pool }}"
        nova_conf: "{{ storagepools_nova_conf }}"
        state_dir: "{{ storagepools_state_dir }}"
      loop: "{{ storagepools_uuids }}"
"""


def task_seconds(log, name):
    """Seconds from the start of the task called ``name`` to the start of the next line of the play (the log
    Ansible writes with ANSIBLE_LOG_PATH has a timestamp per line)."""
    stamps = []
    with open(log) as handle:
        for line in handle:
            match = re.match(r'^(\d+-\d+-\d+ \d+:\d+:\d+,\d+) .*?\| (TASK \[.*?\]|PLAY RECAP)', line)
            if match:
                stamps.append((datetime.datetime.strptime(match.group(1), '%Y-%m-%d %H:%M:%S,%f'), match.group(2)))
    for (started, title), (ended, _next) in zip(stamps, stamps[1:]):
        if name in title:
            return (ended - started).total_seconds()
    return float('nan')


def playbook(inventory, play, *extra, log=None):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_LOCALHOST_WARNING='0')
    if log:
        env['ANSIBLE_LOG_PATH'] = log
    env.pop('PYTHONPATH', None)
    started = time.perf_counter()
    proc = subprocess.run([os.path.join(REPO, '.venv', 'bin', 'ansible-playbook'), play, '-i', inventory]
                          + list(extra), capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit('%s failed:\n%s' % (play, proc.stdout[-3000:] + proc.stderr[-3000:]))
    recap = proc.stdout.split('PLAY RECAP')[-1].strip().splitlines()
    return elapsed, recap[1].split(':', 1)[1].split() if len(recap) > 1 else []


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    bases = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    root = tempfile.mkdtemp(prefix='spl-bench-transition-', dir='/var/tmp')
    os.chmod(root, 0o755)
    conn = open_connection('qemu:///system')
    suffix = uuid.uuid4().hex[:6]
    host = NovaHost(conn, root, 'spl-bench-%s' % suffix)
    pools = ['spl-bench-cache-%s' % suffix, 'spl-bench-disks-%s' % suffix]
    try:
        images = [host.base] + [host.make_base('bench-image-%d' % index, size=64 * MiB) for index in range(1, bases)]
        uuids = [host.instance(config=False, base=images[index % len(images)]) for index in range(count)]
        inventory = os.path.join(root, 'inventory.ini')
        with open(inventory, 'w') as handle:
            handle.write(' '.join([
                'bench', 'ansible_connection=local', 'ansible_python_interpreter=%s' % sys.executable,
                'storagepools_instances_path=%s' % host.instances, 'storagepools_disks_path=%s/disks' % root,
                'storagepools_cache_pool=%s' % pools[0], 'storagepools_disks_pool=%s' % pools[1],
                'storagepools_nova_conf=%s' % host.nova_conf, 'storagepools_state_dir=%s/state' % root,
                'storagepools_report_dir=%s/report' % root]) + '\n')
        loop_play = os.path.join(root, 'loop.yml')
        with open(loop_play, 'w') as handle:
            handle.write(LOOP_PLAY)
        uuids_file = os.path.join(root, 'uuids.yml')
        with open(uuids_file, 'w') as handle:
            handle.write('storagepools_uuids:\n' + ''.join('  - %s\n' % each for each in uuids))

        first, recap = playbook(inventory, 'storagepools.libvirt.transition')
        print('%d instances on %d images (sparse), transition playbook:' % (count, bases))
        print('   first run (adopts everything)     %7.2f s  %s' % (first, ' '.join(recap)))
        logs = [os.path.join(root, 'rerun.log'), os.path.join(root, 'loop.log')]
        rerun, recap = playbook(inventory, 'storagepools.libvirt.transition', log=logs[0])
        print('   idempotent rerun, one call/step   %7.2f s  %s' % (rerun, ' '.join(recap)))
        looped, recap = playbook(inventory, loop_play, '-e', '@' + uuids_file, log=logs[1])
        print('   same steps, a task per instance   %7.2f s  %s' % (looped, ' '.join(recap)))
        print('   whole playbooks                   %7.1fx faster (goal >= 20x; the one-call run includes the '
              'report tasks the loop play lacks)' % (looped / rerun))
        step, loop_step = task_seconds(logs[0], 'Adopt every instance'), task_seconds(logs[1], 'Adopt one instance')
        print('   the adopt step alone              %7.2f s vs %.2f s: %.0fx faster' % (step, loop_step,
                                                                                        loop_step / step))
    finally:
        host.cleanup()
        for name in pools:
            try:
                pool = conn.storagePoolLookupByName(name)
            except Exception:  # never made: the first run failed early
                continue
            if pool.isActive():
                pool.destroy()
            pool.undefine()
        conn.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == '__main__':
    main()
