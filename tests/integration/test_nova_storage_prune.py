# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""nova_storage_prune on an adopted fake Nova host (real libvirtd): Nova's delete and resize-confirm paths."""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
import uuid

import pytest
from canary import Canary
from conftest import RUN_ID, libvirt, run_module, sha256, start_module
from nova_host import DOMAIN, NovaHost
from peer_libvirtd import running_peer

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.records import read_file_metadata

DISKS = ('disk', 'disk.local')
QUARANTINE = 8  # seconds: the test waits for the expiry


@pytest.fixture
def host(conn, pools, workdir):
    nova = NovaHost(conn, os.path.join(workdir, 'nova'), pools.new())
    disks, cache = pools.new(), pools.new()
    nova.disks_dir = os.path.join(workdir, 'nova', 'disks')
    for name, target in ((disks, nova.disks_dir), (cache, nova.base_dir)):
        made = run_module('virt_pool_ensure', dict(name=name, type='dir', target=target, autostart=False))
        assert not made.get('failed'), made
    nova.disks_pool, nova.cache_pool = disks, cache
    nova.state_dir = os.path.join(workdir, 'state')
    nova.quarantine_dir = os.path.join(workdir, 'nova', '.disks.quarantine')
    yield nova
    nova.cleanup()


def adopt(host):
    result = run_module('legacy_disk_adopt', dict(instances_path=host.instances, disks_pool=host.disks_pool,
                                                  cache_pool=host.cache_pool, state_dir=host.state_dir,
                                                  nova_conf=host.nova_conf))
    assert not result.get('failed'), result
    return result


def prune_args(host, **args):
    params = dict(instances_path=host.instances, disks_pool=host.disks_pool, cache_pool=host.cache_pool,
                  state_dir=host.state_dir, orphan_min_age=0, shared_instances_path='local')
    params.update(args)
    return params


def prune(host, check=False, diff=False, env=None, **args):
    return run_module('nova_storage_prune', prune_args(host, **args), check=check, diff=diff, env=env)


def volumes(host, instance):
    return ['%s_%s' % (instance, name) for name in DISKS]


def pool_state(conn, host):
    """(files in the pool with their checksums, what libvirt lists)."""
    files = dict((name, sha256(os.path.join(host.disks_dir, name))) for name in os.listdir(host.disks_dir))
    listed = sorted(conn.storagePoolLookupByName(host.disks_pool).listVolumes())
    return files, listed


def nova_deletes(conn, host, instance):
    """What LibvirtDriver.destroy + _delete_instance_files do: undefine the domain, remove the directory."""
    conn.lookupByUUIDString(instance).undefine()
    shutil.rmtree(os.path.join(host.instances, instance))


def nova_confirms_a_resize(conn, host, instance):
    """The source side of a resize to another host: the directory became <uuid>_resize and the domain went
    (migrate_disk_and_power_off); confirm removes <uuid>_resize (_cleanup_resize)."""
    os.rename(os.path.join(host.instances, instance), os.path.join(host.instances, instance + '_resize'))
    conn.lookupByUUIDString(instance).undefine()
    return os.path.join(host.instances, instance + '_resize')


def reclaimed(result, action, pool=None):
    """The volumes (of ``pool``, else of any pool) that ended in ``action``."""
    return sorted(entry['volume'] for entry in result['reclaimed']
                  if entry['action'] == action and pool in (None, entry['pool']))


def test_nova_delete_and_resize_confirm_then_prune_restore_and_purge(conn, host):
    kept, deleted, resized, attached_to = (host.instance(config=False) for _index in range(4))
    adopt(host)
    # a volume of a deleted instance that another domain uses as its second disk is never an orphan
    shared_disk = volumes(host, deleted)[1]
    xml = conn.lookupByUUIDString(attached_to).XMLDesc(0).replace(
        '</devices>', "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='%s'/>"
        "<target dev='vdc' bus='virtio'/></disk></devices>" % os.path.join(host.disks_dir, shared_disk))
    conn.defineXML(xml)
    nova_deletes(conn, host, deleted)
    resize_dir = nova_confirms_a_resize(conn, host, resized)

    # while <uuid>_resize exists its links keep the volumes
    waiting = prune(host, check=True)
    assert reclaimed(waiting, 'quarantined') == [volumes(host, deleted)[0]], waiting
    why = dict((entry['volume'], entry['reason']) for entry in waiting['reclaimed'])
    assert all(why[name].startswith('linked from %s/' % resize_dir) for name in volumes(host, resized)), why
    shutil.rmtree(resize_dir)
    files_before, listed_before = pool_state(conn, host)

    check = prune(host, check=True, diff=True, quarantine=QUARANTINE)
    assert pool_state(conn, host) == (files_before, listed_before)  # check mode changed nothing
    expected = sorted([volumes(host, deleted)[0]] + volumes(host, resized))
    result = prune(host, diff=True, quarantine=QUARANTINE)
    quarantined_at = time.time()
    assert result['changed'] is True and reclaimed(result, 'quarantined') == expected, result
    assert check['reclaimed'] == result['reclaimed'] and check['actions'] == result['actions']
    assert check['diff'] == result['diff'] and '%s/%s: in the pool' % (host.disks_pool, expected[0]) in \
        result['diff']['before'] and 'quarantined for %d s' % QUARANTINE in result['diff']['after']
    why = dict((entry['volume'], entry['reason']) for entry in result['reclaimed'])
    assert 'used by domain' in why[shared_disk] and 'vdc' in why[shared_disk]
    assert why[volumes(host, kept)[0]].startswith('its instance has domain')

    files_after, listed_after = pool_state(conn, host)
    assert sorted(set(files_before) - set(files_after)) == expected
    assert all(files_after[name] == files_before[name] for name in files_after)  # the others untouched
    assert listed_after == sorted(files_after)  # libvirt no longer lists them (no refresh)
    quarantine = os.lstat(host.quarantine_dir)
    assert stat.S_ISDIR(quarantine.st_mode) and stat.S_IMODE(quarantine.st_mode) == 0o700
    assert quarantine.st_uid == 0 and sorted(os.listdir(host.quarantine_dir)) == expected
    assert os.stat(host.quarantine_dir).st_dev == os.stat(host.disks_dir).st_dev

    rerun = prune(host)
    assert rerun['changed'] is False, rerun
    assert reclaimed(rerun, 'kept', host.disks_pool) == sorted(set(files_after) | set(expected))
    assert reclaimed(rerun, 'kept', host.cache_pool) == [os.path.basename(host.base)]  # the instances' base

    # restore brings one back: name, record, data, and libvirt lists it again
    back = expected[0]
    record = read_file_metadata(os.path.join(host.quarantine_dir, back))
    restored = prune(host, restore=[back])
    assert restored['changed'] is True and reclaimed(restored, 'restored') == [back], restored
    assert sha256(os.path.join(host.disks_dir, back)) == files_before[back]
    assert read_file_metadata(os.path.join(host.disks_dir, back)) == record
    assert back in conn.storagePoolLookupByName(host.disks_pool).listVolumes()
    assert prune(host, restore=[back], check=True)['changed'] is False

    # a run after the quarantine expired purges; the restored volume's orphan clock started afresh
    time.sleep(max(0, quarantined_at + QUARANTINE + 1 - time.time()))
    purged = prune(host, orphan_min_age=3600)
    assert reclaimed(purged, 'purged') == expected[1:], purged
    assert os.listdir(host.quarantine_dir) == []
    assert back in conn.storagePoolLookupByName(host.disks_pool).listVolumes()
    assert sha256(os.path.join(host.disks_dir, back)) == files_before[back]
    final = prune(host, orphan_min_age=3600)
    assert final['changed'] is False, final
    assert pool_state(conn, host)[0] == dict(files_after, **{back: files_before[back]})  # the others as they were
    # quarantine 0 purges at once
    gone = prune(host, quarantine=0)
    assert reclaimed(gone, 'purged') == [back] and not os.path.exists(os.path.join(host.disks_dir, back)), gone
    assert back not in conn.storagePoolLookupByName(host.disks_pool).listVolumes()
    assert prune(host, quarantine=0)['changed'] is False


def clone_absent(host, volume, check=False, diff=False, **args):
    params = dict(pool=host.disks_pool, name=volume, state='absent', state_dir=host.state_dir)
    params.update(args)
    return run_module('virt_volume_clone', params, check=check, diff=diff)


def test_virt_volume_clone_absent_is_refused_while_used_then_quarantines(conn, host):
    instance = host.instance(config=False)
    adopt(host)
    disk, local = volumes(host, instance)
    refused = clone_absent(host, disk)
    used = "name: volume '%s' of pool '%s' is used by domain" % (disk, host.disks_pool)
    assert refused['failed'] and refused['msg'].startswith(used), refused
    before = sha256(os.path.join(host.disks_dir, disk))
    # the domain lets go of disk.local (detached); still a domain of the instance, but nothing uses the volume
    domain = conn.lookupByUUIDString(instance)
    xml = domain.XMLDesc(0)
    start = xml.index("<disk type='file' device='disk'>", xml.index("<target dev='vda'") - 400 + 1)
    xml = xml[:start] + xml[xml.index('</disk>', start) + len('</disk>'):]
    assert os.path.join(host.disks_dir, local) not in xml
    conn.defineXML(xml)
    check = clone_absent(host, local, check=True, diff=True)
    assert check['changed'] is True and os.path.exists(os.path.join(host.disks_dir, local)), check
    assert check['diff']['after'] == '%s/%s: quarantined for 604800 s\n' % (host.disks_pool, local)
    gone = clone_absent(host, local, diff=True)
    assert gone['changed'] is True and gone['reclaimed'][0]['action'] == 'quarantined', gone
    assert gone['actions'] == check['actions'] and gone['diff'] == check['diff']
    assert sorted(os.listdir(host.quarantine_dir)) == [local]
    assert local not in conn.storagePoolLookupByName(host.disks_pool).listVolumes()
    again = clone_absent(host, local)
    assert again['changed'] is False, again
    assert sha256(os.path.join(host.disks_dir, disk)) == before
    # restore is nova_storage_prune's; quarantine 0 deletes
    assert prune(host, restore=[local], orphan_min_age=3600)['summary']['restored'] == 1
    assert clone_absent(host, local, quarantine=0)['reclaimed'][0]['action'] == 'purged'
    assert not os.path.exists(os.path.join(host.disks_dir, local)) and os.listdir(host.quarantine_dir) == []
    assert clone_absent(host, local, quarantine=0)['changed'] is False


@pytest.mark.parametrize('step', ['mark:1', 'quarantine:1', 'unlist:1', 'mark:2', 'register:1', 'restore:1',
                                  'unmark:1', 'purge:1'])
def test_sigkill_at_every_journalled_step_then_rerun_converges(conn, host, step):
    kept, deleted = host.instance(config=False), host.instance(config=False)
    adopt(host)
    nova_deletes(conn, host, deleted)
    files, _listed = pool_state(conn, host)
    orphans = volumes(host, deleted)
    phase = step.split(':')[0]
    args = prune_args(host)
    if phase in ('register', 'restore', 'unmark'):
        prune(host)
        args['restore'] = [orphans[0]]
    elif phase == 'purge':
        args['quarantine'] = 0
    killed = start_module('nova_storage_prune', args, {'STORAGEPOOLS_KILL_AT': step})
    killed.communicate()
    assert killed.returncode == -9, 'the module was not killed at %s' % step
    result = run_module('nova_storage_prune', args)
    assert not result.get('failed'), result
    assert run_module('nova_storage_prune', args)['changed'] is False
    now, listed = pool_state(conn, host)
    quarantined = sorted(os.listdir(host.quarantine_dir)) if os.path.isdir(host.quarantine_dir) else []
    if phase == 'purge':
        assert quarantined == [] and sorted(now) == volumes(host, kept)
    elif phase in ('register', 'restore', 'unmark'):
        assert quarantined == orphans[1:] and now[orphans[0]] == files[orphans[0]]
        assert os.listxattr(os.path.join(host.disks_dir, orphans[0])) == \
            os.listxattr(os.path.join(host.disks_dir, volumes(host, kept)[0]))  # no quarantine mark left
    else:
        assert quarantined == orphans
        for name in orphans:  # nothing lost: the data is in quarantine
            assert sha256(os.path.join(host.quarantine_dir, name)) == files[name]
    assert listed == sorted(now)  # libvirt lists exactly what the pool holds
    for name in volumes(host, kept):
        assert now[name] == files[name]


def test_the_nova_users_symlinks_neither_keep_nor_reclaim_the_wrong_thing(conn, host, workdir):
    kept, linked_away, planted = (host.instance(config=False) for _index in range(3))
    adopt(host)
    canary = Canary(os.path.join(workdir, 'shadow'))
    files, _listed = pool_state(conn, host)
    nova_deletes(conn, host, linked_away)
    nova_deletes(conn, host, planted)
    # an instance directory that is a symlink, to a directory whose "legacy path" links a pool volume
    elsewhere = os.path.join(workdir, 'elsewhere')
    os.mkdir(elsewhere)
    os.symlink(os.path.join(host.disks_dir, volumes(host, linked_away)[0]), os.path.join(elsewhere, 'disk'))
    os.symlink(elsewhere, os.path.join(host.instances, linked_away))
    # a real instance directory whose legacy paths are symlinks to a root-only file and to a kept instance's disk
    directory = os.path.join(host.instances, planted)
    os.mkdir(directory)
    os.symlink(canary.path, os.path.join(directory, 'disk'))
    os.symlink(os.path.join(host.disks_dir, volumes(host, kept)[0]) + '/../' + volumes(host, planted)[1],
               os.path.join(directory, 'disk.local'))
    # the quarantine directory swapped for a symlink: refused, nothing moved
    os.symlink(elsewhere, host.quarantine_dir)
    refused = prune(host)
    assert refused['failed'] and 'quarantine_dir: %s is a symlink' % host.quarantine_dir in refused['msg'], refused
    assert pool_state(conn, host)[0] == files and sorted(os.listdir(elsewhere)) == ['disk']
    os.unlink(host.quarantine_dir)

    result = prune(host)
    expected = sorted(volumes(host, linked_away) + volumes(host, planted))
    assert reclaimed(result, 'quarantined') == expected, result
    assert result['ignored'] == [os.path.join(host.instances, linked_away)]
    assert sorted(os.listdir(host.quarantine_dir)) == expected
    for name in expected:
        assert sha256(os.path.join(host.quarantine_dir, name)) == files[name]
    now, _listed = pool_state(conn, host)
    assert now == dict((name, files[name]) for name in volumes(host, kept))
    assert os.path.islink(os.path.join(directory, 'disk')) and sorted(os.listdir(elsewhere)) == ['disk']
    canary.assert_untouched()


def test_rbd_pool_orphans_go_to_the_ceph_trash_and_back(conn, ceph, pools, ceph_user, workdir):
    user, _key, keyring, _usage, secret_uuid = ceph_user
    pool = pools.new()
    made = run_module('virt_pool_ensure', dict(name=pool, type='rbd', source={
        'name': ceph.pool, 'host': [ceph.mon], 'auth': {'username': user, 'secret_uuid': secret_uuid}}))
    assert not made.get('failed'), made
    instance, deleted = str(uuid.uuid4()), str(uuid.uuid4())
    source = os.path.join(workdir, 'data.raw')
    with open(source, 'wb') as handle:
        handle.truncate(8 << 20)
        handle.write(os.urandom(1 << 20))
    images = ['%s_disk' % instance, '%s_disk' % deleted, '%s_disk.local' % deleted]
    for image in images:
        cloned = run_module('virt_volume_clone', dict(pool=pool, name=image, source={'path': source, 'format': 'raw'},
                                                      ceph_keyring=keyring))
        assert not cloned.get('failed'), cloned
    attached = "<disk type='network' device='disk'><driver name='qemu' type='raw'/><source protocol='rbd' " \
               "name='%s/%s'><host name='%s' port='%d'/></source><target dev='vdb' bus='virtio'/></disk>" % (
                   ceph.pool, images[2], ceph.mon['name'], ceph.mon['port'])
    conn.defineXML(DOMAIN.format(name='spl-rbd-%s' % instance[:8], uuid=instance, disks=attached))
    try:
        sums = dict((image, ceph.image_sha256(image, workdir)) for image in images)
        args = dict(disks_pool=pool, ceph_keyring=keyring, instances_path=os.path.join(workdir, 'instances'),
                    state_dir=os.path.join(workdir, 'state'), orphan_min_age=0, quarantine=QUARANTINE,
                    shared_instances_path='local')
        check = run_module('nova_storage_prune', args, check=True)
        result = run_module('nova_storage_prune', args)
        quarantined_at = time.time()
        mine = [entry for entry in result['reclaimed'] if entry['volume'] in images]
        assert dict((entry['volume'], entry['action']) for entry in mine) == {
            images[0]: 'kept', images[1]: 'quarantined', images[2]: 'kept'}, result
        assert [entry for entry in check['reclaimed'] if entry['volume'] in images] == mine
        assert images[1] not in ceph.rbd_ls() and images[1] not in conn.storagePoolLookupByName(pool).listVolumes()
        trash = json.loads(ceph.admin('trash', 'ls', ceph.pool, '--format=json', tool='rbd'))
        assert images[1] in [entry['name'] for entry in trash]
        assert run_module('nova_storage_prune', args)['changed'] is False
        restored = run_module('nova_storage_prune', dict(args, restore=[images[1]]))
        assert restored['changed'] is True, restored
        assert ceph.image_sha256(images[1], workdir) == sums[images[1]]
        assert images[1] in conn.storagePoolLookupByName(pool).listVolumes()
        again = run_module('nova_storage_prune', args)  # an orphan again: quarantined again
        quarantined_at = time.time()
        assert [entry['action'] for entry in again['reclaimed'] if entry['volume'] == images[1]] == ['quarantined']
        time.sleep(max(0, quarantined_at + QUARANTINE + 1 - time.time()))
        purged = run_module('nova_storage_prune', args)
        assert [entry['action'] for entry in purged['reclaimed'] if entry['volume'] == images[1]] == ['purged']
        trash = json.loads(ceph.admin('trash', 'ls', ceph.pool, '--format=json', tool='rbd'))
        assert images[1] not in [entry['name'] for entry in trash]
        assert run_module('nova_storage_prune', args)['changed'] is False
        for image in (images[0], images[2]):
            assert ceph.image_sha256(image, workdir) == sums[image]
    finally:
        conn.lookupByUUIDString(instance).undefine()
        ceph.remove_images(instance)
        ceph.remove_images(deleted)


PEER_ADDRESS = '127.0.0.5'  # not the live-migration test's 127.0.0.3: the two may run side by side


@pytest.fixture
def peer():
    """A second libvirtd (another compute host mounting the same instances_path), stopped by its pidfiles."""
    with running_peer('/var/tmp/spl-prune-peer-%s' % RUN_ID, address=PEER_ADDRESS) as daemon:
        yield daemon


def test_a_shared_instances_path_needs_peers_and_a_peer_domain_keeps_the_volume_it_uses(conn, host, peer):
    used, unused = host.instance(config=False), host.instance(config=False)
    adopt(host)
    nova_deletes(conn, host, used)
    nova_deletes(conn, host, unused)
    files, listed = pool_state(conn, host)

    refused = prune(host, shared_instances_path='shared')
    assert refused['failed'] and refused['msg'].startswith('peers: instances_path %s is on a shared filesystem '
                                                           '(declared shared)' % host.instances), refused
    assert 'shared_instances_path: local' in refused['msg']
    assert pool_state(conn, host) == (files, listed) and not os.path.exists(host.quarantine_dir)
    down = prune(host, shared_instances_path='shared', peers=['qemu+tcp://%s:1/system' % PEER_ADDRESS])
    assert down['failed'] and down['msg'].startswith('peers: '), down  # a peer that cannot be asked: nothing
    assert 'nothing is reclaimed' in down['msg']
    assert pool_state(conn, host) == (files, listed) and not os.path.exists(host.quarantine_dir)

    # the instance lives on on the peer now (another uuid, as a rebuilt or foreign domain would have): its
    # domain names our volume by path
    disk = volumes(host, used)[0]
    peer_conn = libvirt.open(peer.uri)
    try:
        peer_uuid = str(uuid.uuid4())
        peer_conn.defineXML(DOMAIN.format(name='spl-peer-%s' % peer_uuid[:8], uuid=peer_uuid, disks=(
            "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='%s'/>"
            "<target dev='vda' bus='virtio'/></disk>" % os.path.join(host.disks_dir, disk))))
        args = dict(shared_instances_path='shared', peers=[peer.uri])
        check = prune(host, check=True, **args)
        assert pool_state(conn, host) == (files, listed)
        result = prune(host, **args)
        why = dict((entry['volume'], (entry['action'], entry['reason'])) for entry in result['reclaimed'])
        assert why[disk][0] == 'kept' and why[disk][1] == "used by domain 'spl-peer-%s' (%s) on %s (disk vda)" % (
            peer_uuid[:8], peer_uuid, peer.uri), why
        expected = sorted(volumes(host, unused) + volumes(host, used)[1:])
        assert reclaimed(result, 'quarantined') == expected and reclaimed(check, 'quarantined') == expected, result
        assert check['reclaimed'] == result['reclaimed']
        assert sorted(os.listdir(host.quarantine_dir)) == expected
        assert pool_state(conn, host)[0] == dict((name, files[name]) for name in files if name not in expected)
        assert prune(host, **args)['changed'] is False
    finally:
        try:
            peer_conn.lookupByUUIDString(peer_uuid).undefine()
        finally:
            peer_conn.close()


def test_a_disk_only_in_a_running_domains_live_definition_keeps_its_volume(conn, host):
    running, deleted = host.instance(config=False), host.instance(config=False)
    adopt(host)
    nova_deletes(conn, host, deleted)
    disk, local = volumes(host, deleted)
    domain = conn.lookupByUUIDString(running)
    persistent = domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    conn.defineXML(persistent.replace('</devices>', "<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
                                      "<source file='%s'/><target dev='vdc' bus='virtio'/></disk></devices>"
                                      % os.path.join(host.disks_dir, local)))
    domain.create()
    try:
        conn.defineXML(persistent)  # the next boot's definition drops the disk; the running guest still has it
        assert local in domain.XMLDesc(0)
        assert local not in domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)  # in the live definition only
        result = prune(host)
        why = dict((entry['volume'], (entry['action'], entry['reason'])) for entry in result['reclaimed'])
        assert why[local][0] == 'kept' and why[local][1].startswith('used by domain') and 'vdc' in why[local][1], why
        assert reclaimed(result, 'quarantined') == [disk], result
    finally:
        domain.destroy()
