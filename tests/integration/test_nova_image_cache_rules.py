# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Our statement of Nova's image cache rules (_nova/image_cache.py) against Nova 34's own code.

Nova runs from .venv-nova as a subprocess (nova_cache_manager.py): its get_cache_fname, its
ImageCacheManager.update() over a real instances_path, its external lock. What Nova removes must be exactly
what NovaRules says it removes, and the prune planner (base_prune_plan.py) quarantines a file base of that
_base only when Nova removes it too.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import time
import uuid

import pytest

from ansible_collections.storagepools.libvirt.plugins.module_utils._converge import base_prune_plan as prune
from ansible_collections.storagepools.libvirt.plugins.module_utils._nova import image_cache as rules

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOVA_PYTHON = os.path.join(REPO, '.venv-nova', 'bin', 'python')
DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'nova_cache_manager.py')
HOUR, DAY = 3600, 86400


def nova(request: dict) -> dict:
    """Run Nova's own code (nova_cache_manager.py) with ``request``; its JSON answer."""
    assert os.path.exists(NOVA_PYTHON), 'Nova 34 is installed in .venv-nova by scripts/setup.sh'
    proc = subprocess.run([NOVA_PYTHON, '-W', 'ignore', DRIVER, json.dumps(request)], capture_output=True,
                          text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def test_cache_fname_is_nova_get_cache_fname():
    image_ids = [str(uuid.uuid4()) for _count in range(3)] + ['cirros', 'ïmage-ünicode', '']
    assert nova({'action': 'cache_fname', 'image_ids': image_ids}) == dict(
        (image_id, rules.cache_fname(image_id)) for image_id in image_ids)


class Host:
    """An instances_path laid out as Nova lays one out: ``_base`` files of given ages, instance directories
    with a qcow2 ``disk`` overlay on a base."""

    def __init__(self, root):
        self.path = str(root / 'instances')
        self.base_dir = os.path.join(self.path, '_base')
        os.makedirs(self.base_dir)
        self.instances = []
        self.disk_backings = set()
        self.now = time.time()

    def base(self, name: str, age: float) -> str:
        path = os.path.join(self.base_dir, name)
        with open(path, 'wb') as handle:
            handle.truncate(1 << 20)
        os.utime(path, (self.now - age, self.now - age))
        return name

    def instance(self, image_ref: str, backs_onto: str | None = None) -> None:
        instance_uuid = str(uuid.uuid4())
        directory = os.path.join(self.path, instance_uuid)
        os.mkdir(directory)
        if backs_onto:
            subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'raw', '-b',
                            os.path.join(self.base_dir, backs_onto), os.path.join(directory, 'disk')],
                           check=True, timeout=60)
            self.disk_backings.add(backs_onto)
        self.instances.append({'uuid': instance_uuid, 'image_ref': image_ref})

    def ages(self) -> dict:
        """{name: Nova's age of it (now - mtime)}, read before Nova touches what it uses."""
        now = time.time()
        return dict((name, rules.mtime_age(os.stat(os.path.join(self.base_dir, name)), now))
                    for name in os.listdir(self.base_dir))


def fp(image_id: str) -> str:
    return rules.cache_fname(image_id)


def make_host(tmp_path) -> Host:
    host = Host(tmp_path)
    host.base(fp('in-use-image'), 3 * DAY)  # an instance's image_ref hashes to it
    host.base(fp('in-use-image') + '_20', 3 * DAY)  # ... and to its resized copy
    host.base(fp('backing-only'), 3 * DAY)  # only the backing file of an instance's disk
    host.instance('in-use-image', backs_onto=fp('backing-only'))
    host.instance('image-without-base')
    host.base(fp('unused-original-old'), 3 * DAY)
    host.base(fp('unused-resized-old') + '_20', 2 * HOUR)
    host.base(fp('unused-original-recent'), 1 * HOUR)
    host.base(fp('unused-resized-recent') + '_20', 20 * 60)
    host.base(fp('unused-resized-one-digit') + '_5', 3 * DAY)  # 42 characters: Nova's scan skips it
    host.base('swap_512', 3 * DAY)
    host.base('ephemeral_1_0706d66', 3 * DAY)
    host.base('x' * 40, 3 * DAY)  # foreign, but 40 characters: Nova takes it for an original
    host.base(fp('in-flight') + '.part', 3 * DAY)
    return host


@pytest.mark.parametrize('ages', [{}, {'remove_unused_original_minimum_age_seconds': 2 * HOUR,
                                       'remove_unused_resized_minimum_age_seconds': 10 * 60}],
                         ids=['nova-defaults', 'shorter-ages'])
def test_what_nova_removes_is_what_our_rules_say(tmp_path, ages):
    host = make_host(tmp_path)
    image_ids = [instance['image_ref'] for instance in host.instances]
    ours = rules.NovaRules(image_ids, disk_backings=host.disk_backings, bdm_bases=set(),  # no mappings
                           original_age=ages.get('remove_unused_original_minimum_age_seconds', rules.ORIGINAL_MIN_AGE),
                           resized_age=ages.get('remove_unused_resized_minimum_age_seconds', rules.RESIZED_MIN_AGE))
    observed = host.ages()
    we_say = sorted(name for name, age in observed.items() if ours.removes(name, age))

    # the planner, over the same _base as the dir cache pool: quarantines only what Nova removes
    bases = [prune.CacheBase(name, 1 << 20, age, path=os.path.join(host.base_dir, name))
             for name, age in observed.items()]
    use = prune.CacheUse(nova=rules.NovaRules(image_ids, disk_backings=host.disk_backings, original_age=ours.original_age,
                                              resized_age=ours.resized_age),
                         overlay_backings={os.path.join(host.base_dir, fp('backing-only'))})
    planned = prune.plan_base_prune('nova-base-images-pool', 'dir', bases, use)

    answer = nova({'action': 'update', 'instances_path': host.path, 'db': str(tmp_path / 'nova.sqlite'),
                   'instances': host.instances, 'image_cache': ages})
    assert answer['removed'] == we_say
    expected = {fp('unused-original-old'), fp('unused-resized-old') + '_20', 'swap_512', 'ephemeral_1_0706d66',
                'x' * 40}
    if ages:
        expected.add(fp('unused-resized-recent') + '_20')
    assert set(answer['removed']) == expected  # the cases above are the ones meant, on both sides
    assert set(answer['active']) >= {fp('in-use-image'), fp('in-use-image') + '_20', fp('backing-only')}

    quarantined = set(decision.volume for decision in planned if decision.action == prune.QUARANTINE)
    # swap/ephemeral: Nova decides from block device mappings we cannot read, so the planner keeps them
    assert quarantined == set(answer['removed']) - {'swap_512', 'ephemeral_1_0706d66', 'x' * 40}
    assert all(decision.nova_lock for decision in planned if decision.action == prune.QUARANTINE)
    kept = dict((decision.volume, decision.reason) for decision in planned if decision.action == prune.KEEP)
    assert 'image id' in kept[fp('in-use-image')] and 'overlay' in kept[fp('backing-only')]
    assert 'does not scan' in kept[fp('unused-resized-one-digit') + '_5']


def test_nova_base_lock_is_nova_own_lock(tmp_path):
    instances_path = str(tmp_path / 'instances')
    os.mkdir(instances_path)
    base = fp('locked-image')
    free = nova({'action': 'lock', 'instances_path': instances_path, 'base': base})
    lock = rules.NovaBaseLock(instances_path, base, timeout=0.5)
    assert free == {'path': lock.path, 'taken': True}
    with lock:
        assert nova({'action': 'lock', 'instances_path': instances_path, 'base': base})['taken'] is False
    assert nova({'action': 'lock', 'instances_path': instances_path, 'base': base})['taken'] is True
    # and Nova's lock excludes us: the same POSIX lock oslo.concurrency takes
    holder = subprocess.Popen(
        [NOVA_PYTHON, '-W', 'ignore', '-c',
         'import sys,time\nfrom oslo_concurrency import lockutils\n'
         'lock = lockutils.external_lock(sys.argv[1], lock_file_prefix="nova-", lock_path=sys.argv[2])\n'
         'lock.acquire()\nprint("held", flush=True)\ntime.sleep(60)\n', base, os.path.dirname(lock.path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'held'
        with pytest.raises(Exception, match='is held'):
            lock.acquire()
        fd = os.open(lock.path, os.O_RDWR)
        try:
            with pytest.raises(OSError):
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    finally:
        holder.kill()
        holder.wait()
