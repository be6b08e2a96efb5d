# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A long run shows its progress: legacy_disk_adopt under ``async``/``poll: 0`` in a real ansible-playbook,
watched with progress_info while it copies across filesystems, then collected with async_status."""

from __future__ import annotations

import contextlib
import json
import os
import time

from conftest import playbook, recap, run_module
from test_legacy_disk_adopt import other_fs_host  # noqa: F401  # pylint: disable=unused-import

from ansible_collections.storagepools.libvirt.plugins.module_utils._core import progress as run_progress

MiB = 1024 * 1024


@contextlib.contextmanager
def background_runs_awaited(state_dir):
    """On the way out (a failed assertion included), wait for the background runs to end before the fixtures
    remove the pool they write into."""
    try:
        yield
    finally:
        deadline = time.monotonic() + 120
        while any(run['state'] == run_progress.RUNNING for run in run_progress.read_runs(state_dir)) \
                and time.monotonic() < deadline:
            time.sleep(0.5)


def test_an_async_cross_filesystem_adoption_is_watched_while_it_copies(conn, other_fs_host, installed,
                                                                       workdir):  # noqa: F811
    host = other_fs_host(256)
    instance = host.instance(raw_local=os.urandom(16 * MiB))
    local = host.disk_paths(instance)['disk.local']
    with open(local, 'r+b') as handle:  # a second data extent after a hole: the copy stops between them
        handle.seek(112 * MiB)
        handle.write(os.urandom(16 * MiB))
    size = os.path.getsize(local)
    before = host.checksums(instance)
    watched, finished = os.path.join(workdir, 'watched.json'), os.path.join(workdir, 'finished.json')
    with background_runs_awaited(host.state_dir):
        code, output = playbook(installed, '''\
        - name: adopt in the background
          storagepools.libvirt.legacy_disk_adopt:
            instances_path: {instances}
            disks_pool: {pool}
            cache_pool: {cache}
            state_dir: {state}
            nova_conf: {nova_conf}
          environment:
            STORAGEPOOLS_PAUSE_AT: progress-copy  # holds the run 5 s after each disk's first copied bytes
          async: 600
          poll: 0
          register: adoption
        - name: watch it from another process until disk.local is being copied
          storagepools.libvirt.progress_info:
            state_dir: {state}
            module: legacy_disk_adopt
          register: progress
          until: progress.running | selectattr('disk', 'equalto', 'disk.local') | selectattr('bytes_done') | list | length > 0
          retries: 60
          delay: 1
        - name: keep what was seen
          ansible.builtin.copy:
            content: "{{{{ progress | to_json }}}}"
            dest: {watched}
            mode: '0600'
        - name: collect the result
          ansible.builtin.async_status:
            jid: "{{{{ adoption.ansible_job_id }}}}"
          register: adopted
          until: adopted.finished
          retries: 120
          delay: 1
        - name: the run's status afterwards
          storagepools.libvirt.progress_info:
            state_dir: {state}
          register: after
        - name: keep the result
          ansible.builtin.copy:
            content: "{{{{ {{'adopted': adopted, 'after': after}} | to_json }}}}"
            dest: {finished}
            mode: '0600'
        '''.format(instances=host.instances, pool=host.disks_pool, cache=host.cache_pool, state=host.state_dir,
                   nova_conf=host.nova_conf, watched=watched, finished=finished))
    assert code == 0, output
    assert recap(output)['failed'] == '0', output
    with open(watched) as handle:
        seen = json.load(handle)
    [run] = [run for run in seen['running'] if run['disk'] == 'disk.local']
    assert run['module'] == 'legacy_disk_adopt' and run['state'] == 'running', run
    assert run['instance'] == instance and run['phase'] == 'copy', run
    assert run['bytes_total'] == size and 0 < run['bytes_done'] < size, run
    assert run['percent'] == round(100.0 * run['bytes_done'] / size, 1), run
    with open(finished) as handle:
        outcome = json.load(handle)
    adopted = outcome['adopted']
    assert adopted['finished'] and not adopted.get('failed'), adopted
    result = adopted['instances'][instance]
    assert result['result'] == 'adopted', result
    assert {disk['name']: disk['method'] for disk in result['disks']}['disk.local'] == 'copy', result
    [after] = outcome['after']['runs']
    assert after['pid'] == run['pid'] and after['state'] == 'finished' and after['finished'], after
    assert after['phase'] == 'verify' and after['bytes_done'] == after['bytes_total'], after
    assert outcome['after']['running'] == []
    assert host.checksums(instance) == before
    assert os.path.realpath(local) == os.path.join(host.disks_dir, '%s_disk.local' % instance)


def test_a_check_mode_run_writes_no_status(other_fs_host):  # noqa: F811
    host = other_fs_host(64)
    host.instance()
    params = dict(instances_path=host.instances, disks_pool=host.disks_pool, cache_pool=host.cache_pool,
                  state_dir=host.state_dir, nova_conf=host.nova_conf)
    planned = run_module('legacy_disk_adopt', params, check=True)
    assert planned['changed'] is True, planned
    assert not os.path.exists(os.path.join(host.state_dir, 'progress'))
    listed = run_module('progress_info', dict(state_dir=host.state_dir))
    assert listed['runs'] == [] and listed['changed'] is False, listed
