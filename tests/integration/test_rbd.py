# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""rbd_pool_secret and rbd pools against a real single-node Ceph and the real libvirtd."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import subprocess
import threading
import time

import pytest
from conftest import libvirt, playbook, recap, run_module

from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.secret import default_uuid

CONNECT_TIMEOUT = 3  # seconds: bounds every failure test below


def clone(check=False, **args):
    return run_module('virt_volume_clone', args, check=check)


def secret(check=False, diff=False, **args):
    return run_module('rbd_pool_secret', args, check=check, diff=diff)


def ensure(check=False, diff=False, **args):
    return run_module('virt_pool_ensure', args, check=check, diff=diff)


def actions(result):
    return [step['action'] for step in result['actions']]


def rbd_pool_args(ceph, name, user, secret_uuid, **extra):
    args = dict(name=name, type='rbd', connect_timeout=CONNECT_TIMEOUT,
                source={'name': ceph.pool, 'host': [ceph.mon],
                        'auth': {'username': user, 'secret_uuid': secret_uuid}})
    args.update(extra)
    return args


def test_secret_lifecycle_with_key_rotation(conn, ceph, pools, secrets):
    user, key, _keyring = ceph.new_user()
    usage = secrets.new_usage(user)
    args = dict(user=user, key=key, usage=usage)

    check = secret(check=True, **args)
    assert check['changed'] is True and actions(check) == ['define', 'set_value']
    assert secrets.lookup(usage) is None, 'check mode defined the secret'
    assert check['secret'] == {'uuid': default_uuid(usage), 'usage': usage, 'private': True}

    made = secret(**args)
    assert made['changed'] is True and actions(made) == ['define', 'set_value']
    live = secrets.lookup(usage)
    assert live.UUIDString() == default_uuid(usage)
    assert "private='yes'" in live.XMLDesc(0)
    with pytest.raises(libvirt.libvirtError):
        live.value(0)  # private: libvirt will not give it back

    for rerun in (secret(**args), secret(check=True, **args)):
        assert rerun['changed'] is False and rerun['actions'] == []

    # A pool that authenticates with the secret works.
    name = pools.new()
    assert not ensure(**rbd_pool_args(ceph, name, user, default_uuid(usage))).get('failed')
    pools.lookup(name).refresh(0)

    # Rotate the key in Ceph: the pool's old key no longer works.
    new_key, _keyring = ceph.rotate(user)
    assert new_key != key
    started = time.monotonic()
    with pytest.raises(libvirt.libvirtError):
        pools.lookup(name).refresh(0)
    assert time.monotonic() - started < CONNECT_TIMEOUT + 10

    rotate = dict(args)
    rotate['key'] = new_key
    check = secret(check=True, **rotate)
    # the fingerprint of the new key is recorded, then the value set
    assert check['changed'] is True and actions(check) == ['redefine', 'set_value']
    done = secret(**rotate)
    assert done['changed'] is True and actions(done) == ['redefine', 'set_value']
    # libvirt stopped the pool when its refresh failed; with the new key it starts again
    assert actions(ensure(**rbd_pool_args(ceph, name, user, default_uuid(usage)))) == ['start']
    pools.lookup(name).refresh(0)
    assert secret(**rotate)['changed'] is False
    assert secret(check=True, **rotate)['changed'] is False
    assert secret(check=True, **args)['changed'] is True  # the old key is now "another key"

    pools.cleanup()
    gone_check = secret(check=True, user=user, usage=usage, state='absent')
    assert gone_check['changed'] is True and actions(gone_check) == ['undefine']
    assert secrets.lookup(usage) is not None
    gone = secret(user=user, usage=usage, state='absent')
    assert gone['changed'] is True and gone['secret'] is None
    assert secrets.lookup(usage) is None
    assert secret(user=user, usage=usage, state='absent')['changed'] is False


def test_secret_from_a_keyring_on_the_managed_host(ceph, secrets):
    user, _key, keyring = ceph.new_user()
    usage = secrets.new_usage(user)
    made = secret(user=user, keyring=keyring, usage=usage)
    assert made['changed'] is True and not made.warnings
    assert secret(user=user, keyring=keyring, usage=usage)['changed'] is False
    os.chmod(keyring, 0o644)
    warned = secret(user=user, keyring=keyring, usage=usage)
    assert warned['changed'] is False
    assert any('readable by users other than its owner' in warning for warning in warned.warnings)


def test_a_non_private_secret_is_compared_by_its_value(ceph, secrets):
    user, key, _keyring = ceph.new_user()
    usage = secrets.new_usage(user)
    args = dict(user=user, key=key, usage=usage, private=False)
    assert secret(**args)['changed'] is True
    assert secrets.lookup(usage).value(0) == base64.b64decode(key)
    assert secret(**args)['changed'] is False


def test_description_changes_without_touching_the_value(ceph, secrets):
    user, key, _keyring = ceph.new_user()
    usage = secrets.new_usage(user)
    secret(user=user, key=key, usage=usage)
    described = secret(diff=True, user=user, key=key, usage=usage, description='nova on compute hosts')
    assert actions(described) == ['redefine']
    assert 'nova on compute hosts' in secrets.lookup(usage).XMLDesc(0)
    assert '# value: the same key' in described['diff']['after']


@pytest.mark.parametrize('bad, option', [
    ({'key': 'not base64 at all!'}, 'key: '),
    ({'key': base64.b64encode(b'short').decode()}, 'key: '),
    ({'key': base64.b64encode(b'\x02\x00' + b'\x00' * 26).decode()}, 'key: '),
    ({'user': 'client.nova'}, 'user: '),
    ({'uuid': 'not-a-uuid'}, 'uuid: '),
    ({'keyring': '/nonexistent/keyring', 'key': None}, 'keyring: '),
])
def test_bad_secret_input_names_the_option_and_never_the_key(ceph, secrets, bad, option):
    user, key, _keyring = ceph.new_user()
    usage = secrets.new_usage(user)
    args = dict(user=user, key=key, usage=usage)
    args.update(bad)
    args = {name: value for name, value in args.items() if value is not None}
    failed = secret(**args)
    assert failed['failed'] is True and failed['msg'].startswith(option), failed['msg']
    assert key not in str(failed) and (bad.get('key') or key) not in failed['msg']
    assert secrets.lookup(usage) is None


def test_a_keyring_without_the_users_section_is_refused(ceph, secrets):
    user, _key, keyring = ceph.new_user()
    other, _other_key, _other_keyring = ceph.new_user()
    usage = secrets.new_usage(other)
    failed = secret(user=other, keyring=keyring, usage=usage)
    assert failed['failed'] is True and failed['msg'].startswith('keyring: ')
    assert 'has no key for [client.%s]' % other in failed['msg']


def test_existing_secret_conflicts_are_clear(ceph, secrets, ceph_user):
    user, key, _keyring, usage, uuid = ceph_user
    flipped = secret(user=user, key=key, usage=usage, private=False)
    assert flipped['failed'] is True and flipped['msg'].startswith('private: ')
    other_uuid = secret(user=user, key=key, usage=usage, uuid='00000000-0000-4000-8000-000000000001')
    assert other_uuid['failed'] is True and other_uuid['msg'].startswith('usage: ') and uuid in other_uuid['msg']
    other_usage = secret(user=user, key=key, usage=secrets.new_usage(user), uuid=uuid)
    assert other_usage['failed'] is True and other_usage['msg'].startswith('uuid: ')


def readable_by_others(path):
    """Whether a user other than the owner can read ``path`` (its mode and every parent's)."""
    for read_bit, search_bit in ((stat.S_IRGRP, stat.S_IXGRP), (stat.S_IROTH, stat.S_IXOTH)):
        if not os.stat(path).st_mode & read_bit:
            continue
        parent, reachable = os.path.dirname(path), True
        while parent != '/':
            if not os.stat(parent).st_mode & search_bit:
                reachable = False
                break
            parent = os.path.dirname(parent)
        if reachable:
            return True
    return False


def test_the_key_never_leaks(installed, ceph, secrets, workdir):
    """Not in -vvvv or --diff output, returns, any argv during the run, or a file others can read."""
    user, key, _keyring = ceph.new_user()
    new_key, _keyring = ceph.rotate(user)
    usage = secrets.new_usage(user)
    raw = base64.b64decode(key)
    vars_file = os.path.join(workdir, 'vault.yml')
    fd = os.open(vars_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'w') as handle:
        handle.write('ceph_key: %s\nceph_new_key: %s\n' % (key, new_key))
    tasks = '''
        - storagepools.libvirt.rbd_pool_secret:
            user: %s
            usage: %s
            key: "{{ ceph_key }}"
          register: made
        - storagepools.libvirt.rbd_pool_secret:
            user: %s
            usage: %s
            key: "{{ ceph_new_key }}"
          register: rotated
        - ansible.builtin.debug:
            var: made
        - ansible.builtin.debug:
            var: rotated
    ''' % (user, usage, user, usage)

    seen, stop = set(), threading.Event()

    def sample_argv():
        while not stop.is_set():
            for pid in os.listdir('/proc'):
                if pid.isdigit():
                    try:
                        with open('/proc/%s/cmdline' % pid, 'rb') as handle:
                            seen.add(handle.read())
                    except OSError:
                        pass
            time.sleep(0.005)

    sampler = threading.Thread(target=sample_argv)
    sampler.start()
    try:
        code, out = playbook(installed, tasks, '-vvvv', '--diff', '-e', '@' + vars_file)
    finally:
        stop.set()
        sampler.join()
    assert code == 0, out
    assert recap(out)['changed'] == '2'
    assert len(seen) > 20, 'the sampler saw too few processes to prove anything'
    for secret_text in (key, new_key):
        assert secret_text not in out
        assert not [argv for argv in seen if secret_text.encode() in argv]
    assert not [argv for argv in seen if raw in argv]
    assert 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER' in out or '********' in out

    readable = []
    for root in ('/tmp', '/var/tmp', os.path.expanduser('~/.ansible'), '/etc/libvirt', '/run/libvirt',
                 '/var/lib/libvirt', '/var/log'):
        for directory, _dirs, files in os.walk(root):
            for name in files:
                path = os.path.join(directory, name)
                try:
                    info = os.lstat(path)
                    if not stat.S_ISREG(info.st_mode) or info.st_size > 50 * 1024 * 1024:
                        continue
                    with open(path, 'rb') as handle:
                        content = handle.read()
                except OSError:
                    continue
                holds = any(text.encode() in content for text in (key, new_key)) or raw in content
                if holds and readable_by_others(path):
                    readable.append('%s %04o' % (path, stat.S_IMODE(info.st_mode)))
    assert readable == []


def test_rbd_pool_in_one_task_and_its_volumes_in_ceph(ceph, pools, ceph_user):
    user, _key, _keyring, _usage, uuid = ceph_user
    name = pools.new()
    args = rbd_pool_args(ceph, name, user, uuid)
    args['source']['config_opts'] = {'rbd_default_features': '1'}  # layering only
    check = ensure(check=True, **args)
    assert actions(check) == ['define', 'start', 'autostart'] and pools.lookup(name) is None
    made = ensure(**args)
    assert actions(made) == ['define', 'start', 'autostart']
    pool = pools.lookup(name)
    assert pool.isActive() and pool.autostart()
    assert "name='client_mount_timeout' value='%d'" % CONNECT_TIMEOUT in pool.XMLDesc(0)
    assert ensure(**args)['changed'] is False
    assert ensure(check=True, **args)['changed'] is False

    volume = 'spl-vol-%s' % name
    pool.createXML("<volume><name>%s</name><capacity>16777216</capacity></volume>" % volume, 0)
    try:
        assert volume in ceph.rbd_ls()
        info = ceph.admin('info', '%s/%s' % (ceph.pool, volume), tool='rbd')
        assert 'features: layering\n' in info  # the pool's Ceph options reached librbd
    finally:
        pool.storageVolLookupByName(volume).delete(0)


@pytest.mark.parametrize('change', ['mons', 'user'])
def test_drift_of_an_rbd_pool_is_redefined(conn, ceph, pools, ceph_user, change):
    user, _key, _keyring, _usage, uuid = ceph_user
    name = pools.new()
    args = rbd_pool_args(ceph, name, user, uuid, state='inactive', autostart=False)
    ensure(**args)
    xml = pools.lookup(name).XMLDesc(libvirt.VIR_STORAGE_XML_INACTIVE)
    if change == 'mons':
        edited = xml.replace("port='%d'/>" % ceph.mon['port'],
                             "port='%d'/>\n<host name='192.0.2.1' port='6789'/>" % ceph.mon['port'])
    else:
        edited = xml.replace("username='%s'" % user, "username='someone-else'")
    assert edited != xml
    conn.storagePoolDefineXML(edited, 0)

    fail = ensure(on_drift='fail', **args)
    assert fail['failed'] is True and fail['msg'].startswith('on_drift: ')
    fixed = ensure(diff=True, **args)
    assert actions(fixed) == ['redefine'] and fixed['drift'] is True
    assert pools.lookup(name).XMLDesc(libvirt.VIR_STORAGE_XML_INACTIVE).count('<host ') == 1
    assert "username='%s'" % user in pools.lookup(name).XMLDesc(libvirt.VIR_STORAGE_XML_INACTIVE)
    assert ensure(**args)['changed'] is False


def refused_in_bounded_time(pools, name, args, option):
    started = time.monotonic()
    result = ensure(**args)
    elapsed = time.monotonic() - started
    assert result['failed'] is True, result
    assert result['msg'].startswith(option), result['msg']
    assert pools.lookup(name) is None, 'a failed run left the pool defined'
    assert elapsed < CONNECT_TIMEOUT + 10, 'took %.1f s' % elapsed
    return result


def test_rbd_pool_failures_are_clear_bounded_and_leave_nothing(ceph, pools, secrets, ceph_user):
    user, _key, _keyring, _usage, uuid = ceph_user
    name = pools.new()

    unknown_pool = rbd_pool_args(ceph, name, user, uuid)
    unknown_pool['source']['name'] = 'no-such-ceph-pool'
    refused_in_bounded_time(pools, name, unknown_pool, 'source.name: ')

    unreachable = rbd_pool_args(ceph, name, user, uuid)
    unreachable['source']['host'] = [{'name': '127.0.0.1', 'port': 1}]
    result = refused_in_bounded_time(pools, name, unreachable, 'source.host: ')
    assert 'RADOS monitor' in result['libvirt_error']

    missing_secret = rbd_pool_args(ceph, name, user, '00000000-0000-4000-8000-00000000dead')
    for check in (True, False):
        result = ensure(check=check, **missing_secret)
        assert result['failed'] is True and result['msg'].startswith('source.auth.secret_uuid: ')
        assert pools.lookup(name) is None

    # A secret that holds another user's key: the monitors refuse it.
    other, other_key, _other_keyring = ceph.new_user()
    wrong = secret(user=user, key=other_key, usage=secrets.new_usage(user + 'wrong'))
    assert wrong['changed'] is True, wrong
    wrong_key = rbd_pool_args(ceph, name, user, wrong['secret']['uuid'])
    result = refused_in_bounded_time(pools, name, wrong_key, 'source.auth: ')
    assert user in result['msg']


def test_import_into_rbd_and_cow_clone_from_a_protected_snapshot(ceph, pools, ceph_user, workdir):
    user, _key, keyring, _usage, uuid = ceph_user
    name = pools.new()
    assert not ensure(**rbd_pool_args(ceph, name, user, uuid)).get('failed')
    mib = 1024 * 1024
    raw = os.path.join(workdir, 'image.raw')
    with open(raw, 'wb') as handle:
        handle.truncate(64 * mib)
        for offset in (0, 40 * mib):
            handle.seek(offset)
            handle.write(os.urandom(mib))
    qcow2 = os.path.join(workdir, 'image.qcow2')
    subprocess.run(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', raw, qcow2], check=True)
    base, converted = 'spl-base-%s' % name, 'spl-conv-%s' % name
    child = '6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b_disk'
    made_images = []

    def sha256_of_image(image):
        out = os.path.join(workdir, 'export-' + image)
        ceph.admin('export', '%s/%s' % (ceph.pool, image), out, tool='rbd')
        with open(out, 'rb') as handle:
            return hashlib.sha256(handle.read()).hexdigest()

    try:
        for image, source in ((base, {'path': raw, 'format': 'raw'}), (converted, {'path': qcow2, 'format': 'qcow2'})):
            args = dict(pool=name, name=image, source=source, ceph_keyring=keyring, metadata={'image_id': image},
                        verify=True)
            check = clone(check=True, **args)
            assert actions(check) == ['create', 'import', 'verify', 'record', 'refresh']
            assert image not in ceph.rbd_ls()
            made = clone(**args)
            made_images.append(image)
            assert made['method'] == 'rbd-import' and made['volume']['path'] == '%s/%s' % (ceph.pool, image)
            with open(raw, 'rb') as handle:
                assert sha256_of_image(image) == hashlib.sha256(handle.read()).hexdigest()
            assert clone(**args)['changed'] is False
            pools.lookup(name).storageVolLookupByName(image)  # libvirt lists it
            record = json.loads(ceph.admin('image-meta', 'get', '%s/%s' % (ceph.pool, image),
                                           'user.storagepools.libvirt', tool='rbd'))
            info = run_module('virt_pool_info', dict(name=name, volumes=True, ceph_keyring=keyring))
            by_name = {volume['name']: volume for volume in info['pools'][name]['volumes']}
            assert by_name[image]['metadata'] == record  # virt_pool_info reads it from the image-meta
            assert record['format'] == 'raw' and record['virtual_size'] == 64 * mib
            assert record['source'] == {'path': source['path'], 'image_id': image}
        usage = ceph.admin('du', '%s/%s' % (ceph.pool, base), '--format=json', tool='rbd')
        assert json.loads(usage)['images'][0]['used_size'] <= 8 * mib, 'the import was not sparse'

        args = dict(pool=name, instance_uuid=child.split('_', maxsplit=1)[0], disk='disk', mode='cow', capacity=128 * mib,
                    source={'pool': name, 'volume': base}, ceph_keyring=keyring)
        check = clone(check=True, **args)
        assert actions(check) == ['snapshot', 'clone', 'record', 'refresh']
        made = clone(**args)
        made_images.insert(0, child)
        assert made['method'] == 'rbd-clone'
        assert made['volume']['backing'] == {'path': '%s/%s@storagepools-base' % (ceph.pool, base), 'format': 'raw'}
        info = json.loads(ceph.admin('info', '%s/%s' % (ceph.pool, child), '--format=json', tool='rbd'))
        assert info['parent']['image'] == base and info['parent']['snapshot'] == 'storagepools-base'
        assert info['size'] == 128 * mib
        snap = json.loads(ceph.admin('info', '%s/%s@storagepools-base' % (ceph.pool, base), '--format=json',
                                     tool='rbd'))
        assert snap['protected'] == 'true'
        pools.lookup(name).storageVolLookupByName(child)
        assert clone(**args)['changed'] is False
        wrong = clone(pool=name, name='x', mode='cow', source={'path': raw, 'format': 'raw'}, ceph_keyring=keyring)
        assert wrong['failed'] is True and wrong['msg'].startswith('source: ')
    finally:
        for image in made_images:
            if image == base:
                subprocess.run(['rbd', '--conf', ceph.conf, '--name', 'client.admin', '--keyring',
                                ceph.env['CEPH_ADMIN_KEYRING'], 'snap', 'unprotect',
                                '%s/%s@storagepools-base' % (ceph.pool, base)], capture_output=True, check=False)
                subprocess.run(['rbd', '--conf', ceph.conf, '--name', 'client.admin', '--keyring',
                                ceph.env['CEPH_ADMIN_KEYRING'], 'snap', 'purge', '%s/%s' % (ceph.pool, base)],
                               capture_output=True, check=False)
            ceph.admin('rm', '%s/%s' % (ceph.pool, image), tool='rbd')


def test_copy_out_of_rbd_into_a_file_pool(ceph, pools, ceph_user, workdir):
    """rbd -> dir: qemu's rbd driver reads the image as raw (its header checked through librbd first)."""
    user, _key, keyring, _usage, uuid = ceph_user
    rbd_pool, dir_pool = pools.new(), pools.new()
    assert not ensure(**rbd_pool_args(ceph, rbd_pool, user, uuid)).get('failed')
    assert not ensure(name=dir_pool, type='dir', target=os.path.join(workdir, 'dir-pool')).get('failed')
    mib = 1024 * 1024
    raw = os.path.join(workdir, 'image.raw')
    with open(raw, 'wb') as handle:
        handle.truncate(32 * mib)
        handle.seek(9 * mib)
        handle.write(os.urandom(mib))
    with open(raw, 'rb') as handle:
        expected = hashlib.sha256(handle.read()).hexdigest()
    image, hostile = 'spl-out-%s' % rbd_pool, 'spl-hostile-%s' % rbd_pool
    try:
        made = clone(pool=rbd_pool, name=image, source={'path': raw, 'format': 'raw'}, ceph_keyring=keyring)
        assert made['method'] == 'rbd-import', made
        for dest_format in ('raw', 'qcow2'):
            args = dict(pool=dir_pool, name='copy.%s' % dest_format, format=dest_format, verify=True,
                        source={'pool': rbd_pool, 'volume': image}, ceph_keyring=keyring)
            assert clone(check=True, **args)['actions'][0]['action'] == 'create'
            assert not os.path.exists(os.path.join(workdir, 'dir-pool', 'copy.%s' % dest_format))
            copied = clone(**args)
            assert copied['method'] == 'qemu-img-convert' and copied['volume']['format'] == dest_format, copied
            assert [step['action'] for step in copied['actions']] == ['create', 'convert', 'verify', 'record']
            path = copied['volume']['path']
            assert copied['metadata']['source'] == {'pool': rbd_pool, 'volume': image}
            view = os.path.join(workdir, 'view.raw')
            subprocess.run(['qemu-img', 'convert', '-f', dest_format, '-O', 'raw', path, view], check=True)
            with open(view, 'rb') as handle:
                assert hashlib.sha256(handle.read()).hexdigest() == expected
            if dest_format == 'raw':
                assert os.stat(path).st_blocks * 512 <= 4 * mib, 'the copy out of rbd was not sparse'
            assert clone(**args)['changed'] is False
        # an image in rbd whose bytes are a qcow2 (put there by hand, not by this collection) is refused as raw
        qcow2 = os.path.join(workdir, 'hostile.qcow2')
        subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', qcow2, '1M'], check=True)
        ceph.admin('import', qcow2, '%s/%s' % (ceph.pool, hostile), tool='rbd')
        pools.lookup(rbd_pool).refresh(0)  # libvirt lists it (an rbd refresh reads no image content)
        refused = clone(pool=dir_pool, name='hostile', source={'pool': rbd_pool, 'volume': hostile},
                        ceph_keyring=keyring)
        assert refused['failed'] is True and 'declared raw but its bytes are a qcow2 image' in refused['msg']
        assert not os.path.exists(os.path.join(workdir, 'dir-pool', 'hostile'))
    finally:
        ceph.remove_images(image)
        ceph.remove_images(hostile)


def test_an_image_name_with_qemu_separators_is_refused_and_writes_nowhere(ceph, pools, ceph_user, workdir):
    """'victim:opt=x' unescaped in qemu's rbd: filename is image 'victim' plus an option: refused, and the
    filename qemu gets is escaped whatever the name."""
    user, _key, keyring, _usage, uuid = ceph_user
    name = pools.new()
    assert not ensure(**rbd_pool_args(ceph, name, user, uuid)).get('failed')
    raw, qcow2 = os.path.join(workdir, 'victim.raw'), os.path.join(workdir, 'attacker.qcow2')
    with open(raw, 'wb') as handle:
        handle.truncate(4 * 1024 * 1024)
        handle.write(b'victim data')
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', qcow2, '4M'], check=True)
    subprocess.run(['qemu-io', '-f', 'qcow2', '-c', 'write -P 0x41 0 64k', qcow2], check=True, capture_output=True)
    victim = 'spl-victim-%s' % name
    try:
        made = clone(pool=name, name=victim, source={'path': raw, 'format': 'raw'}, ceph_keyring=keyring)
        assert not made.get('failed'), made
        before = ceph.image_sha256(victim, workdir)
        for hostile in (victim + ':rbd_cache=false', victim + '@snap', victim + '\\x', 'a=b', 'a\x01b'):
            for check in (True, False):
                refused = clone(check=check, pool=name, name=hostile, source={'path': qcow2, 'format': 'qcow2'},
                                ceph_keyring=keyring)
                assert refused['failed'] is True and refused['msg'].startswith('name: '), refused
        source_refused = clone(pool=name, name='spl-copy-%s' % name, ceph_keyring=keyring,
                               source={'pool': name, 'volume': victim + ':rbd_cache=false'})
        assert source_refused['failed'] is True and source_refused['msg'].startswith('source.volume: ')
        assert [image for image in ceph.rbd_ls() if name in image or image in ('a=b', 'a\x01b')] == [victim]
        assert ceph.image_sha256(victim, workdir) == before

        # Safe by construction: even an unchecked name reaches qemu as one image name.
        from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import rbd as rbd_volume
        from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.pool import running_definition
        ceph_pool = rbd_volume.RbdPool(running_definition(pools.lookup(name)), keyring)
        info = subprocess.run(['qemu-img', 'info', '--output=json', '-f', 'raw', ceph_pool.qemu_target(victim)],
                              capture_output=True, text=True, check=False)
        assert info.returncode == 0 and json.loads(info.stdout)['virtual-size'] == 4 * 1024 * 1024, info.stderr
        info = subprocess.run(['qemu-img', 'info', '--output=json', '-f', 'raw',
                               ceph_pool.qemu_target(victim + ':rbd_cache=false')],
                              capture_output=True, text=True, check=False)
        assert info.returncode != 0 and 'No such file' in info.stderr, info.stdout + info.stderr
    finally:
        ceph.remove_images(victim)


def test_a_key_read_from_a_keyring_is_masked_like_the_key_option(ceph, secrets):
    """Whatever of the task's output would hold the key read from a keyring (here an operator's description
    with the key pasted in) shows it masked, as Ansible masks the no_log key option."""
    user, key, keyring = ceph.new_user()
    usage = secrets.new_usage(user)
    made = secret(diff=True, user=user, keyring=keyring, usage=usage, description='pasted by mistake: %s' % key)
    assert made['changed'] is True, made
    assert key not in json.dumps(made) + made.stderr
    assert 'pasted by mistake' in made['diff']['after']
