# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""nova_image_cache: Nova's _base recorded in place, and imported into rbd, against libvirtd and Ceph."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess

import pytest
from conftest import run_module
from nova_host import NovaHost

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.file import read_file_metadata

MiB = 1024 * 1024
EPOCH_2000 = 946684800


@pytest.fixture
def host(conn, pools, workdir):
    nova = NovaHost(conn, os.path.join(workdir, 'nova'), pools.new())
    nova.cache_pool = pools.new()
    made = run_module('virt_pool_ensure', dict(name=nova.cache_pool, type='dir', target=nova.base_dir,
                                               autostart=False))
    assert not made.get('failed'), made
    yield nova
    nova.cleanup()


def cache(host, check=False, **args):
    params = dict(instances_path=host.instances, cache_pool=host.cache_pool, nova_conf=host.nova_conf)
    params.update(args)
    return run_module('nova_image_cache', params, check=check)


def sha256(path):
    with open(path, 'rb') as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def test_every_base_is_recorded_in_place_with_a_format_never_probed(host, workdir):
    qcow2_base = host.make_base('image-qcow2')
    subprocess.run(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', qcow2_base, qcow2_base + '.tmp'], check=True)
    os.rename(qcow2_base + '.tmp', qcow2_base)
    host.instance(base=qcow2_base, backing_format='qcow2')  # its header names the base's format
    legacy_header = host.make_base('image-old')
    host.instance(base=legacy_header, backing_format=None)  # no backing format: force_raw_images says raw
    host.instance()
    swap = os.path.join(host.base_dir, 'swap_16')
    with open(swap, 'wb') as handle:
        handle.truncate(16 * MiB)
    canary = os.path.join(workdir, 'canary')
    with open(canary, 'wb') as handle:
        handle.write(b'host secret')
    hostile = os.path.join(host.base_dir, hashlib.sha1(b'hostile').hexdigest())  # "raw", with a qcow2 header
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', canary, hostile, '1M'], check=True)
    os.utime(canary, (EPOCH_2000, EPOCH_2000))
    in_flight = os.path.join(host.base_dir, hashlib.sha1(b'x').hexdigest() + '.part')
    with open(in_flight, 'wb') as handle:
        handle.write(b'downloading')
    before = {name: sha256(os.path.join(host.base_dir, name)) for name in os.listdir(host.base_dir)}

    check = cache(host, check=True)
    assert check['changed'] is True and check['summary'] == {'changed': 4, 'unchanged': 0, 'skipped': 2,
                                                             'failed': 0}, check
    assert all(read_file_metadata(os.path.join(host.base_dir, name)) is None for name in before)

    result = cache(host)
    images = result['images']
    assert result['changed'] is True and result['summary'] == check['summary']
    expected = {os.path.basename(host.base): 'raw', os.path.basename(qcow2_base): 'qcow2',
                os.path.basename(legacy_header): 'raw', 'swap_16': 'raw'}
    for name, disk_format in expected.items():
        assert images[name]['result'] == 'changed' and images[name]['format'] == disk_format, images[name]
        record = read_file_metadata(os.path.join(host.base_dir, name))
        assert record['format'] == disk_format and record['method'] == 'in-place'
        assert record['source'] == {'path': os.path.join(host.base_dir, name), 'nova_base': name}
        assert record['virtual_size'] == images[name]['virtual_size'] == 16 * MiB
    assert images[os.path.basename(hostile)]['result'] == 'skipped'
    assert 'qcow2' in images[os.path.basename(hostile)]['reason']
    assert images[os.path.basename(in_flight)]['result'] == 'skipped'
    assert os.stat(canary).st_atime == EPOCH_2000, 'the canary was read'
    assert {name: sha256(os.path.join(host.base_dir, name)) for name in before} == before

    info = run_module('virt_pool_info', dict(name=host.cache_pool, volumes=True))
    by_name = {volume['name']: volume for volume in info['pools'][host.cache_pool]['volumes']}
    assert by_name[os.path.basename(host.base)]['metadata']['format'] == 'raw'  # virt_pool_info shows records

    for rerun in (cache(host), cache(host, check=True)):
        assert rerun['changed'] is False and rerun['summary']['unchanged'] == 4, rerun


def test_without_force_raw_images_an_unnamed_base_is_left_alone(host):
    with open(host.nova_conf, 'a') as handle:
        handle.write('[DEFAULT]\nforce_raw_images = False\n')
    lonely = host.make_base('image-unused')
    result = cache(host)
    outcome = result['images'][os.path.basename(lonely)]
    assert outcome['result'] == 'skipped' and 'force_raw_images=False' in outcome['reason']
    assert read_file_metadata(lonely) is None
    assert result['images'][os.path.basename(host.base)]['result'] == 'skipped'  # no instance names it yet


def test_wrong_pools_are_refused_before_anything_is_recorded(host, pools, workdir):
    other = pools.new()
    made = run_module('virt_pool_ensure', dict(name=other, type='dir', target=os.path.join(workdir, 'other'),
                                               autostart=False))
    assert not made.get('failed'), made
    result = cache(host, cache_pool=other)
    assert result['failed'] is True and result['msg'].startswith('cache_pool: ')
    result = cache(host, dest_pool=other)  # a dir pool: the cache is imported into logical and rbd pools only
    assert result['failed'] is True and result['msg'].startswith('dest_pool: ')
    result = cache(host, dest_pool=pools.new())
    assert result['failed'] is True and result['msg'].startswith('dest_pool: ')
    assert read_file_metadata(host.base) is None


def test_import_into_rbd_with_protected_snapshots_for_clones(conn, host, ceph, ceph_user, pools, workdir):
    user, _key, keyring, _usage, secret_uuid = ceph_user
    rbd_pool = pools.new()
    made = run_module('virt_pool_ensure', dict(
        name=rbd_pool, type='rbd', connect_timeout=5, autostart=False,
        source={'name': ceph.pool, 'host': [ceph.mon], 'auth': {'username': user, 'secret_uuid': secret_uuid}}))
    assert not made.get('failed'), made
    # unique base names in the shared Ceph pool: image ids of this test's own
    for path in list(os.listdir(host.base_dir)):
        os.unlink(os.path.join(host.base_dir, path))
    bases = [host.make_base('%s-%d' % (workdir, number), size=8 * MiB) for number in range(2)]
    names = [os.path.basename(path) for path in bases]
    child = '6f1d2c3b-4a5e-4f60-8a7b-%s_disk' % hashlib.sha1(workdir.encode()).hexdigest()[:12]
    try:
        check = cache(host, check=True, dest_pool=rbd_pool, ceph_keyring=keyring)
        assert check['summary']['changed'] == 2 and not set(names) & set(ceph.rbd_ls()), check
        result = cache(host, dest_pool=rbd_pool, ceph_keyring=keyring)
        assert result['summary'] == {'changed': 2, 'unchanged': 0, 'skipped': 0, 'failed': 0}, result
        for name, path in zip(names, bases):
            volume = result['images'][name]['volume']
            assert volume['path'] == '%s/%s' % (ceph.pool, name) and volume['format'] == 'raw'
            assert ceph.image_sha256(name, workdir) == sha256(path)
            snap = json.loads(ceph.admin('info', '%s/%s@storagepools-base' % (ceph.pool, name), '--format=json',
                                         tool='rbd'))
            assert snap['protected'] == 'true'
            record = json.loads(ceph.admin('image-meta', 'get', '%s/%s' % (ceph.pool, name),
                                           'user.storagepools.libvirt', tool='rbd'))
            assert record['source'] == {'path': path, 'nova_base': name} and record['format'] == 'raw'
        rerun = cache(host, dest_pool=rbd_pool, ceph_keyring=keyring)
        assert rerun['changed'] is False and rerun['summary']['unchanged'] == 2, rerun
        # the imported base is the parent of a copy-on-write clone
        clone = run_module('virt_volume_clone', dict(pool=rbd_pool, name=child, mode='cow', ceph_keyring=keyring,
                                                     source={'pool': rbd_pool, 'volume': names[0]}))
        assert clone['method'] == 'rbd-clone' and clone['volume']['backing']['path'] == \
            '%s/%s@storagepools-base' % (ceph.pool, names[0]), clone
    finally:
        for name in [child] + names:
            ceph.remove_images(name)
