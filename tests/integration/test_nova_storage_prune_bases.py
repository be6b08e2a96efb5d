# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""nova_storage_prune's image-cache bases (real libvirtd, real Ceph, Nova 34's own ImageCacheManager).

A dir cache pool on Nova's ``_base`` (ages by mtime, Nova's lock, recorded backings, Nova's in-use rule,
max_used_percent least recently used first, restore, purge, the nova user's symlinks) and an rbd cache pool
(clones of a base's protected snapshot, the trash, restore with the snapshot protected again, purge).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
import uuid

import pytest
from canary import Canary
from conftest import run_module, start_module
from nova_host import DOMAIN, MiB, NovaHost
from test_nova_image_cache_rules import nova
from test_nova_storage_prune import adopt, nova_deletes, prune, prune_args, sha256

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.records import read_file_metadata

HOUR, DAY = 3600, 86400
QUARANTINE = 30  # seconds: the test waits for the expiry
NOVA_NS = 'http://openstack.org/xmlns/libvirt/nova/1.1'


def fp(image_id):
    return hashlib.sha1(image_id.encode('utf-8')).hexdigest()


@pytest.fixture
def host(conn, pools, workdir):
    yield from make_host(conn, pools, os.path.join(workdir, 'nova'))


def make_host(conn, pools, root):
    nova_host = NovaHost(conn, root, pools.new())
    nova_host.disks_dir = os.path.join(root, 'disks')
    nova_host.disks_pool, nova_host.cache_pool = pools.new(), pools.new()
    for name, target in ((nova_host.disks_pool, nova_host.disks_dir), (nova_host.cache_pool, nova_host.base_dir)):
        made = run_module('virt_pool_ensure', dict(name=name, type='dir', target=target, autostart=False))
        assert not made.get('failed'), made
    nova_host.state_dir = os.path.join(root, 'state')
    nova_host.quarantine_dir = os.path.join(root, '.disks.quarantine')
    nova_host.base_quarantine = os.path.join(nova_host.instances, '._base.quarantine')
    try:
        yield nova_host
    finally:
        nova_host.cleanup()


def base(host, name, age, size=4 * MiB, data=None):
    """A file of _base, ``age`` seconds since Nova last touched it (its mtime), all of it allocated."""
    path = os.path.join(host.base_dir, name)
    with open(path, 'wb') as handle:
        handle.write(data if data is not None else os.urandom(size))
    then = time.time() - age
    os.utime(path, (then, then))
    return name


def nova_domain(conn, host, image_id):
    """A shut-off domain as Nova defines one booted from ``image_id`` (its Nova metadata names the image)."""
    instance = str(uuid.uuid4())
    metadata = ("<metadata><nova:instance xmlns:nova='%s'><nova:root type='image' uuid='%s'/></nova:instance>"
                "</metadata>" % (NOVA_NS, image_id))
    xml = DOMAIN.format(name='%s-%s' % (host.prefix, instance[:8]), uuid=instance, disks='')
    conn.defineXML(xml.replace('<vcpu>', metadata + '<vcpu>', 1))
    host.domain_uuids.append(instance)
    return instance


def base_args(host, **args):
    return dict(dict(nova_conf=host.nova_conf), **args)


def same_plan(result):
    """``reclaimed`` with the ages in its reasons (seconds that tick between two runs) left out."""
    return [dict(entry, reason=re.sub(r'unused for [0-9]+s', 'unused for', entry['reason']))
            for entry in result['reclaimed']]


def decided(result, pool):
    return dict((entry['volume'], (entry['action'], entry['reason'])) for entry in result['reclaimed']
                if entry['pool'] == pool)


def listed(conn, pool):
    return sorted(conn.storagePoolLookupByName(pool).listVolumes())


def nova_update(host, instances):
    """Nova 34's own ImageCacheManager.update() over the host (nova_cache_manager.py); what it removed."""
    return nova({'action': 'update', 'instances_path': host.instances, 'db': os.path.join(host.root, 'nova.db'),
                 'instances': instances})


def test_dir_cache_ages_uses_restore_purge_and_nova_agrees(conn, host, workdir):
    instance = host.instance(config=False)  # its qcow2 disk backs onto _base/sha1(image-1)
    adopt(host)  # now a pool volume whose record names that base as its backing
    backing = os.path.basename(host.base)
    os.utime(host.base, (time.time() - 3 * DAY,) * 2)
    nova_domain(conn, host, 'image-in-use')
    names = {
        'in-use': base(host, fp('image-in-use'), 3 * DAY),
        'old': base(host, fp('image-old'), 3 * DAY),
        'young': base(host, fp('image-young'), HOUR),
        'resized': base(host, fp('image-resized') + '_20', 2 * HOUR),
        'swap': base(host, 'swap_512', 3 * DAY),
        'partial': base(host, fp('in-flight') + '.part', 3 * DAY),
    }
    conn.storagePoolLookupByName(host.cache_pool).refresh(0)  # libvirt lists the new files (its refresh probes)
    # the nova user plants a symlink in _base, named like an old base, to a root-only file
    canary = Canary(os.path.join(workdir, 'shadow'))
    planted = fp('planted')
    os.symlink(canary.path, os.path.join(host.base_dir, planted))
    sums = dict((name, sha256(os.path.join(host.base_dir, name))) for name in list(names.values()) + [backing])
    before = listed(conn, host.cache_pool)

    check = prune(host, check=True, diff=True, quarantine=QUARANTINE, **base_args(host))
    assert listed(conn, host.cache_pool) == before and sorted(os.listdir(host.base_dir)) == sorted(
        list(names.values()) + [backing, planted])
    result = prune(host, diff=True, quarantine=QUARANTINE, **base_args(host))
    quarantined_at = time.time()
    assert not result.get('failed') and result['changed'] is True, result
    assert same_plan(check) == same_plan(result) and check['actions'] == result['actions']
    assert check['diff'] == result['diff']
    why = decided(result, host.cache_pool)
    expected = sorted([names['old'], names['resized']])
    assert sorted(name for name, (action, _reason) in why.items() if action == 'quarantined') == expected, why
    assert why[backing] == ('kept', 'recorded as the backing of %s/%s_disk' % (host.disks_pool, instance))
    assert why[names['in-use']] == ('kept', "an instance's image id hashes to it (Nova's in-use rule)")
    assert why[names['young']][0] == 'kept' and 'younger than' in why[names['young']][1]
    assert why[names['swap']][0] == 'kept' and 'block device mappings' in why[names['swap']][1]
    assert why[planted] == ('kept', 'a symlink in the pool (never followed)')
    assert names['partial'] not in why  # not a base's name: no decision
    assert "past Nova's 86400s for original bases" in why[names['old']][1]
    assert "past Nova's 3600s for resized bases" in why[names['resized']][1]
    assert [entry['action'] for entry in result['actions'] if entry['volume'] == names['old']] == \
        ['mark', 'quarantine', 'unlist']

    assert sorted(os.listdir(host.base_quarantine)) == expected
    for name in expected:
        assert sha256(os.path.join(host.base_quarantine, name)) == sums[name]
        assert not os.path.exists(os.path.join(host.base_dir, name))
    assert listed(conn, host.cache_pool) == sorted(set(before) - set(expected))
    assert os.stat(host.base_quarantine).st_uid == 0 and os.stat(host.base_quarantine).st_mode & 0o777 == 0o700
    # Nova's lock for each quarantined base was taken (made for the instances_path owner, as Nova opens it)
    for name in expected:
        assert os.path.isfile(os.path.join(host.instances, 'locks', 'nova-' + name))
    canary.assert_untouched()
    assert os.readlink(os.path.join(host.base_dir, planted)) == canary.path
    assert prune(host, quarantine=QUARANTINE, **base_args(host))['changed'] is False

    # restore brings a base back byte-equal, listed, with Nova's clock (mtime) started afresh
    restored = prune(host, restore=[names['old']], quarantine=QUARANTINE, **base_args(host))
    assert decided(restored, host.cache_pool)[names['old']] == ('restored', 'named in restore'), restored
    path = os.path.join(host.base_dir, names['old'])
    assert sha256(path) == sums[names['old']] and names['old'] in listed(conn, host.cache_pool)
    assert time.time() - os.stat(path).st_mtime < 60
    assert decided(prune(host, check=True, **base_args(host)), host.cache_pool)[names['old']][0] == 'kept'

    # Nova's own manager, over the same host: it removes nothing a pool volume needs
    instances = [{'uuid': instance, 'image_ref': 'image-1'}, {'uuid': str(uuid.uuid4()), 'image_ref': 'image-in-use'}]
    removed = nova_update(host, instances)['removed']
    record = read_file_metadata(os.path.join(host.disks_dir, '%s_disk' % instance))
    assert record['backing']['path'] == host.base and os.path.exists(host.base)
    assert backing not in removed and names['in-use'] not in removed and names['young'] not in removed, removed
    assert set(removed) <= {names['swap'], planted}, removed  # nothing prune kept for a reason Nova shares
    assert names['old'] not in removed  # the restored base: Nova keeps it too now

    # a run after the quarantine expired purges the resized base; then nothing changes
    time.sleep(max(0, quarantined_at + QUARANTINE + 1 - time.time()))
    purged = prune(host, **base_args(host))
    assert decided(purged, host.cache_pool)[names['resized']][0] == 'purged', purged
    assert os.listdir(host.base_quarantine) == []
    assert prune(host, **base_args(host))['changed'] is False
    assert sha256(path) == sums[names['old']] and sha256(host.base) == sums[backing]


def test_a_quarantined_overlay_keeps_its_base_until_it_is_purged(conn, host):
    instance = host.instance(config=False)
    adopt(host)
    name = os.path.basename(host.base)
    os.utime(host.base, (time.time() - 3 * DAY,) * 2)
    nova_deletes(conn, host, instance)
    recorded = ('kept', 'recorded as the backing of %s/%s_disk' % (host.disks_pool, instance))
    first = prune(host, quarantine=5, **base_args(host))
    assert decided(first, host.disks_pool)['%s_disk' % instance][0] == 'quarantined', first
    assert decided(first, host.cache_pool)[name] == recorded
    # in quarantine, the overlay's record still keeps its base: a restore would need it
    again = prune(host, quarantine=5, **base_args(host))
    assert again['changed'] is False and decided(again, host.cache_pool)[name] == recorded, again
    time.sleep(6)
    purged = prune(host, quarantine=5, **base_args(host))
    assert decided(purged, host.disks_pool)['%s_disk' % instance][0] == 'purged', purged
    gone = prune(host, quarantine=5, **base_args(host))
    assert decided(gone, host.cache_pool)[name][0] == 'quarantined', gone
    assert not os.path.exists(host.base)


def test_max_used_percent_takes_the_least_recently_used_unused_bases_first(conn, pools, workdir, loop_device):
    device = loop_device('mkfs.ext4', size_mib=64)
    root = os.path.join(workdir, 'small')
    os.mkdir(root)
    subprocess.run(['mount', device, root], check=True, capture_output=True)
    os.chmod(root, 0o755)
    for host in make_host(conn, pools, os.path.join(root, 'nova')):
        os.unlink(host.base)
        nova_domain(conn, host, 'lru-in-use')
        oldest_in_use = base(host, fp('lru-in-use'), 10 * HOUR, 8 * MiB)
        lru = [base(host, fp('lru-%d' % age), age * HOUR, 8 * MiB) for age in (4, 3, 2)]  # oldest first
        found = os.statvfs(host.base_dir)
        capacity, used = found.f_blocks * found.f_frsize, (found.f_blocks - found.f_bfree) * found.f_frsize
        # above the limit by less than one base: the least recently used unused base goes, the others stay
        limit = int(100.0 * (used - 8 * MiB) / capacity) + 1
        assert 100.0 * (used - 8 * MiB) / capacity <= limit < 100.0 * used / capacity
        check = prune(host, check=True, max_used_percent=limit, **base_args(host))
        result = prune(host, max_used_percent=limit, **base_args(host))
        assert same_plan(check) == same_plan(result), result
        why = decided(result, host.cache_pool)
        assert why[lru[0]][0] == 'quarantined' and 'above max_used_percent %d' % limit in why[lru[0]][1], why
        assert why[lru[1]][0] == why[lru[2]][0] == 'kept'
        assert why[oldest_in_use][0] == 'kept'
        assert os.listdir(host.base_quarantine) == [lru[0]]
        # without the limit, nothing younger than Nova's age goes
        assert prune(host, **base_args(host))['changed'] is False


@pytest.mark.parametrize('planted', ['lock file', 'locks directory'])
def test_a_symlink_at_novas_lock_path_touches_nothing_outside(conn, host, workdir, planted):
    os.unlink(host.base)
    name = base(host, fp('lock-planted'), 3 * DAY)
    data = sha256(os.path.join(host.base_dir, name))
    canary = Canary(os.path.join(workdir, 'shadow'))
    elsewhere = os.path.join(workdir, 'elsewhere')
    os.mkdir(elsewhere)
    locks = os.path.join(host.instances, 'locks')
    if planted == 'lock file':
        os.mkdir(locks)
        os.symlink(canary.path, os.path.join(locks, 'nova-' + name))
    else:
        os.symlink(elsewhere, locks)
    result = prune(host, **base_args(host))
    assert result['failed'], result
    action, reason = decided(result, host.cache_pool)[name]
    assert action == 'failed' and "Nova's lock" in reason and 'symlink' in reason, reason
    assert sha256(os.path.join(host.base_dir, name)) == data  # the base stays where it was
    assert not os.path.exists(host.base_quarantine) or os.listdir(host.base_quarantine) == []
    canary.assert_untouched()
    assert os.listdir(elsewhere) == []


@pytest.mark.parametrize('step', ['mark:1', 'quarantine:1', 'unlist:1', 'register:1', 'restore:1', 'unmark:1',
                                  'touch:1'])
def test_sigkill_at_every_step_of_a_base_then_rerun_converges(conn, host, step):
    name = os.path.basename(host.base)  # unused: no instance
    os.utime(host.base, (time.time() - 3 * DAY,) * 2)
    data = sha256(host.base)
    args = prune_args(host, nova_conf=host.nova_conf)
    if step.split(':')[0] in ('register', 'restore', 'unmark', 'touch'):
        assert decided(prune(host), host.cache_pool)[name][0] == 'quarantined'
        args['restore'] = [name]
    killed = start_module('nova_storage_prune', args, {'STORAGEPOOLS_KILL_AT': step})
    killed.communicate()
    assert killed.returncode == -9, 'the module was not killed at %s' % step
    result = run_module('nova_storage_prune', args)
    assert not result.get('failed'), result
    assert run_module('nova_storage_prune', dict(args, restore=None, bases=False))['changed'] is False
    quarantined = os.listdir(host.base_quarantine) if os.path.isdir(host.base_quarantine) else []
    if 'restore' in args:
        where = host.base
        assert quarantined == [] and decided(result, host.cache_pool)[name][0] in ('restored', 'kept'), result
        assert 'trusted.storagepools.libvirt.quarantine' not in os.listxattr(where)  # no mark left
        assert time.time() - os.stat(where).st_mtime < 120  # Nova's clock started afresh
    else:
        where = os.path.join(host.base_quarantine, name)
        assert quarantined == [name] and not os.path.exists(host.base)
    assert sha256(where) == data
    assert listed(conn, host.cache_pool) == sorted(os.listdir(host.base_dir))


def test_rbd_cache_pool_clones_keep_a_base_unused_ones_go_to_the_trash_and_back(conn, ceph, ceph_user, pools, workdir):
    user, _key, keyring, _usage, secret_uuid = ceph_user
    rbd_pool = pools.new()
    made = run_module('virt_pool_ensure', dict(name=rbd_pool, type='rbd', autostart=False, source={
        'name': ceph.pool, 'host': [ceph.mon], 'auth': {'username': user, 'secret_uuid': secret_uuid}}))
    assert not made.get('failed'), made
    hosts = make_host(conn, pools, os.path.join(workdir, 'nova'))
    host = next(hosts)
    os.unlink(host.base)
    # unique base names in the shared Ceph pool: image ids of this test's own
    image_ids = dict((role, '%s-%s' % (workdir, role)) for role in ('cloned', 'unused', 'in-use'))
    names = dict((role, base(host, fp(image_id), 0, 4 * MiB)) for role, image_id in image_ids.items())
    child = '%s_disk' % uuid.uuid4()
    try:
        imported = run_module('nova_image_cache', dict(instances_path=host.instances, cache_pool=host.cache_pool,
                                                       nova_conf=host.nova_conf, dest_pool=rbd_pool,
                                                       ceph_keyring=keyring))
        assert imported['summary']['changed'] == 3, imported
        cloned = run_module('virt_volume_clone', dict(pool=rbd_pool, name=child, mode='cow', ceph_keyring=keyring,
                                                      source={'pool': rbd_pool, 'volume': names['cloned']}))
        assert not cloned.get('failed'), cloned
        nova_domain(conn, host, image_ids['in-use'])
        sums = dict((name, ceph.image_sha256(name, workdir)) for name in names.values())
        # the bases live in the disks pool (Nova's rbd backend): one pool, both planners
        args = dict(instances_path=host.instances, disks_pool=rbd_pool, cache_pool=rbd_pool, ceph_keyring=keyring,
                    state_dir=host.state_dir, nova_conf=host.nova_conf, shared_instances_path='local',
                    quarantine=QUARANTINE, remove_unused_original_minimum_age_seconds=0)
        check = run_module('nova_storage_prune', args, check=True)
        result = run_module('nova_storage_prune', args)
        quarantined_at = time.time()
        assert not result.get('failed'), result
        why = decided(result, rbd_pool)
        mine = dict((name, why[name]) for name in list(names.values()) + [child])
        assert dict((name, entry) for name, entry in decided(check, rbd_pool).items() if name in mine) == mine
        assert mine[names['unused']][0] == 'quarantined', mine
        assert mine[names['cloned']] == ('kept', 'recorded as the backing of %s/%s' % (rbd_pool, child))
        assert mine[names['in-use']] == ('kept', "an instance's image id hashes to it (Nova's in-use rule)")
        assert mine[child][0] == 'kept'  # a clone first seen orphaned now: orphan_min_age to go
        trash = json.loads(ceph.admin('trash', 'ls', ceph.pool, '--format=json', tool='rbd'))
        assert names['unused'] in [entry['name'] for entry in trash]
        # without the clone's record, librbd's parent/child link alone keeps the base
        ceph.admin('image-meta', 'remove', '%s/%s' % (ceph.pool, child), 'user.storagepools.libvirt', tool='rbd')
        unrecorded = decided(run_module('nova_storage_prune', args, check=True), rbd_pool)
        assert unrecorded[names['cloned']] == ('kept', 'snapshot storagepools-base is the parent of the rbd clones '
                                               '%s/%s' % (ceph.pool, child)), unrecorded
        assert names['unused'] not in ceph.rbd_ls() and names['unused'] not in listed(conn, rbd_pool)
        assert run_module('nova_storage_prune', dict(args, remove_unused_original_minimum_age_seconds=DAY)
                          )['changed'] is False

        # restore: the image back byte-equal, its snapshot protected again (a parent of clones once more)
        restored = run_module('nova_storage_prune', dict(args, restore=[names['unused']],
                                                         remove_unused_original_minimum_age_seconds=DAY))
        assert decided(restored, rbd_pool)[names['unused']][0] == 'restored', restored
        assert ceph.image_sha256(names['unused'], workdir) == sums[names['unused']]
        snap = json.loads(ceph.admin('info', '%s/%s@storagepools-base' % (ceph.pool, names['unused']),
                                     '--format=json', tool='rbd'))
        assert snap['protected'] == 'true' and names['unused'] in listed(conn, rbd_pool)
        # its last-used clock started afresh: kept for a day, quarantined again with an age of 0
        assert run_module('nova_storage_prune', dict(args, remove_unused_original_minimum_age_seconds=DAY)
                          )['changed'] is False
        again = run_module('nova_storage_prune', args)
        quarantined_at = time.time()
        assert decided(again, rbd_pool)[names['unused']][0] == 'quarantined', again
        time.sleep(max(0, quarantined_at + QUARANTINE + 1 - time.time()))
        purged = run_module('nova_storage_prune', dict(args, remove_unused_original_minimum_age_seconds=DAY))
        assert decided(purged, rbd_pool)[names['unused']][0] == 'purged', purged
        trash = json.loads(ceph.admin('trash', 'ls', ceph.pool, '--format=json', tool='rbd'))
        assert names['unused'] not in [entry['name'] for entry in trash]
        assert run_module('nova_storage_prune', dict(args, remove_unused_original_minimum_age_seconds=DAY)
                          )['changed'] is False
        for name in (names['cloned'], names['in-use']):
            assert ceph.image_sha256(name, workdir) == sums[name]
    finally:
        ceph.remove_images(child)
        for name in names.values():
            ceph.remove_images(name)
        next(hosts, None)
