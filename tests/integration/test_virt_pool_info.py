# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""virt_pool_info against the real libvirtd."""

from __future__ import annotations

import json
import os
import subprocess

from conftest import run_module

from ansible_collections.storagepools.libvirt.plugins.module_utils.metadata import XATTR_NAME


def info(**args):
    return run_module('virt_pool_info', args)


def ensure(**args):
    result = run_module('virt_pool_ensure', args)
    assert not result.get('failed'), result
    return result


def test_reports_active_and_inactive_pools(pools, workdir):
    active, inactive = pools.new(), pools.new()
    ensure(name=active, type='dir', target=os.path.join(workdir, 'a'))
    ensure(name=inactive, type='dir', target=os.path.join(workdir, 'i'), state='inactive', autostart=False)

    result = info()
    assert result['changed'] is False
    facts = result['pools']
    assert facts[active]['state'] == 'active' and facts[active]['autostart'] is True
    assert facts[active]['type'] == 'dir' and facts[active]['persistent'] is True
    assert facts[active]['target'] == os.path.join(workdir, 'a')
    assert facts[active]['capacity'] > 0 and facts[active]['available'] > 0
    assert facts[active]['uuid'] == pools.lookup(active).UUIDString()
    assert facts[inactive]['state'] == 'inactive' and facts[inactive]['autostart'] is False
    assert facts[inactive]['capacity'] == 0 and facts[inactive]['volumes'] is None


def test_volumes_carry_recorded_metadata_and_never_a_probed_format(conn, pools, workdir):
    name = pools.new()
    target = os.path.join(workdir, 'p')
    ensure(name=name, type='dir', target=target)
    pool = pools.lookup(name)
    pool.createXML("<volume><name>recorded.img</name><capacity>1048576</capacity>"
                   "<target><format type='raw'/></target></volume>", 0)
    record = {'format': 'raw', 'virtual_size': 1048576, 'source': {'image_id': 'abc'}}
    os.setxattr(os.path.join(target, 'recorded.img'), XATTR_NAME, json.dumps(record).encode())
    # A file whose bytes claim qcow2 with a backing file: libvirt's refresh probes it.
    hostile = os.path.join(target, 'hostile.img')
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', '/etc/hostname', hostile, '1M'],
                   check=True)

    without_refresh = info(name=name, volumes=True)['pools'][name]['volumes']
    assert [vol['name'] for vol in without_refresh] == ['recorded.img']

    volumes = info(name=name, volumes=True, refresh=True)['pools'][name]['volumes']
    by_name = {vol['name']: vol for vol in volumes}
    assert sorted(by_name) == ['hostile.img', 'recorded.img']
    assert by_name['recorded.img']['metadata'] == record
    assert by_name['recorded.img']['capacity'] == 1048576
    assert by_name['recorded.img']['path'] == os.path.join(target, 'recorded.img')
    assert by_name['hostile.img']['metadata'] is None
    assert 'format' not in by_name['hostile.img'] and 'backing' not in by_name['hostile.img']


def test_unreadable_metadata_is_a_clear_failure(pools, workdir):
    name = pools.new()
    target = os.path.join(workdir, 'p')
    ensure(name=name, type='dir', target=target)
    pools.lookup(name).createXML("<volume><name>v.img</name><capacity>1024</capacity></volume>", 0)
    os.setxattr(os.path.join(target, 'v.img'), XATTR_NAME, b'{not json')
    result = info(name=name, volumes=True)
    assert result['failed'] is True and result['msg'].startswith('volumes: ')


def test_an_unknown_pool_name_is_a_clear_failure(pools):
    result = info(name=pools.new())
    assert result['failed'] is True and result['msg'].startswith('name: ')


def test_unreachable_uri_is_a_clear_failure():
    result = info(uri='qemu+unix:///system?socket=/nonexistent/sock')
    assert result['failed'] is True and result['msg'].startswith('uri: ') and result['libvirt_error']
