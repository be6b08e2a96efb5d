# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Time a no-op pool task: ours vs community.libvirt.virt_pool.

The task is `state: active` on the same existing, active pool; ours also
reads and compares the pool's XML. Two measurements:

- AnsiballZ: the exact file Ansible runs on a managed host for the task
  (kept with ANSIBLE_KEEP_REMOTE_FILES), executed RUNS times. This is what an
  operator waits for per host and task; module code runs from a zip there,
  so nothing is ever bytecode-cached.
- module process: `python -m <module> args.json` from the collection trees.

Beside them, ansible.builtin.ping through AnsiballZ: what any module costs
before it does anything (Python, the AnsiballZ payload, Ansible's module
runner). What is left of each task beyond that floor is what the two modules
themselves cost (for both, most of it importing the libvirt bindings).

Ours is run as a rerun: its first no-op keeps a verified record
(_core/noop_memo.py) and the timed runs are the reruns an operator's
playbooks make.

Runs alternate between the two modules so drift of the machine hits both
alike. Usage: pool_noop.py RUNS COLLECTIONS_PATH_WITH_COMMUNITY_LIBVIRT
"""

from __future__ import annotations

import glob
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
OURS = os.path.join(REPO, '.build', 'collections')
BIN = os.path.dirname(sys.executable)
# issue 14's Performance section: a no-op pool task at most this fraction of community.libvirt.virt_pool's time
ACCEPTANCE = 0.95
GOAL = 0.90


def timed(command, env=None):
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    result = json.loads(proc.stdout)
    if result.get('failed') or result.get('changed'):
        raise SystemExit('%s did not run as a no-op: %s' % (' '.join(command), proc.stdout))
    return elapsed


def ansiballz(fqcn, args, collections, workdir):
    """Run the task once through Ansible and keep the AnsiballZ file it ran."""
    remote_tmp = tempfile.mkdtemp(dir=workdir)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_KEEP_REMOTE_FILES='1',
               ANSIBLE_REMOTE_TMP=remote_tmp, ANSIBLE_LOCALHOST_WARNING='0')
    env.pop('PYTHONPATH', None)
    subprocess.run([os.path.join(BIN, 'ansible'), 'localhost', '-c', 'local', '-i', 'localhost,',
                    '-e', 'ansible_python_interpreter=%s' % sys.executable, '-m', fqcn, '-a', json.dumps(args)],
                   capture_output=True, text=True, env=env, check=True)
    return glob.glob(os.path.join(remote_tmp, '*', 'AnsiballZ_*.py'))[0]


def report(title, ours, community):
    ratio = statistics.median(ours) / statistics.median(community)
    print(title)
    print('  storagepools.libvirt.virt_pool_ensure  median %6.1f ms  (min %6.1f)' % (
        statistics.median(ours) * 1000, min(ours) * 1000))
    print('  community.libvirt.virt_pool            median %6.1f ms  (min %6.1f)' % (
        statistics.median(community) * 1000, min(community) * 1000))
    print('  ratio ours/community: %.2fx (acceptance <= %.2fx, goal %.2fx): %s' % (
        ratio, ACCEPTANCE, GOAL, 'met' if ratio <= ACCEPTANCE else 'NOT met'))


def main():
    runs, theirs = int(sys.argv[1]), sys.argv[2]
    name = 'spl-bench-%s' % uuid.uuid4().hex[:6]
    workdir = tempfile.mkdtemp(prefix='spl-bench-', dir='/var/tmp')
    target = os.path.join(workdir, 'pool')
    ours_args = {'name': name, 'type': 'dir', 'target': target, 'state_dir': os.path.join(workdir, 'state')}
    their_args = {'name': name, 'state': 'active'}
    collections = OURS + os.pathsep + theirs
    try:
        # define, build and start the pool (a change), then check both are no-ops
        subprocess.run([os.path.join(BIN, 'ansible'), 'localhost', '-c', 'local', '-i', 'localhost,',
                        '-e', 'ansible_python_interpreter=%s' % sys.executable,
                        '-m', 'storagepools.libvirt.virt_pool_ensure', '-a', json.dumps(ours_args)],
                       capture_output=True, env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections), check=True)
        ours_zip = ansiballz('storagepools.libvirt.virt_pool_ensure', ours_args, collections, workdir)
        their_zip = ansiballz('community.libvirt.virt_pool', their_args, collections, workdir)
        ping_zip = ansiballz('ansible.builtin.ping', {'data': 'pong'}, collections, workdir)

        args_files = {}
        for key, args in (('ours', ours_args), ('theirs', their_args)):
            args_files[key] = os.path.join(workdir, key + '.json')
            with open(args_files[key], 'w') as handle:
                json.dump({'ANSIBLE_MODULE_ARGS': args}, handle)
        module_env = dict(os.environ, PYTHONPATH=collections)
        ours_module = [sys.executable, '-m', 'ansible_collections.storagepools.libvirt.plugins.modules.virt_pool_ensure',
                       args_files['ours']]
        their_module = [sys.executable, '-m', 'ansible_collections.community.libvirt.plugins.modules.virt_pool',
                        args_files['theirs']]

        zipped = {'ours': [], 'theirs': [], 'ping': []}
        process = {'ours': [], 'theirs': []}
        for _run in range(runs):
            zipped['ours'].append(timed([sys.executable, ours_zip]))
            zipped['theirs'].append(timed([sys.executable, their_zip]))
            zipped['ping'].append(timed([sys.executable, ping_zip]))
            process['ours'].append(timed(ours_module, module_env))
            process['theirs'].append(timed(their_module, module_env))
    finally:
        subprocess.run(['virsh', '-q', 'pool-destroy', name], capture_output=True, check=False)
        subprocess.run(['virsh', '-q', 'pool-undefine', name], capture_output=True, check=False)
        shutil.rmtree(workdir, ignore_errors=True)

    print('no-op pool task (state active on an existing active pool), %d runs each' % runs)
    report('AnsiballZ, as a managed host runs the task:', zipped['ours'], zipped['theirs'])
    floor = statistics.median(zipped['ping'])
    ours, theirs = statistics.median(zipped['ours']) - floor, statistics.median(zipped['theirs']) - floor
    print('  ansible.builtin.ping (any module\'s floor)  median %6.1f ms' % (floor * 1000))
    print('  beyond that floor: ours %.1f ms, community %.1f ms: %.2fx' % (ours * 1000, theirs * 1000, ours / theirs))
    report('module process from the collection tree:', process['ours'], process['theirs'])


if __name__ == '__main__':
    main()
