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
import subprocess
import time

import pytest
from conftest import playbook, recap, run_module, start_module
from test_legacy_disk_adopt import other_fs_host  # noqa: F401  # pylint: disable=unused-import
from test_rbd_cutover import host as rbd_host  # noqa: F401  # pylint: disable=unused-import

from ansible_collections.storagepools.libvirt.plugins.module_utils._core import progress as run_progress
from ansible_collections.storagepools.libvirt.plugins.module_utils._images import copy as data_copy

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
                   nova_conf=host.nova_conf, watched=watched, finished=finished),
            # the job files in one named place: with HOME not root's passwd home (CI's cold HOME) the async
            # wrapper and async_status would each expand ~ to another one
            '-e', 'ansible_async_dir=%s' % os.path.join(workdir, 'async'))
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


def wait_for_running(state_dir, phase, disk=None):
    """The first status of ``phase`` (of ``disk``) with bytes done (STORAGEPOOLS_PAUSE_AT=progress-<phase> holds
    the run there 5 s)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for run in run_progress.read_runs(state_dir):
            if run['state'] == run_progress.RUNNING and run['phase'] == phase and run['bytes_done'] \
                    and disk in (None, run['disk']):
                return run
        time.sleep(0.05)
    raise AssertionError('no run showed bytes of %s' % phase)


def reflinks(directory):
    paths = [os.path.join(directory, name) for name in ('reflink-a', 'reflink-b')]
    for path in paths:
        with open(path, 'wb') as handle:
            handle.write(b'x' * 4096)
    with open(paths[0], 'rb') as source, open(paths[1], 'r+b') as target:
        shared = data_copy.reflink(source.fileno(), target.fileno())
    for path in paths:
        os.unlink(path)
    return shared


@pytest.mark.parametrize('source_format, phase', [('qcow2', 'convert'), ('raw', 'copy')])
def test_a_full_volume_copy_shows_its_progress(pools, workdir, source_format, phase):
    if phase == 'copy' and reflinks(workdir):
        pytest.skip('the scratch filesystem shares extents (FICLONE): a raw copy is one step, with no bytes between')
    pool, target = pools.new(), os.path.join(workdir, 'dst')
    made = run_module('virt_pool_ensure', dict(name=pool, type='dir', target=target, autostart=False))
    assert not made.get('failed'), made
    size = 64 * MiB
    image = os.path.join(workdir, 'image.%s' % source_format)
    subprocess.run(['qemu-img', 'create', '-q', '-f', source_format, image, str(size)], check=True)
    subprocess.run(['qemu-io', '-f', source_format, '-c', 'write -P 0x5a 0 8M', '-c', 'write -P 0xa5 32M 8M',
                    image], check=True, capture_output=True)
    state_dir = os.path.join(workdir, 'state')
    args = dict(pool=pool, name='%s-progress' % pool, format='raw', state_dir=state_dir,
                source={'path': image, 'format': source_format})
    with background_runs_awaited(state_dir):
        cloning = start_module('virt_volume_clone', args, env={'STORAGEPOOLS_PAUSE_AT': 'progress-%s' % phase})
        run = wait_for_running(state_dir, phase)
        out, err = cloning.communicate(timeout=120)
    assert 'Traceback' not in out + err, out + err
    assert json.loads(out)['changed'] is True, out
    assert run['module'] == 'virt_volume_clone' and run['pid'] == cloning.pid, run
    assert run['disk'] == '%s/%s' % (pool, args['name']) and run['instance'] is None, run
    assert run['bytes_total'] == size and 0 < run['bytes_done'] < size, run
    [done] = run_progress.read_runs(state_dir)
    assert done['state'] == 'finished' and done['bytes_done'] == size, done
    rerun = run_module('virt_volume_clone', args)
    assert rerun['changed'] is False, rerun
    assert run_progress.read_runs(state_dir) == [done]  # a run with nothing to copy writes no status


def test_a_cutover_import_into_rbd_shows_its_progress(rbd_host):
    instance = rbd_host.instance(raw_local=os.urandom(16 * MiB))
    local = rbd_host.disk_paths(instance)['disk.local']
    with open(local, 'r+b') as handle:  # librbd gets the data chunk by chunk: the first is shown, then held
        handle.seek(56 * MiB)
        handle.write(os.urandom(8 * MiB))
    size = os.path.getsize(local)
    params = dict(instances_path=rbd_host.instances, disks_pool=rbd_host.rbd_pool, ceph_keyring=rbd_host.keyring,
                  state_dir=rbd_host.state_dir, nova_conf=rbd_host.nova_conf)
    with background_runs_awaited(rbd_host.state_dir):
        adopting = start_module('legacy_disk_adopt', params, env={'STORAGEPOOLS_PAUSE_AT': 'progress-import'})
        run = wait_for_running(rbd_host.state_dir, 'import', disk='disk.local')
        out, err = adopting.communicate(timeout=300)
    assert 'Traceback' not in out + err, out + err
    assert json.loads(out)['instances'][instance]['result'] == 'adopted', out
    assert run['instance'] == instance and run['bytes_total'] == size and 0 < run['bytes_done'] < size, run
    [done] = run_progress.read_runs(rbd_host.state_dir)
    assert done['state'] == 'finished' and done['pid'] == adopting.pid, done


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
