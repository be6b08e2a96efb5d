# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""`--check --diff` of the transition on a compute host that was never transitioned: no pool exists yet.

The pools step only pretends to make the pools in check mode; the image cache and the adoption plan against
the dir pools it would make (planned_pools), change nothing, and plan exactly what the real run then does.
"""

from __future__ import annotations

import json
import os
import sys

from conftest import libvirt
from nova_host import NovaHost
from test_roles import run_playbook


def tree(root):
    """{path: (mode, size, mtime_ns, xattrs)} of everything under ``root`` (never followed)."""
    seen = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            xattrs = {} if os.path.islink(path) else {key: os.getxattr(path, key, follow_symlinks=False)
                                                      for key in os.listxattr(path, follow_symlinks=False)}
            seen[path] = (info.st_mode, info.st_size, info.st_mtime_ns, xattrs)
    return seen


def host_state(conn, nova, uuids, pool_names):
    return {'pools': sorted(name for name in conn.listStoragePools() + conn.listDefinedStoragePools()
                            if name in pool_names),
            'files': tree(nova.root),
            'domains': {uuid: conn.lookupByUUIDString(uuid).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
                        for uuid in uuids}}


def plan_of(report):
    """Per instance: its result, disks (name, method, from, to) and the steps, as the report holds them."""
    return {uuid: {'result': outcome['result'], 'disks': outcome['disks'],
                   'actions': [(step['action'], step.get('disk')) for step in outcome['actions']]}
            for uuid, outcome in report['instances'].items()}


def test_check_mode_on_a_host_never_transitioned_plans_what_the_real_run_does(installed, conn, pools, workdir):
    root = os.path.join(workdir, 'freshhost')
    nova = NovaHost(conn, root, pools.new())
    uuids = [nova.instance(config=index % 2 == 0, backing_format=None if index == 0 else 'raw')
             for index in range(3)]
    cache, disks = pools.new(), pools.new()
    inventory = os.path.join(workdir, 'fresh-inventory.ini')
    with open(inventory, 'w') as handle:
        handle.write(' '.join([
            'freshhost', 'ansible_connection=local', 'ansible_python_interpreter=%s' % sys.executable,
            'storagepools_instances_path=%s' % nova.instances, 'storagepools_disks_path=%s/disks' % root,
            'storagepools_cache_pool=%s' % cache, 'storagepools_disks_pool=%s' % disks,
            'storagepools_nova_conf=%s' % nova.nova_conf, 'storagepools_state_dir=%s/state' % root]) + '\n')
    plan_dir, real_dir = os.path.join(workdir, 'plan'), os.path.join(workdir, 'report')
    try:
        before = host_state(conn, nova, uuids, (cache, disks))
        assert before['pools'] == []
        code, out = run_playbook(installed, 'transition', inventory, '--check', '--diff',
                                 '-e', 'storagepools_report_dir=%s' % plan_dir)
        assert code == 0, out
        assert host_state(conn, nova, uuids, (cache, disks)) == before, 'check mode changed the host'
        with open(os.path.join(plan_dir, 'freshhost.plan.json')) as handle:
            planned = plan_of(json.load(handle))
        assert sorted(planned) == sorted(uuids)
        assert all(outcome['result'] == 'adopted' for outcome in planned.values()), planned
        assert all(disk['method'] == 'link' for outcome in planned.values() for disk in outcome['disks'])

        code, out = run_playbook(installed, 'transition', inventory, '-e', 'storagepools_report_dir=%s' % real_dir)
        assert code == 0, out
        with open(os.path.join(real_dir, 'freshhost.json')) as handle:
            assert plan_of(json.load(handle)) == planned  # the check-mode plan is what the real run did
        for uuid in uuids:
            assert os.path.islink(os.path.join(nova.instances, uuid, 'disk'))
    finally:
        nova.cleanup()


def test_check_mode_of_the_image_cache_alone_still_needs_its_pool(installed, conn, pools, workdir):
    """Without a pools step before it nothing would make the cache pool: the image_cache playbook's check mode
    fails naming it (the plan is never made against a pool no step makes)."""
    root = os.path.join(workdir, 'cachehost')
    nova = NovaHost(conn, root, pools.new())
    cache = pools.new()
    inventory = os.path.join(workdir, 'cache-inventory.ini')
    with open(inventory, 'w') as handle:
        handle.write(' '.join([
            'cachehost', 'ansible_connection=local', 'ansible_python_interpreter=%s' % sys.executable,
            'storagepools_instances_path=%s' % nova.instances, 'storagepools_cache_pool=%s' % cache,
            'storagepools_nova_conf=%s' % nova.nova_conf]) + '\n')
    try:
        code, out = run_playbook(installed, 'image_cache', inventory, '--check')
        assert code != 0
        assert "storagepools_cache_pool: libvirt has no pool named '%s'" % cache in out, out
    finally:
        nova.cleanup()
