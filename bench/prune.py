# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""bench/prune: reclaiming DELETED of INSTANCES instances' volumes, one module call vs a task per volume.

The volumes are made directly in a dir pool (a 1 MiB sparse raw ``<uuid>_disk`` with a record each, as
adoption leaves them) instead of adopting INSTANCES instances (faster to set up, the same pool to prune);
the surviving instances have shut-off OS-less domains on their volumes. Each round re-makes the deleted
instances' volumes, then times, side by side, ``ansible-playbook`` with one ``nova_storage_prune`` task and
with one ``ansible.builtin.command: virsh vol-delete`` task per orphaned volume (``loop``; the operator's
list of orphans given to it for free). Two measures, both printed with their ratio (goal >= 20x), never
asserted:

- the task: from the task's start to its end, as the play runs it (bench/callback/task_seconds.py): what the
  issue compares, one module call against a task per volume, without what every playbook pays anyway;
- the whole ansible-playbook run, start-up included, beside a one-task ``ansible.builtin.ping`` playbook: the
  floor any one-task playbook pays, and the ratio the loop would have against that floor.
Usage: prune.py [INSTANCES] [DELETED] [ROUNDS]
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(REPO, '.build', 'collections')
CALLBACKS = os.path.join(REPO, 'bench', 'callback')
sys.path[:0] = [COLLECTIONS, os.path.join(REPO, 'tests', 'integration')]

import libvirt  # noqa: E402

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.records import (  # noqa: E402
    make_record,
    write_file_metadata,
)
from nova_host import DISK, DOMAIN  # noqa: E402

OURS = """- hosts: localhost
  gather_facts: false
  tasks:
    - storagepools.libvirt.nova_storage_prune:
        instances_path: {instances}
        disks_pool: {pool}
        state_dir: {state}
        orphan_min_age: 0
        shared_instances_path: local
"""
FLOOR = """- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.ping:
"""
THEIRS = """- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.command: virsh -c qemu:///system vol-delete --pool {pool} {{{{ item }}}}
      loop: {volumes}
"""


def make_volumes(conn, pool, target, uuids):
    for instance in uuids:
        path = os.path.join(target, '%s_disk' % instance)
        with open(path, 'wb') as handle:
            handle.truncate(1 << 20)
        write_file_metadata(path, make_record('raw', 1 << 20, {'path': '/var/lib/nova/instances/%s/disk' % instance}))
    conn.storagePoolLookupByName(pool).refresh(0)  # our own raw files: nothing hostile to probe


def play(root, text):
    path = os.path.join(root, 'play.yml')
    with open(path, 'w') as handle:
        handle.write(text)
    tasks = os.path.join(root, 'task-seconds.jsonl')
    if os.path.exists(tasks):
        os.unlink(tasks)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_LOCALHOST_WARNING='0',
               ANSIBLE_INVENTORY_UNPARSED_WARNING='0', ANSIBLE_CALLBACK_PLUGINS=CALLBACKS,
               ANSIBLE_CALLBACKS_ENABLED='task_seconds', BENCH_TASK_SECONDS=tasks)
    start = time.monotonic()
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', 'localhost,',
                           '-c', 'local', '-e', 'ansible_python_interpreter=%s' % sys.executable, path],
                          capture_output=True, text=True, env=env, check=False)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stdout + proc.stderr)
    with open(tasks) as handle:  # the play's one task
        task = sum(json.loads(line)['seconds'] for line in handle)
    return seconds, task


def main(instances=200, deleted=50, rounds=3):
    conn = libvirt.open('qemu:///system')
    root = tempfile.mkdtemp(prefix='bench-prune-', dir='/var/tmp')
    os.chmod(root, 0o755)
    target, instances_path = os.path.join(root, 'disks'), os.path.join(root, 'instances')
    os.makedirs(target)
    os.makedirs(instances_path)
    pool = 'spl-bench-prune-%s' % uuid.uuid4().hex[:6]
    conn.storagePoolCreateXML("<pool type='dir'><name>%s</name><target><path>%s</path></target></pool>"
                              % (pool, target), 0)
    living = [str(uuid.uuid4()) for _index in range(instances - deleted)]
    try:
        make_volumes(conn, pool, target, living)
        for instance in living:
            disk = DISK.format(device='disk', format='raw', path=os.path.join(target, '%s_disk' % instance),
                               dev='vda', bus='virtio', extra='')
            conn.defineXML(DOMAIN.format(name='spl-bench-%s' % instance[:8], uuid=instance, disks=disk))
        ours, theirs, floor = [], [], []
        load = os.getloadavg()[0]
        for _round in range(rounds):
            gone = [str(uuid.uuid4()) for _index in range(deleted)]
            make_volumes(conn, pool, target, gone)
            ours.append(play(root, OURS.format(instances=instances_path, pool=pool, state=os.path.join(root, 'state'))))
            gone = [str(uuid.uuid4()) for _index in range(deleted)]
            make_volumes(conn, pool, target, gone)
            theirs.append(play(root, THEIRS.format(pool=pool, volumes=['%s_disk' % name for name in gone])))
            floor.append(play(root, FLOOR))
        print('%d instances, %d deleted, %d rounds (load average before: %.2f)' % (instances, deleted, rounds, load))
        for title, index in (('the task itself (start to end, as the play runs it)', 1),
                             ('the whole ansible-playbook run (start-up included)', 0)):
            mine, loop, least = (statistics.median(run[index] for run in runs) for runs in (ours, theirs, floor))
            print(title + ':')
            for label, runs in (('nova_storage_prune, one task', ours), ('virsh vol-delete, a task per volume', theirs),
                                ('ansible.builtin.ping, one task', floor)):
                print('  %-36s median %6.2f s  %s' % (label, statistics.median(run[index] for run in runs),
                                                      ['%.2f' % run[index] for run in runs]))
            print('  ratio (per-volume / one call): %.1fx (goal >= 20x); per-volume / one ping: %.1fx'
                  % (loop / mine, loop / least))
    finally:
        for instance in living:
            try:
                conn.lookupByUUIDString(instance).undefine()
            except libvirt.libvirtError:
                pass
        conn.storagePoolLookupByName(pool).destroy()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == '__main__':
    main(*(int(arg) for arg in sys.argv[1:]))
