# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which instances an adoption run takes, and which workflow its disks pool's type takes: shared by
legacy_disk_adopt and transition_preflight, so the preflight plans exactly what the adoption would."""

from __future__ import annotations

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.base import backend_for
from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.records import FILE_POOL_TYPES
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.adopt import Adopter
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.cutover import Cutover
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.module import each_item
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.pool import (
    endpoint_or_planned,
    planned_definitions,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._nova import layout as nova_layout

EXCLUDED = 'exclude: the operator keeps this instance out of these runs'
UNTOUCHED = {'disks': [], 'actions': [], 'domain_diff': None}


def uuid_list(option, names):
    bad = [name for name in names if not nova_layout.is_uuid(name)]
    if bad:
        hint = ' (or give [all])' if option == 'instances' else ''
        raise StoragePoolsError('%s: %s is not a uuid%s' % (option, ', '.join(bad), hint))
    return [name.lower() for name in names]


def instance_list(params):
    wanted = params['instances']
    if wanted == ['all']:
        return nova_layout.list_instances(params['instances_path'])
    return uuid_list('instances', wanted)


def adopter_for(conn, params, check_mode):
    """The Adopter (file pools) or the two-phase Cutover (rbd, logical pools) for the disks pool's type."""
    planned = planned_definitions(params['planned_pools'] if check_mode else None, 'planned_pools')
    pool = endpoint_or_planned(conn, params['disks_pool'], 'disks_pool', planned, 'planned_pools')
    nova_conf = nova_layout.NovaConf(params['nova_conf'])
    if pool.type in ('rbd', 'logical'):
        if params['running'] == 'live':
            raise StoragePoolsError('running: live copies into file pools; the cutover to an %s pool imports '
                                    'shut-off instances' % pool.type)
        target = backend_for(pool, 'disks_pool', params['ceph_keyring'])
        target.nova_settings()  # an rbd pool without <auth> (Nova's disks need a cephx user) fails the task now
        target.names()  # connect now: a wrong keyring or an unreachable Ceph fails the task, not each instance
        cutover = Cutover(conn, params['instances_path'], pool, target, params['state_dir'], nova_conf, check_mode,
                          params['finalize'])
        if params['finalize']:
            cutover.check_nova_conf()
        return cutover
    if pool.type not in FILE_POOL_TYPES:
        raise StoragePoolsError("disks_pool: '%s' is a %s pool; this version adopts into dir, fs, netfs, logical "
                                "and rbd pools" % (params['disks_pool'], pool.type))
    if params['finalize']:
        raise StoragePoolsError('finalize: only rbd and logical disks pools have a second phase; adoption into a '
                                'file pool is complete in one run')
    if nova_conf.remote_filesystem_transport == 'rsync' and not params['force']:
        raise StoragePoolsError(
            'force: %s sets [libvirt] remote_filesystem_transport=rsync; rsync skips symlinks, so a cold '
            'migration or resize of an adopted instance would lose its disks. Switch it to ssh, or set force '
            'to adopt anyway' % params['nova_conf'])
    return Adopter(conn, params['instances_path'], pool, params['cache_pool'], params['disk_type'],
                   params['state_dir'], nova_conf, check_mode, params['running'], params['live_timeout'])


def each_instance(adopter, uuids, excluded):
    """{uuid: result} of ``adopter`` (an Adopter, Cutover or reverter) over ``uuids``; those in ``excluded``
    are skipped, naming the exclude option."""
    def one(instance_uuid):
        if instance_uuid in excluded:
            return dict(UNTOUCHED, result='skipped', reason=EXCLUDED)
        return adopter.adopt(instance_uuid)
    return each_item(uuids, one, UNTOUCHED)
