# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The modules against another host's libvirtd over qemu+tcp (docs/pools.md, "Remote URIs").

The other host is a second libvirtd of this file's own (peer_libvirtd.py) on
127.0.0.8, in a mount namespace of its own: its pool targets live under
``HOSTS`` in its view only (``peer.private`` is where this process sees
them), so a module that acted on this machine's files instead of going
through libvirt would show here (a local path that appears, a check against
a path that is not there). What works remotely is converged over the tcp
URI; what needs the host's own files refuses it before anything is done.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest
from conftest import RUN_ID, actions, libvirt, run_module
from peer_libvirtd import HOSTS, running_peer

# Not 127.0.0.7: test_volume_streams.py uses it as an address where nothing answers.
PEER_ADDRESS = '127.0.0.8'
INACTIVE = libvirt.VIR_STORAGE_XML_INACTIVE if libvirt else 0


@pytest.fixture(scope='module')
def peer():
    with running_peer('/var/tmp/remote-peer-%s' % RUN_ID, address=PEER_ADDRESS) as daemon:
        yield daemon


@pytest.fixture
def peer_conn(peer):
    conn = libvirt.open(peer.uri)
    yield conn
    conn.close()


def lookup(conn, name):
    try:
        return conn.storagePoolLookupByName(name)
    except libvirt.libvirtError:
        return None


@pytest.fixture
def peer_pool(peer, peer_conn):
    """(name, target in the peer's view) of a dir pool to be made on the peer; removed afterwards."""
    name = 'remote-%s-pool' % RUN_ID
    target = os.path.join(HOSTS, 'remote-%s' % RUN_ID, 'pool')
    yield name, target
    pool = lookup(peer_conn, name)
    if pool is not None:
        if pool.isActive():
            for volume in pool.listAllVolumes(0):
                volume.delete(0)
            pool.destroy()
        pool.undefine()
    shutil.rmtree(peer.private(os.path.dirname(target)), ignore_errors=True)


def ensure(check=False, diff=False, **args):
    return run_module('virt_pool_ensure', args, check=check, diff=diff)


def made_pool(peer, peer_conn, peer_pool):
    name, target = peer_pool
    result = ensure(uri=peer.uri, name=name, type='dir', target=target, autostart=False)
    assert result['changed'] is True and not result.get('failed'), result
    return lookup(peer_conn, name)


def test_pool_ensure_converges_a_dir_pool_on_the_peer(peer, peer_conn, peer_pool, conn):
    name, target = peer_pool
    args = dict(uri=peer.uri, name=name, type='dir', target=target, permissions={'mode': '0755'},
                state='active', autostart=True)

    check = ensure(check=True, diff=True, **args)
    assert check['changed'] is True and actions(check) == ['define', 'build', 'start', 'autostart'], check
    assert lookup(peer_conn, name) is None, 'check mode defined the pool'
    assert check['diff']['before'] in ('', None) or name not in check['diff']['before']
    assert target in check['diff']['after']

    real = ensure(diff=True, **args)
    assert real['changed'] is True and actions(real) == actions(check), real
    pool = lookup(peer_conn, name)
    assert pool.isActive() and pool.autostart() and pool.isPersistent()
    assert real['pool']['uuid'] == pool.UUIDString()
    # Built on the peer, through libvirt: its target is in the peer's view, and nothing appeared here.
    assert os.path.isdir(peer.private(target))
    assert not os.path.exists(target), 'the build acted on this machine instead of the peer'
    assert lookup(conn, name) is None, 'the pool went to the system libvirtd'

    for rerun in (ensure(**args), ensure(check=True, **args)):
        assert rerun['changed'] is False and rerun['actions'] == [] and rerun['drift'] is False, rerun

    # Drift behind the back, as a virsh edit on the peer would make it: shown, then redefined.
    peer_conn.storagePoolDefineXML(pool.XMLDesc(INACTIVE).replace('<mode>0755</mode>', '<mode>0700</mode>'), 0)
    drifted = ensure(check=True, diff=True, **args)
    assert drifted['changed'] is True and drifted['drift'] is True and actions(drifted) == ['redefine'], drifted
    assert '0700' in drifted['diff']['before'] and '0755' in drifted['diff']['after']
    assert '<mode>0700</mode>' in lookup(peer_conn, name).XMLDesc(INACTIVE), 'check mode redefined the pool'
    fixed = ensure(**args)
    assert fixed['changed'] is True and actions(fixed) == ['redefine']
    assert '<mode>0755</mode>' in lookup(peer_conn, name).XMLDesc(INACTIVE)
    assert ensure(**args)['changed'] is False

    # Removal with its data: libvirt deletes the peer's target, never a path of this machine's.
    os.makedirs(target)
    gone_args = dict(uri=peer.uri, name=name, state='absent', delete_data=True)
    check_gone = ensure(check=True, **gone_args)
    assert check_gone['changed'] is True and lookup(peer_conn, name) is not None, check_gone
    gone = ensure(**gone_args)
    assert gone['changed'] is True and lookup(peer_conn, name) is None, gone
    assert not os.path.exists(peer.private(target)) and os.path.isdir(target)
    shutil.rmtree(os.path.dirname(target))  # this machine's directory of the same path: left alone, now ours to remove
    assert ensure(**gone_args)['changed'] is False


def test_pool_info_lists_the_peers_pool_and_volumes(peer, peer_conn, peer_pool):
    name, target = peer_pool
    pool = made_pool(peer, peer_conn, peer_pool)
    pool.createXML("<volume><name>remote-vol.img</name><capacity unit='MiB'>4</capacity>"
                   "<target><format type='raw'/></target></volume>", 0)

    listed = run_module('virt_pool_info', dict(uri=peer.uri))
    assert not listed.get('failed'), listed
    assert name in listed['pools'] and listed['pools'][name]['state'] == 'active'

    one = run_module('virt_pool_info', dict(uri=peer.uri, name=name, volumes=True))
    assert not one.get('failed'), one
    volumes = one['pools'][name]['volumes']
    assert [volume['name'] for volume in volumes] == ['remote-vol.img']
    assert volumes[0]['path'] == os.path.join(target, 'remote-vol.img')
    # The file is on the peer: not read from here (its record neither), and said so.
    assert volumes[0]['metadata'] is None and 'remote uri' in volumes[0]['note'], volumes[0]

    # Orphans are told by the instance directories, which are the peer's own files.
    refused = run_module('virt_pool_info', dict(uri=peer.uri, name=name, instances_path='/var/lib/nova/instances'))
    assert refused['failed'] is True and refused['msg'].startswith('instances_path: '), refused
    assert 'delegate_to' in refused['msg']


def test_rbd_pool_secret_defines_and_rotates_a_ceph_secret_on_the_peer(peer, peer_conn, conn, ceph):
    user, key, keyring = ceph.new_user()
    usage = 'client.%s remote-%s' % (user, RUN_ID)
    args = dict(uri=peer.uri, user=user, key=key, usage=usage)

    def secret(check=False, diff=False, **extra):
        result = run_module('rbd_pool_secret', dict(args, **extra), check=check, diff=diff)
        text = json.dumps(result) + result.stderr
        for value in (key, new_key):
            assert value is None or value not in text, 'a key appeared in the output'
        return result

    def peer_secret():
        try:
            return peer_conn.secretLookupByUsage(libvirt.VIR_SECRET_USAGE_TYPE_CEPH, usage)
        except libvirt.libvirtError:
            return None

    new_key = None
    try:
        check = secret(check=True, diff=True)
        assert check['changed'] is True and actions(check) == ['define', 'set_value'], check
        assert peer_secret() is None, 'check mode defined the secret'
        made = secret()
        assert made['changed'] is True and actions(made) == ['define', 'set_value'], made
        assert peer_secret().UUIDString() == made['secret']['uuid']
        with pytest.raises(libvirt.libvirtError):
            conn.secretLookupByUsage(libvirt.VIR_SECRET_USAGE_TYPE_CEPH, usage)  # not on the system libvirtd
        assert secret()['changed'] is False and secret(check=True)['changed'] is False

        new_key, new_keyring = ceph.rotate(user)
        rotated = secret(check=True, key=new_key)
        assert rotated['changed'] is True and actions(rotated) == ['redefine', 'set_value'], rotated
        done = secret(key=new_key)
        assert done['changed'] is True and actions(done) == ['redefine', 'set_value']
        # A keyring is read where the module runs (the managed host); the value goes to the peer.
        from_keyring = run_module('rbd_pool_secret', dict(uri=peer.uri, user=user, keyring=new_keyring,
                                                          usage=usage))
        assert from_keyring['changed'] is False and not from_keyring.get('failed'), from_keyring

        # The peer's libvirt authenticates to Ceph with it: an rbd pool there starts and lists.
        name = 'remote-%s-rbd' % RUN_ID
        pool = ensure(uri=peer.uri, name=name, type='rbd', autostart=False, connect_timeout=10,
                      source={'name': ceph.pool, 'host': [ceph.mon],
                              'auth': {'username': user, 'secret_uuid': made['secret']['uuid']}})
        try:
            assert pool['changed'] is True and not pool.get('failed'), pool
            lookup(peer_conn, name).refresh(0)
        finally:
            found = lookup(peer_conn, name)
            if found is not None:
                if found.isActive():
                    found.destroy()
                found.undefine()
    finally:
        gone = run_module('rbd_pool_secret', dict(uri=peer.uri, usage=usage, state='absent'))
        assert not gone.get('failed'), gone
    assert peer_secret() is None


def test_volume_clone_on_the_peer_is_refused_up_front(peer, peer_conn, peer_pool):
    """Cloning writes the volume's record beside it (a file on the peer): refused, naming uri, nothing made."""
    name, target = peer_pool
    pool = made_pool(peer, peer_conn, peer_pool)
    pool.createXML("<volume><name>base.img</name><capacity unit='MiB'>4</capacity>"
                   "<target><format type='raw'/></target></volume>", 0)
    cases = [dict(name='full.img', mode='copy', source={'pool': name, 'volume': 'base.img'}),
             dict(name='cow.qcow2', mode='cow', format='qcow2', source={'pool': name, 'volume': 'base.img'}),
             dict(name='image.img', source={'path': '/etc/hostname', 'format': 'raw'}),
             dict(name='base.img', state='absent')]
    for extra in cases:
        for check in (True, False):
            result = run_module('virt_volume_clone', dict(uri=peer.uri, pool=name, **extra), check=check)
            assert result['failed'] is True and result['msg'].startswith('uri: '), (extra, result)
            assert 'delegate_to' in result['msg'] and repr(peer.uri) in result['msg'], result
    assert 'source.path is a file' in run_module('virt_volume_clone', dict(uri=peer.uri, pool=name, **cases[2]))['msg']
    pool.refresh(0)
    assert sorted(volume.name() for volume in pool.listAllVolumes(0)) == ['base.img']
    assert sorted(os.listdir(peer.private(target))) == ['base.img']


HOST_FILE_TASKS = [
    ('legacy_disk_adopt', {}),
    ('legacy_disk_adopt', {'state': 'reverted'}),
    ('nova_image_cache', {}),
    ('nova_storage_prune', {}),
    ('transition_preflight', {}),
    ('live_migration_check', {'instances': ['all'], 'destination_uri': 'qemu:///system'}),
]


@pytest.mark.parametrize('module, extra', HOST_FILE_TASKS,
                         ids=['%s-%d' % (module, index) for index, (module, _extra) in enumerate(HOST_FILE_TASKS)])
def test_modules_that_need_the_hosts_files_refuse_a_remote_uri(peer, peer_conn, module, extra):
    pools_before = sorted(pool.name() for pool in peer_conn.listAllStoragePools(0))
    for check in (True, False):
        result = run_module(module, dict(extra, uri=peer.uri), check=check)
        assert result['failed'] is True and result['msg'].startswith('uri: '), result
        assert repr(peer.uri) in result['msg'] and 'delegate_to' in result['msg'], result
    assert sorted(pool.name() for pool in peer_conn.listAllStoragePools(0)) == pools_before
    # Before any connection: a URI where nothing answers gets the same refusal, not "cannot connect".
    silent = 'qemu+tcp://%s:1/system' % PEER_ADDRESS
    result = run_module(module, dict(extra, uri=silent))
    assert result['msg'].startswith('uri: ') and repr(silent) in result['msg'], result


def test_live_migration_check_still_takes_a_remote_destination(peer):
    result = run_module('live_migration_check', dict(instances=['remote-%s-no-such-domain' % RUN_ID],
                                                     destination_uri=peer.uri))
    # Whatever it finds of a domain that is not there, it is not the refusal of a remote uri.
    assert not result.get('msg', '').startswith(('uri: ', 'destination_uri: ')), result
