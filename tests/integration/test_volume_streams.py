# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""virt_volume_clone with a source on another libvirt host: libvirt streams between two real daemons.

The destination is the system libvirtd (qemu:///system); the source host is a
second libvirtd of its own (peer_libvirtd.py) on 127.0.0.6. Through its tcp
URI it is a remote host: this process reads nothing of it but what libvirt
streams. Through its unix socket it is a daemon of this host, whose files
(and so records) this process reads: that is how a source's record travels.
"""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
from canary import Canary
from conftest import RUN_ID, actions, libvirt, run_module, sha256, start_module
from peer_libvirtd import running_peer

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.file import read_file_metadata

MiB = 1024 * 1024
PEER_ADDRESS = '127.0.0.6'  # of this file's own: other tests' peers listen on 127.0.0.2 and .3


@pytest.fixture(scope='module')
def peer():
    with running_peer('/var/tmp/streams-peer-%s' % RUN_ID, address=PEER_ADDRESS) as daemon:
        yield daemon


@pytest.fixture
def peer_pool(peer, workdir):
    """(name, target) of an active dir pool on the peer, in a directory both views share."""
    conn = libvirt.open(peer.uri)
    name = 'streams-%s-src' % RUN_ID
    target = os.path.join(workdir, 'peer')
    os.makedirs(target, mode=0o755)
    pool = conn.storagePoolCreateXML("<pool type='dir'><name>%s</name><target><path>%s</path></target></pool>"
                                     % (name, target), 0)
    yield name, target
    pool.destroy()
    conn.close()


@pytest.fixture
def dest_pool(dir_pool):
    return dir_pool


def clone(check=False, env=None, **args):
    return run_module('virt_volume_clone', args, check=check, env=env)


def allocated(path):
    return os.stat(path).st_blocks * 512


def make_raw(path, size, dense):
    """A raw image: all data (``dense``), or 3 MiB of data in ``size`` bytes of holes."""
    with open(path, 'wb') as handle:
        if dense:
            for _block in range(size // MiB):
                handle.write(os.urandom(MiB))
        else:
            handle.truncate(size)
            for offset in (0, size // 2, size - MiB):
                handle.seek(offset)
                handle.write(os.urandom(MiB))
    return path


def source_volume(peer, peer_pool, workdir, name, volume_format='raw', dense=False, size=64 * MiB):
    """A recorded volume on the peer (made by the module through the peer's own, local, socket URI)."""
    image = make_raw(os.path.join(workdir, name + '.image'), size, dense)
    made = clone(uri=peer.socket_uri, pool=peer_pool[0], name=name, format=volume_format,
                 source={'path': image, 'format': 'raw'}, metadata={'image_id': 'img-' + name})
    assert made['changed'] is True and not made.get('failed'), made
    return image, os.path.join(peer_pool[1], name)


def same_image(image, path, volume_format):
    return subprocess.run(['qemu-img', 'compare', '-q', '-f', 'raw', '-F', volume_format, image, path],
                          check=False).returncode == 0


@pytest.mark.parametrize('volume_format, dense', [('raw', False), ('raw', True), ('qcow2', False), ('qcow2', True)])
def test_a_volume_streams_host_to_host_with_its_record(peer, peer_pool, dest_pool, workdir, volume_format, dense):
    image, source_path = source_volume(peer, peer_pool, workdir, 'src', volume_format, dense, 32 * MiB)
    source_sum, source_stat = sha256(source_path), os.stat(source_path)
    source_record = read_file_metadata(source_path)
    args = dict(pool=dest_pool[0], name='copy', verify=True,
                source={'uri': peer.socket_uri, 'pool': peer_pool[0], 'volume': 'src'})

    check = clone(check=True, **args)
    assert not check.get('failed'), check
    assert check['changed'] is True and actions(check) == ['create', 'stream', 'verify', 'record'], check
    assert os.listdir(dest_pool[1]) == [], 'check mode created something'

    made = clone(**args)
    assert made['changed'] is True and made['method'] == 'stream', made
    path = os.path.join(dest_pool[1], 'copy')
    assert sha256(path) == source_sum, 'the bytes differ'
    assert abs(allocated(path) - allocated(source_path)) <= allocated(source_path) // 10, 'sparseness lost'
    record = read_file_metadata(path)
    assert record['format'] == volume_format and record['virtual_size'] == 32 * MiB
    assert record['source'] == {'uri': peer.socket_uri, 'pool': peer_pool[0], 'volume': 'src'}
    assert record['source_record'] == source_record, 'the source record did not travel'
    assert 'partial' not in record
    assert same_image(image, path, volume_format)
    volume = libvirt.open('qemu:///system').storagePoolLookupByName(dest_pool[0]).storageVolLookupByName('copy')
    assert volume.info()[1] == 32 * MiB

    assert clone(**args)['changed'] is False
    assert clone(check=True, **args)['changed'] is False
    after = os.stat(source_path)
    assert sha256(source_path) == source_sum and after.st_mtime_ns == source_stat.st_mtime_ns, 'the source changed'
    assert sorted(os.listdir(dest_pool[1])) == ['copy']


def test_the_other_way_round_from_the_system_libvirtd_into_the_peer(peer, peer_pool, dest_pool, workdir):
    """The peer as destination (the task's uri, its files local), the system libvirtd as the source host."""
    image = make_raw(os.path.join(workdir, 'image.raw'), 32 * MiB, dense=False)
    made = clone(pool=dest_pool[0], name='src', source={'path': image, 'format': 'raw'})
    assert made['changed'] is True, made
    source_path = os.path.join(dest_pool[1], 'src')
    args = dict(uri=peer.socket_uri, pool=peer_pool[0], name='copy', verify=True,
                source={'uri': 'qemu:///system', 'pool': dest_pool[0], 'volume': 'src'})
    result = clone(**args)
    assert result['changed'] is True and result['method'] == 'stream', result
    path = os.path.join(peer_pool[1], 'copy')
    assert sha256(path) == sha256(image) and allocated(path) <= allocated(source_path) * 11 // 10
    assert read_file_metadata(path)['source_record'] == read_file_metadata(source_path)
    assert libvirt.open(peer.uri).storagePoolLookupByName(peer_pool[0]).storageVolLookupByName('copy')
    assert clone(**args)['changed'] is False


def test_a_remote_source_without_a_readable_record_needs_its_format(peer, peer_pool, dest_pool, workdir):
    """Through tcp the source's record (an xattr on the other host) is out of reach: the format is declared and
    checked against the bytes read through libvirt."""
    image, source_path = source_volume(peer, peer_pool, workdir, 'src', 'qcow2')
    spec = {'uri': peer.uri, 'pool': peer_pool[0], 'volume': 'src'}
    refused = clone(pool=dest_pool[0], name='copy', source=spec)
    assert refused['failed'] is True and refused['msg'].startswith('source.format: '), refused
    wrong = clone(pool=dest_pool[0], name='copy', source=dict(spec, format='raw'))
    assert wrong['failed'] is True and wrong['msg'].startswith('source.format: '), wrong
    assert 'qcow2' in wrong['msg'], wrong['msg']
    assert os.listdir(dest_pool[1]) == []

    args = dict(pool=dest_pool[0], name='copy', verify=True, source=dict(spec, format='qcow2'))
    made = clone(**args)
    assert made['changed'] is True and made['method'] == 'stream', made
    path = os.path.join(dest_pool[1], 'copy')
    assert sha256(path) == sha256(source_path)
    record = read_file_metadata(path)
    assert record['format'] == 'qcow2' and record['source_record'] is None
    assert record['source'] == {'uri': peer.uri, 'pool': peer_pool[0], 'volume': 'src'}
    assert clone(**args)['changed'] is False


@pytest.mark.parametrize('first, second', [('raw', 'qcow2'), ('qcow2', 'raw')])
def test_a_format_change_converts_through_a_temporary_volume(peer, peer_pool, dest_pool, workdir, first, second):
    image, _source_path = source_volume(peer, peer_pool, workdir, 'src', first)
    args = dict(pool=dest_pool[0], name='copy', format=second, verify=True,
                source={'uri': peer.socket_uri, 'pool': peer_pool[0], 'volume': 'src'})
    check = clone(check=True, **args)
    assert actions(check) == ['create', 'create', 'stream', 'verify', 'convert', 'verify', 'remove', 'record'], check
    made = clone(**args)
    assert made['changed'] is True and made['method'] == 'stream-convert', made
    path = os.path.join(dest_pool[1], 'copy')
    assert os.listdir(dest_pool[1]) == ['copy'], 'the temporary volume stayed'
    assert same_image(image, path, second)
    assert read_file_metadata(path)['format'] == second
    pool = libvirt.open('qemu:///system').storagePoolLookupByName(dest_pool[0])
    assert pool.listVolumes() == ['copy']
    assert clone(**args)['changed'] is False


@pytest.mark.parametrize('volume_format', ['raw', 'qcow2'])
def test_a_kill_mid_stream_leaves_a_marked_volume_the_rerun_removes(peer, peer_pool, dest_pool, workdir,
                                                                    volume_format):
    image, source_path = source_volume(peer, peer_pool, workdir, 'src', 'raw', dense=True)
    args = dict(pool=dest_pool[0], name='copy', format=volume_format,
                source={'uri': peer.socket_uri, 'pool': peer_pool[0], 'volume': 'src'})
    proc = start_module('virt_volume_clone', args, env={'STORAGEPOOLS_KILL_AT': 'stream-chunk:40'})
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.returncode
    left = sorted(os.listdir(dest_pool[1]))
    assert left, 'the kill came before anything was made'
    for name in left:
        marker = read_file_metadata(os.path.join(dest_pool[1], name))
        assert marker['partial'] is True, (name, marker)
        assert 0 < allocated(os.path.join(dest_pool[1], name)) < 64 * MiB or name == 'copy'

    unfinished = clone(pool=dest_pool[0], name='other', source={'pool': dest_pool[0], 'volume': 'copy'})
    assert unfinished['failed'] is True and unfinished['msg'].startswith('source.volume: '), unfinished
    assert 'unfinished' in unfinished['msg'], unfinished['msg']

    rerun = clone(**args)
    assert not rerun.get('failed') and rerun['changed'] is True, rerun
    assert actions(rerun)[:len(left)] == ['remove'] * len(left), rerun
    assert os.listdir(dest_pool[1]) == ['copy']
    path = os.path.join(dest_pool[1], 'copy')
    assert same_image(image, path, volume_format)
    assert 'partial' not in read_file_metadata(path)
    assert clone(**args)['changed'] is False


def test_a_guest_written_header_in_a_recorded_raw_volume_arrives_as_raw_data(peer, peer_pool, dest_pool, workdir):
    canary = Canary(os.path.join(workdir, 'canary'))
    _image, source_path = source_volume(peer, peer_pool, workdir, 'guest', 'raw')
    header = os.path.join(workdir, 'header.qcow2')
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', canary.path, '-F', 'raw', header, '64M'],
                   check=True)
    with open(header, 'rb') as handle, open(source_path, 'r+b') as disk:  # the guest writes a qcow2 header
        disk.write(handle.read())
    canary.before = canary.state()  # qemu-img create read it above; from here on nothing may

    made = clone(pool=dest_pool[0], name='copy', verify=True,
                 source={'uri': peer.socket_uri, 'pool': peer_pool[0], 'volume': 'guest'})
    assert made['changed'] is True, made
    path = os.path.join(dest_pool[1], 'copy')
    assert sha256(path) == sha256(source_path)
    assert read_file_metadata(path)['format'] == 'raw'
    # declared raw where no record is readable: the bytes are checked, and a qcow2 header is refused
    refused = clone(pool=dest_pool[0], name='other',
                    source={'uri': peer.uri, 'pool': peer_pool[0], 'volume': 'guest', 'format': 'raw'})
    assert refused['failed'] is True and refused['msg'].startswith('source.format: '), refused
    assert os.listdir(dest_pool[1]) == ['copy']
    canary.assert_untouched()


def test_a_mismatch_on_verify_removes_the_new_volume(peer, peer_pool, dest_pool, workdir):
    _image, _source_path = source_volume(peer, peer_pool, workdir, 'src', 'raw')
    args = dict(pool=dest_pool[0], name='copy', verify=True,
                source={'uri': peer.socket_uri, 'pool': peer_pool[0], 'volume': 'src'})
    proc = start_module('virt_volume_clone', args, env={'STORAGEPOOLS_PAUSE_AT': 'verify'})
    path = os.path.join(dest_pool[1], 'copy')
    for _attempt in range(200):  # the stream is done once the record is no longer the partial one... wait for the pause
        if os.path.exists(path) and allocated(path) >= 3 * MiB:
            break
        subprocess.run(['sleep', '0.05'], check=True)
    subprocess.run(['sleep', '1'], check=True)
    with open(path, 'r+b') as handle:  # the volume changes under the run, between stream and verify
        handle.seek(5 * MiB)
        handle.write(b'not what was sent')
    out, _err = proc.communicate(timeout=120)
    assert '"failed": true' in out and 'verify: ' in out, out
    assert os.listdir(dest_pool[1]) == []


def test_refusals_name_the_option(peer, peer_pool, dest_pool, workdir):
    source_volume(peer, peer_pool, workdir, 'src', 'raw')
    spec = {'uri': peer.socket_uri, 'pool': peer_pool[0], 'volume': 'src'}
    cases = [('mode: ', dict(mode='cow', source=spec)),
             ('source.volume: ', dict(source=dict(spec, volume='missing'))),
             ('source.pool: ', dict(source=dict(spec, pool='streams-no-such-pool'))),
             ('source.uri: ', dict(source=dict(spec, uri='qemu+tcp://127.0.0.7/system'))),
             ('source.uri: ', dict(source={'uri': peer.uri, 'path': '/etc/hostname', 'format': 'raw'})),
             ('source.format: ', dict(source=dict(spec, format='qcow2')))]
    for option, extra in cases:
        result = clone(pool=dest_pool[0], name='copy', **extra)
        assert result['failed'] is True and result['msg'].startswith(option), (option, result)
    assert os.listdir(dest_pool[1]) == []


def test_an_fs_pool_takes_what_fits_and_refuses_what_does_not_up_front(peer, peer_pool, pools, workdir, loop_device):
    name = pools.new()
    mount = os.path.join(workdir, 'small')
    os.mkdir(mount)
    made = run_module('virt_pool_ensure', dict(name=name, type='fs', target=mount, build='never', autostart=False,
                                               source={'device': [loop_device(mkfs='mkfs.ext4')]}))  # 64 MiB
    assert not made.get('failed'), made
    before = sorted(os.listdir(mount))
    source_volume(peer, peer_pool, workdir, 'dense', 'raw', dense=True, size=96 * MiB)
    refused = clone(pool=name, name='dense', source={'uri': peer.uri, 'pool': peer_pool[0], 'volume': 'dense',
                                                     'format': 'raw'})
    assert refused['failed'] is True and refused['msg'].startswith("pool: volume 'dense' needs 96"), refused
    assert sorted(os.listdir(mount)) == before
    _image, source_path = source_volume(peer, peer_pool, workdir, 'sparse', 'raw', size=256 * MiB)
    fits = clone(pool=name, name='sparse', verify=True,
                 source={'uri': peer.uri, 'pool': peer_pool[0], 'volume': 'sparse', 'format': 'raw'})
    assert fits['changed'] is True, fits
    assert sha256(os.path.join(mount, 'sparse')) == sha256(source_path)


@pytest.mark.parametrize('volume_format', ['raw', 'qcow2'])
def test_a_larger_capacity_grows_a_streamed_volume(peer, peer_pool, dest_pool, workdir, volume_format):
    """... and a smaller one is refused."""
    image, _source_path = source_volume(peer, peer_pool, workdir, 'src', volume_format)
    spec = {'uri': peer.socket_uri, 'pool': peer_pool[0], 'volume': 'src'}
    smaller = clone(pool=dest_pool[0], name='copy', capacity=32 * MiB, source=spec)
    assert smaller['failed'] is True and smaller['msg'].startswith('capacity: '), smaller
    args = dict(pool=dest_pool[0], name='copy', capacity=96 * MiB, verify=True, source=spec)
    made = clone(**args)
    assert made['changed'] is True and actions(made) == ['create', 'stream', 'verify', 'resize', 'record'], made
    path = os.path.join(dest_pool[1], 'copy')
    info = subprocess.run(['qemu-img', 'info', '--output=json', '-f', volume_format, path], capture_output=True,
                          text=True, check=True).stdout
    assert '"virtual-size": %d' % (96 * MiB) in info, info
    assert read_file_metadata(path)['virtual_size'] == 96 * MiB
    with open(image, 'ab') as handle:  # the image grown with zeroes reads as the grown volume
        handle.truncate(96 * MiB)
    assert same_image(image, path, volume_format)
    assert clone(**args)['changed'] is False


def test_a_declared_checksum_is_checked_as_the_bytes_arrive_and_recorded(peer, peer_pool, dest_pool, workdir):
    """source.checksum of a stream: the sha256 of every byte (holes as zeroes) of what left the other host."""
    _image, source_path = source_volume(peer, peer_pool, workdir, 'src')
    spec = {'uri': peer.uri, 'pool': peer_pool[0], 'volume': 'src', 'format': 'raw'}
    wrong = clone(pool=dest_pool[0], name='copy', source=dict(spec, checksum='sha256:' + '0' * 64))
    assert wrong['failed'] is True and wrong['msg'].startswith('source.checksum: '), wrong
    assert os.listdir(dest_pool[1]) == [], 'a stream with other bytes left its volume'
    malformed = clone(pool=dest_pool[0], name='copy', source=dict(spec, checksum='md5:1234'))
    assert malformed['failed'] is True and malformed['msg'].startswith('source.checksum: '), malformed
    local_source = {'path': source_path, 'format': 'raw', 'checksum': 'sha256:' + sha256(source_path)}
    local = clone(pool=dest_pool[0], name='copy', source=local_source)
    assert local['failed'] is True and local['msg'].startswith('source.checksum: '), local

    digest = 'sha256:' + sha256(source_path)
    made = clone(pool=dest_pool[0], name='copy', source=dict(spec, checksum=digest))
    assert made['changed'] is True and not made.get('failed'), made
    path = os.path.join(dest_pool[1], 'copy')
    assert sha256(path) == sha256(source_path) and read_file_metadata(path)['checksum'] == digest
    assert clone(pool=dest_pool[0], name='copy', source=dict(spec, checksum=digest))['changed'] is False
