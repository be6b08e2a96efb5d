# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Check mode against the pools a pools step would make (planned_pools), on libvirt's test driver."""

from __future__ import annotations

import pytest

from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt import pool as live_pool

libvirt = pytest.importorskip('libvirt')

DIR_POOL = "<pool type='%s'><name>%s</name><target><path>%s</path></target></pool>"


@pytest.fixture
def conn():
    connection = libvirt.open('test:///default')  # a private in-process driver: pools 'default-pool' only
    yield connection
    connection.close()


def planned(name, path, pool_type='dir', state='active'):
    return {'name': name, 'state': state, 'xml': DIR_POOL % (pool_type, name, path)}


def test_a_pool_libvirt_lacks_is_planned_as_the_pools_step_would_make_it(conn, tmp_path):
    target = tmp_path / 'disks'  # not made yet: the build would make it
    definitions = live_pool.planned_definitions([planned('fresh', str(target))], 'planned_pools')
    pool = live_pool.endpoint_or_planned(conn, 'fresh', 'disks_pool', definitions, 'planned_pools')
    assert isinstance(pool, live_pool.PlannedPool)
    assert (pool.name, pool.type, pool.target, pool.pool) == ('fresh', 'dir', str(target), None)
    assert pool.volume('u_disk') is None
    target.mkdir()
    (target / 'u_disk').write_bytes(b'')
    with pytest.raises(StoragePoolsError) as err:  # libvirt would list it; no volume exists to answer for it
        pool.volume('u_disk')
    assert err.value.msg.startswith('disks_pool: ') and 'only planned' in err.value.msg


def test_a_running_pool_is_always_planned_against_as_it_is(conn, tmp_path):
    definitions = live_pool.planned_definitions([planned('default-pool', str(tmp_path))], 'planned_pools')
    pool = live_pool.endpoint_or_planned(conn, 'default-pool', 'disks_pool', definitions, 'planned_pools')
    assert isinstance(pool, live_pool.Endpoint) and pool.target != str(tmp_path)


def test_without_a_plan_a_missing_pool_fails_naming_the_option(conn):
    with pytest.raises(StoragePoolsError) as err:
        live_pool.endpoint_or_planned(conn, 'fresh', 'cache_pool', {}, 'planned_pools')
    assert err.value.msg == "cache_pool: libvirt has no pool named 'fresh'"
    stopped = live_pool.planned_definitions([planned('fresh', '/x', state='inactive')], 'planned_pools')
    assert stopped == {}  # a pool the step leaves stopped is no pool to plan against


def test_only_dir_pools_are_planned_before_they_exist(conn):
    definitions = live_pool.planned_definitions([planned('vg', '/dev/vg', pool_type='logical')], 'planned_pools')
    with pytest.raises(StoragePoolsError) as err:
        live_pool.endpoint_or_planned(conn, 'vg', 'disks_pool', definitions, 'planned_pools')
    assert 'check mode plans only against a dir pool' in err.value.msg and 'logical' in err.value.msg


@pytest.mark.parametrize('entry', ['nova-disks-pool', {'name': 'x', 'state': 'active'},
                                   {'name': 'x', 'state': 'active', 'xml': '<pool'}])
def test_a_planned_pool_that_is_no_pool_result_names_the_option(entry):
    with pytest.raises(StoragePoolsError) as err:
        live_pool.planned_definitions([entry], 'planned_pools')
    assert err.value.msg.startswith('planned_pools[0]: ')
