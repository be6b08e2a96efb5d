# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""virt_volume_clone with source {url, checksum, format}: an image downloaded from an HTTP server on
127.0.0.1 that this test runs (Range, a stall, 404, bodies larger than max_size, basic auth), into a real dir
pool of the system libvirtd."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import signal
import subprocess
import threading
import time

import pytest
from canary import Canary
from conftest import run_module, start_module
from test_virt_volume_clone import qcow2_with_backing, qcow2_with_data_file, vmdk_descriptor, vmdk_with_parent

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.file import read_file_metadata

MiB = 1024 * 1024
STALL_SECONDS = 8
USER, PASSWORD = 'urlimport', 'urlimport-Secret-9f3c'


class ImageServer(http.server.ThreadingHTTPServer):
    """Serves ``images`` ({name: bytes}) at /<name> with Range; /stall/<name> sends a first MiB, then
    nothing; /unsized/<name> sends the body with no Content-Length; /norange/<name> ignores Range (200, the
    whole body); /auth/<name> wants basic auth.
    ``requests``: (path, Range header or None, Authorization or None) of every request."""

    daemon_threads = True

    def __init__(self):
        super().__init__(('127.0.0.1', 0), ImageHandler)
        self.images = {}
        self.requests = []

    def url(self, path):
        return 'http://127.0.0.1:%d/%s' % (self.server_address[1], path)


class ImageHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *_args):
        pass

    def do_GET(self):  # noqa: N802 (http.server's name)
        server = self.server
        server.requests.append((self.path, self.headers.get('Range'), self.headers.get('Authorization')))
        kind, _slash, name = self.path.lstrip('/').rpartition('/')
        body = server.images.get(name)
        if body is None:
            self.send_error(404)
            return
        if kind == 'auth':
            wanted = 'Basic ' + base64.b64encode(('%s:%s' % (USER, PASSWORD)).encode()).decode()
            if self.headers.get('Authorization') != wanted:
                self.send_response(401)
                self.send_header('WWW-Authenticate', 'Basic realm="images"')
                self.send_header('Content-Length', '0')
                self.end_headers()
                return
        start = 0
        ranged = self.headers.get('Range')
        if ranged and kind not in ('unsized', 'norange'):
            start = int(ranged.split('=')[1].rstrip('-'))
            if start >= len(body):
                self.send_response(416)
                self.send_header('Content-Range', 'bytes */%d' % len(body))
                self.send_header('Content-Length', '0')
                self.end_headers()
                return
            self.send_response(206)
            self.send_header('Content-Range', 'bytes %d-%d/%d' % (start, len(body) - 1, len(body)))
        else:
            self.send_response(200)
        if kind != 'unsized':
            self.send_header('Content-Length', str(len(body) - start))
        self.end_headers()
        if kind == 'stall':
            self.wfile.write(body[:MiB])
            self.wfile.flush()
            time.sleep(STALL_SECONDS)
            return
        self.wfile.write(body[start:])


@pytest.fixture(scope='module')
def server():
    httpd = ImageServer()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def pool(dir_pool):
    return dir_pool


def digest_of(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


def sha256_file(path):
    with open(path, 'rb') as handle:
        return 'sha256:' + hashlib.sha256(handle.read()).hexdigest()


def raw_image(size=8 * MiB):
    return b'\x00' * MiB + os.urandom(size - 2 * MiB) + b'\x00' * MiB


def qcow2_image(workdir, name='image.qcow2'):
    path = os.path.join(workdir, name)
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', path, '16M'], check=True)
    subprocess.run(['qemu-io', '-f', 'qcow2', '-c', 'write -P 0x5a 1M 2M', path], check=True, capture_output=True)
    with open(path, 'rb') as handle:
        return handle.read()


def url_import(pool, workdir, source, check=False, env=None, name='image', diff=False, **args):
    args = dict(pool=pool, name=name, source=source, state_dir=os.path.join(workdir, 'state'),
                staging_dir=os.path.join(workdir, 'staging'), **args)
    return run_module('virt_volume_clone', args, check=check, diff=diff, env=env)


def staged(workdir):
    path = os.path.join(workdir, 'staging')
    return sorted(os.listdir(path)) if os.path.isdir(path) else None


def test_an_image_by_url_is_imported_recorded_and_a_rerun_is_a_noop(server, pool, workdir):
    pool_name, target = pool
    body = raw_image()
    server.images['good.raw'] = body
    source = {'url': server.url('good.raw'), 'checksum': digest_of(body), 'format': 'raw'}
    planned = url_import(pool_name, workdir, source, check=True, diff=True)
    assert planned['changed'] is True and not planned.get('failed'), planned
    assert digest_of(body) in planned['diff'][-1]['after'] and planned['diff'][-1]['before'] == ''
    assert [step['action'] for step in planned['actions']] == ['download', 'import']
    assert server.requests == [] and staged(workdir) is None, 'check mode downloaded or staged something'
    assert not os.path.exists(os.path.join(target, 'image'))

    result = url_import(pool_name, workdir, source)
    assert result['changed'] is True and not result.get('failed'), result
    assert [step['action'] for step in result['actions']][:2] == ['download', 'import']
    path = os.path.join(target, 'image')
    assert sha256_file(path) == digest_of(body)
    record = read_file_metadata(path)
    assert record['source'] == {'url': source['url'], 'checksum': digest_of(body), 'format': 'raw'}
    assert record['checksum'] == digest_of(body) and record['format'] == 'raw'
    assert record['virtual_size'] == len(body) and result['volume']['capacity'] == len(body)
    assert staged(workdir) == [] and os.stat(os.path.join(workdir, 'staging')).st_mode & 0o777 == 0o700

    requests = len(server.requests)
    again = url_import(pool_name, workdir, source)
    assert again['changed'] is False and not again.get('failed'), again
    # the same digest from another url (a mirror) is the same image: decided by digest, nothing downloaded
    mirror = url_import(pool_name, workdir, dict(source, url=server.url('mirror/good.raw')))
    assert mirror['changed'] is False, mirror
    assert len(server.requests) == requests


def test_a_qcow2_by_url_is_inspected_and_converted(server, pool, workdir):
    pool_name, target = pool
    body = qcow2_image(workdir)
    server.images['good.qcow2'] = body
    source = {'url': server.url('good.qcow2'), 'checksum': digest_of(body), 'format': 'qcow2'}
    result = url_import(pool_name, workdir, source, format='raw', name='converted')
    assert result['changed'] is True and not result.get('failed'), result
    path = os.path.join(target, 'converted')
    assert os.path.getsize(path) == 16 * MiB
    with open(path, 'rb') as handle:
        handle.seek(MiB)
        assert handle.read(2 * MiB) == b'\x5a' * 2 * MiB
    assert read_file_metadata(path)['source']['format'] == 'qcow2'
    assert staged(workdir) == []


def test_a_volume_of_that_name_with_another_digest_is_not_overwritten(server, pool, workdir):
    pool_name, target = pool
    first, second = raw_image(4 * MiB), raw_image(4 * MiB)
    server.images['first.raw'], server.images['second.raw'] = first, second
    result = url_import(pool_name, workdir, {'url': server.url('first.raw'), 'checksum': digest_of(first),
                                             'format': 'raw'})
    assert result['changed'] is True, result
    requests = len(server.requests)
    other = url_import(pool_name, workdir, {'url': server.url('second.raw'), 'checksum': digest_of(second),
                                            'format': 'raw'})
    assert other['failed'] is True and other['msg'].startswith('name: ') and 'not overwritten' in other['msg'], other
    assert len(server.requests) == requests, 'a refused name still downloaded'
    assert sha256_file(os.path.join(target, 'image')) == digest_of(first)
    as_qcow2 = url_import(pool_name, workdir, {'url': server.url('first.raw'), 'checksum': digest_of(first),
                                               'format': 'raw'}, format='qcow2')
    assert as_qcow2['failed'] is True and as_qcow2['msg'].startswith('format: '), as_qcow2
    assert len(server.requests) == requests


REASONS = {'wrong-digest': 'the task declares sha256:', '404': 'HTTP 404', 'stall': 'sent nothing for 2 seconds',
           'larger-than-max_size': 'more than max_size (2097152 bytes); refused before reading',
           'larger-than-max_size-without-length': 'sent more than max_size (2097152 bytes)',
           'larger-than-capacity': 'sent more than max_size (3145728 bytes)',
           'qcow2-with-backing': 'carries a backing file', 'qcow2-data-file': 'external data file',
           'raw-with-qcow2-header': 'declared raw but its bytes are a qcow2', 'vmdk-extent': 'VMDK descriptor',
           'vmdk-parent': 'naming a parent'}
HOSTILE = {  # kind: (how to make it from the canary's path, declared format, destination format, option named)
    'qcow2-with-backing': (qcow2_with_backing, 'qcow2', 'raw', 'source.url: '),
    'qcow2-data-file': (qcow2_with_data_file, 'qcow2', 'raw', 'source.url: '),
    'raw-with-qcow2-header': (qcow2_with_backing, 'raw', 'raw', 'source.format: '),
    'vmdk-extent': (vmdk_descriptor, 'vmdk', 'raw', 'source.url: '),
    'vmdk-parent': (vmdk_with_parent, 'vmdk', 'raw', 'source.url: '),
}


@pytest.mark.parametrize('kind', ['wrong-digest', '404', 'stall', 'larger-than-max_size',
                                  'larger-than-max_size-without-length', 'larger-than-capacity'] + sorted(HOSTILE))
def test_refusals_name_the_option_and_leave_nothing(server, pool, workdir, kind):
    pool_name, target = pool
    canary = Canary(os.path.join(workdir, 'canary'))
    body, declared, options = raw_image(4 * MiB), 'raw', {}
    name = '%s-%s' % (kind, os.getpid())
    digest, path = digest_of(body), name
    if kind == 'wrong-digest':
        option, digest = 'source.checksum: ', digest_of(b'something else')
    elif kind == '404':
        option, path = 'source.url: ', 'missing-' + name
    elif kind == 'stall':
        option, path, options = 'source.timeout: ', 'stall/' + name, {'timeout': 2}
    elif kind == 'larger-than-max_size':
        option, options = 'source.max_size: ', {'max_size': 2 * MiB}
    elif kind == 'larger-than-max_size-without-length':
        option, path, options = 'source.max_size: ', 'unsized/' + name, {'max_size': 2 * MiB}
    elif kind == 'larger-than-capacity':  # max_size defaults to the capacity asked
        option, path = 'source.max_size: ', 'unsized/' + name
        options = {}
    else:
        make, declared, _dest, option = HOSTILE[kind]
        image = make(os.path.join(workdir, 'hostile-' + kind), canary.path)
        with open(image, 'rb') as handle:
            body = handle.read()
        digest = digest_of(body)
        canary.before = canary.state()  # what qemu-img did while making the image is not the module's
    server.images[name] = body
    source = dict({'url': server.url(path), 'checksum': digest, 'format': declared}, **options)
    extra = {'capacity': 3 * MiB} if kind == 'larger-than-capacity' else {}
    started = time.monotonic()
    result = url_import(pool_name, workdir, source, name='refused', format='raw', **extra)
    assert result['failed'] is True, result
    assert result['msg'].startswith(option), result['msg']
    assert REASONS[kind] in result['msg'], result['msg']
    if kind == 'stall':
        assert time.monotonic() - started < STALL_SECONDS, 'the stall was waited out, not timed out'
    assert not os.path.exists(os.path.join(target, 'refused'))
    assert staged(workdir) == [], 'the staging directory keeps %s' % staged(workdir)
    canary.assert_untouched()


def kill_mid_download(source, pool_name, workdir, chunks=3):
    args = dict(pool=pool_name, name='image', source=source, state_dir=os.path.join(workdir, 'state'),
                staging_dir=os.path.join(workdir, 'staging'))
    proc = start_module('virt_volume_clone', args, env={'STORAGEPOOLS_KILL_AT': 'download-chunk:%d' % chunks})
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.returncode
    partial = staged(workdir)
    assert len(partial) == 1 and partial[0].endswith('.partial'), partial
    return os.path.join(workdir, 'staging', partial[0])


@pytest.mark.parametrize('path', ['norange', 'tampered'])
def test_a_resumed_download_is_verified_whole(server, pool, workdir, path):
    """A server that ignores Range sends it all again; a partial file changed after the kill never passes."""
    pool_name, target = pool
    body = raw_image(6 * MiB)
    server.images['whole.raw'] = body
    source = {'url': server.url('%s/whole.raw' % path), 'checksum': digest_of(body), 'format': 'raw'}
    partial = kill_mid_download(source, pool_name, workdir)
    if path == 'tampered':
        with open(partial, 'r+b') as handle:
            handle.write(b'\xff' * 512)
        refused = url_import(pool_name, workdir, source)
        assert refused['failed'] is True and refused['msg'].startswith('source.checksum: '), refused
        assert staged(workdir) == [] and not os.path.exists(os.path.join(target, 'image'))
    result = url_import(pool_name, workdir, source)
    assert result['changed'] is True and not result.get('failed'), result
    assert sha256_file(os.path.join(target, 'image')) == digest_of(body) and staged(workdir) == []


def test_a_kill_mid_download_then_a_rerun_resumes_with_range_and_completes(server, pool, workdir):
    pool_name, target = pool
    body = raw_image(8 * MiB)
    server.images['resume.raw'] = body
    source = {'url': server.url('resume.raw'), 'checksum': digest_of(body), 'format': 'raw'}
    args = dict(pool=pool_name, name='image', source=source, state_dir=os.path.join(workdir, 'state'),
                staging_dir=os.path.join(workdir, 'staging'))
    proc = start_module('virt_volume_clone', args, env={'STORAGEPOOLS_KILL_AT': 'download-chunk:3'})
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.returncode
    partial = staged(workdir)
    assert len(partial) == 1 and partial[0].endswith('.partial'), partial
    assert os.path.getsize(os.path.join(workdir, 'staging', partial[0])) == 3 * MiB
    assert not os.path.exists(os.path.join(target, 'image'))

    before = len(server.requests)
    result = url_import(pool_name, workdir, source)
    assert result['changed'] is True and not result.get('failed'), result
    assert [request[1] for request in server.requests[before:]] == ['bytes=%d-' % (3 * MiB)]
    assert sha256_file(os.path.join(target, 'image')) == digest_of(body)
    assert staged(workdir) == []


def test_a_staged_file_that_is_not_ours_is_refused(server, pool, workdir):
    pool_name, _target = pool
    body = raw_image(2 * MiB)
    server.images['planted.raw'] = body
    digest = digest_of(body)
    staging = os.path.join(workdir, 'staging')
    os.makedirs(staging, mode=0o700)
    canary = Canary(os.path.join(workdir, 'canary'))
    os.symlink(canary.path, os.path.join(staging, 'storagepools-%s.partial' % digest.split(':')[1]))
    result = url_import(pool_name, workdir, {'url': server.url('planted.raw'), 'checksum': digest, 'format': 'raw'})
    assert result['failed'] is True and result['msg'].startswith('staging_dir: ') and 'symlink' in result['msg'], result
    canary.assert_untouched()


@pytest.mark.parametrize('kind', ['symlink', 'not-roots'])
def test_a_staging_dir_that_is_a_symlink_or_not_roots_is_refused(server, pool, workdir, kind):
    pool_name, target = pool
    body = raw_image(2 * MiB)
    server.images['staging.raw'] = body
    real = os.path.join(workdir, 'elsewhere')
    os.makedirs(real, mode=0o700)
    staging = os.path.join(workdir, 'staging')
    if kind == 'symlink':
        os.symlink(real, staging)
    else:
        os.makedirs(staging, mode=0o700)
        os.chown(staging, 65534, 65534)
    result = url_import(pool_name, workdir, {'url': server.url('staging.raw'), 'checksum': digest_of(body),
                                             'format': 'raw'})
    assert result['failed'] is True and result['msg'].startswith('staging_dir: '), result
    assert not os.path.exists(os.path.join(target, 'image')) and os.listdir(real) == []


def test_credentials_are_sent_and_never_shown(server, pool, workdir):
    pool_name, target = pool
    body = raw_image(2 * MiB)
    server.images['private.raw'] = body
    source = {'url': server.url('auth/private.raw'), 'checksum': digest_of(body), 'format': 'raw',
              'url_username': USER, 'url_password': PASSWORD}
    result = url_import(pool_name, workdir, source)
    assert result['changed'] is True and not result.get('failed'), result
    assert PASSWORD not in repr(dict(result)) + result.stderr
    assert PASSWORD not in repr(read_file_metadata(os.path.join(target, 'image')))
    # credentials in the url itself are never recorded nor shown in messages
    embedded = server.url('missing/none').replace('http://', 'http://%s:%s@' % (USER, PASSWORD))
    failed = url_import(pool_name, workdir, dict(source, url=embedded, url_username=None, url_password=None),
                        name='other')
    assert failed['failed'] is True and failed['msg'].startswith('source.url: '), failed
    assert PASSWORD not in failed['msg']


def test_refusals_before_anything_is_fetched(server, pool, workdir):
    pool_name, _target = pool
    cases = [({'url': server.url('x'), 'format': 'raw'}, 'source.checksum: '),
             ({'url': server.url('x'), 'checksum': 'md5:abc', 'format': 'raw'}, 'source.checksum: '),
             ({'url': server.url('x'), 'checksum': digest_of(b'x')}, 'source.format: '),
             ({'url': 'file:///etc/shadow', 'checksum': digest_of(b'x'), 'format': 'raw'}, 'source.url: '),
             ({'url': server.url('x'), 'checksum': digest_of(b'x'), 'format': 'raw', 'path': '/etc/shadow'},
              'source.url: ')]
    before = len(server.requests)
    for source, option in cases:
        result = url_import(pool_name, workdir, source)
        assert result['failed'] is True and result['msg'].startswith(option), (source, result)
    cow = url_import(pool_name, workdir, {'url': server.url('x'), 'checksum': digest_of(b'x'), 'format': 'raw'},
                     mode='cow')
    assert cow['failed'] is True and cow['msg'].startswith('mode: '), cow
    assert len(server.requests) == before and staged(workdir) is None


def test_an_image_by_url_into_an_rbd_pool_gets_its_protected_snapshot(server, ceph, pools, ceph_user, workdir):
    user, _key, keyring, _usage, uuid = ceph_user
    name = pools.new()
    made = run_module('virt_pool_ensure', dict(name=name, type='rbd', connect_timeout=3,
                                               source={'name': ceph.pool, 'host': [ceph.mon],
                                                       'auth': {'username': user, 'secret_uuid': uuid}}))
    assert not made.get('failed'), made
    body = qcow2_image(workdir, 'rbd.qcow2')
    server.images['rbd.qcow2'] = body
    image = 'urlimport-%s' % name
    source = {'url': server.url('rbd.qcow2'), 'checksum': digest_of(body), 'format': 'qcow2'}
    args = dict(pool=name, name=image, source=source, ceph_keyring=keyring, state_dir=os.path.join(workdir, 'state'),
                staging_dir=os.path.join(workdir, 'staging'))
    try:
        result = run_module('virt_volume_clone', args)
        assert result['changed'] is True and not result.get('failed'), result
        assert result['method'] == 'rbd-import' and 'snapshot' in [step['action'] for step in result['actions']]
        exported = os.path.join(workdir, 'exported')
        ceph.admin('export', '%s/%s' % (ceph.pool, image), exported, tool='rbd')
        with open(exported, 'rb') as handle:
            data = handle.read()
        assert len(data) == 16 * MiB and data[MiB:3 * MiB] == b'\x5a' * 2 * MiB
        record = json.loads(ceph.admin('image-meta', 'get', '%s/%s' % (ceph.pool, image),
                                       'user.storagepools.libvirt', tool='rbd'))
        assert record['checksum'] == digest_of(body) and record['source']['url'] == source['url']
        snap = json.loads(ceph.admin('info', '%s/%s@storagepools-base' % (ceph.pool, image), '--format=json',
                                     tool='rbd'))
        assert snap['protected'] == 'true'
        assert staged(workdir) == []
        requests = len(server.requests)
        again = run_module('virt_volume_clone', args)
        assert again['changed'] is False and len(server.requests) == requests, again
    finally:
        admin = ['rbd', '--conf', ceph.conf, '--name', 'client.admin', '--keyring', ceph.env['CEPH_ADMIN_KEYRING']]
        subprocess.run(admin + ['snap', 'unprotect', '%s/%s@storagepools-base' % (ceph.pool, image)],
                       capture_output=True, check=False)
        subprocess.run(admin + ['snap', 'purge', '%s/%s' % (ceph.pool, image)], capture_output=True, check=False)
        subprocess.run(admin + ['rm', '%s/%s' % (ceph.pool, image)], capture_output=True, check=False)


def test_a_failed_import_removes_its_volume_and_a_kill_after_the_download_stages_nothing(server, pool, workdir):
    pool_name, target = pool
    body = qcow2_image(workdir, 'fail.qcow2')
    server.images['fail.qcow2'] = body
    source = {'url': server.url('fail.qcow2'), 'checksum': digest_of(body), 'format': 'qcow2'}
    failed = url_import(pool_name, workdir, source, env={'STORAGEPOOLS_FAIL_AT': 'record'}, format='raw')
    assert failed['failed'] is True and 'record' in failed['msg'], failed
    assert not os.path.exists(os.path.join(target, 'image')) and staged(workdir) == []

    args = dict(pool=pool_name, name='image', source=source, format='raw', state_dir=os.path.join(workdir, 'state'),
                staging_dir=os.path.join(workdir, 'staging'))
    proc = start_module('virt_volume_clone', args, env={'STORAGEPOOLS_KILL_AT': 'import'})
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.returncode
    assert staged(workdir) == [], 'the verified download kept a name in the staging directory'
    assert not os.path.exists(os.path.join(target, 'image'))
    done = url_import(pool_name, workdir, source, format='raw')
    assert done['changed'] is True and not done.get('failed'), done


@pytest.mark.parametrize('image_format, write', [('qcow2', 'convert'), ('raw', 'copy')])
def test_a_kill_while_the_volume_is_written_leaves_a_marked_volume_the_rerun_replaces(
        server, pool, workdir, image_format, write):
    pool_name, target = pool
    body = qcow2_image(workdir, 'killed.qcow2') if image_format == 'qcow2' else raw_image()
    server.images['killed'] = body
    source = {'url': server.url('killed'), 'checksum': digest_of(body), 'format': image_format}
    args = dict(pool=pool_name, name='image', source=source, format='raw', state_dir=os.path.join(workdir, 'state'),
                staging_dir=os.path.join(workdir, 'staging'))
    proc = start_module('virt_volume_clone', args, env={'STORAGEPOOLS_KILL_AT': write})
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.returncode
    left = os.path.join(target, 'image')
    assert os.path.exists(left) and read_file_metadata(left).get('partial') is True, 'no marked volume left'

    # another image under that name does not take the marked volume away: it is not that image's
    other = raw_image()
    server.images['other'] = other
    refused = url_import(pool_name, workdir, {'url': server.url('other'), 'checksum': digest_of(other),
                                              'format': 'raw'}, format='raw')
    assert refused['failed'] is True and refused['msg'].startswith('name:'), refused
    assert os.path.exists(left)

    checked = url_import(pool_name, workdir, source, check=True, format='raw')
    assert checked['changed'] is True and checked['actions'][0]['action'] == 'remove', checked
    assert read_file_metadata(left).get('partial') is True, 'check mode removed the marked volume'
    done = url_import(pool_name, workdir, source, format='raw')
    assert done['changed'] is True and not done.get('failed'), done
    assert done['actions'][0]['action'] == 'remove', done['actions']
    record = read_file_metadata(left)
    assert not record.get('partial') and record['checksum'] == digest_of(body), record
    expected = body if image_format == 'raw' else None
    if expected is None:
        converted = os.path.join(workdir, 'expected.raw')
        subprocess.run(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', os.path.join(workdir, 'killed.qcow2'),
                        converted], check=True)
        with open(converted, 'rb') as handle:
            expected = handle.read()
    assert sha256_file(left) == digest_of(expected)
    assert staged(workdir) == []
    again = url_import(pool_name, workdir, source, format='raw')
    assert again['changed'] is False, again
