# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The image_precache playbook over three inventory hosts: two peer libvirtds (peer_libvirtd.py, each in a
mount namespace of its own) and the system libvirtd. Ansible runs each host's modules on that host: a peer's
python interpreter is a wrapper that enters the peer's mount namespace (found by its pidfile), so the module
sees that host's files and its libvirt socket as qemu:///system. The first host downloads the image from an
HTTP server on 127.0.0.1 that counts requests; the others receive it from it over qemu+tcp (libvirt streams).
The name is the one Nova's own get_cache_fname gives (Nova from PyPI, in .venv-nova)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import REPO, RUN_ID, libvirt, run_module, sha256
from peer_libvirtd import HOSTS, running_peer
from test_roles import recaps, run_playbook
import test_volume_url_import
from test_volume_url_import import digest_of, raw_image

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.file import read_file_metadata

server = test_volume_url_import.server  # the HTTP server fixture, counting requests
MiB = 1024 * 1024
IMAGE_ID = '5f2c9a1e-7b3d-4e6f-9a80-1c2d3e4f5a6b'
ADDRESSES = {'first': '127.0.0.11', 'third': '127.0.0.12'}  # of this file's own
TREE = os.path.join(HOSTS, 'precache-%s' % RUN_ID)  # each host's own files at the same paths
INSTANCES = os.path.join(TREE, 'instances')
POOL = 'precache-%s-cache' % RUN_ID


def nova_cache_fname(image_id):
    """Nova's own name for the image in _base."""
    return subprocess.run([os.path.join(REPO, '.venv-nova', 'bin', 'python'), '-W', 'ignore', '-c',
                           'import sys; from nova.virt.libvirt import imagecache; '
                           'print(imagecache.get_cache_fname(sys.argv[1]))', image_id],
                          capture_output=True, text=True, check=True, timeout=120).stdout.strip().splitlines()[-1]


def host_tree(reach):
    """A compute host's instances path, _base and nova.conf; ``reach(path)``: where this process writes it."""
    os.makedirs(reach(os.path.join(INSTANCES, '_base')), mode=0o755)
    with open(reach(os.path.join(TREE, 'nova.conf')), 'w') as handle:
        handle.write('[DEFAULT]\ninstances_path = %s\n' % INSTANCES)


@pytest.fixture(scope='module')
def fleet():
    """{host: {uri, reach, inventory line}} of three hosts, each with an active cache pool on its _base."""
    with running_peer('/var/tmp/precache-peer1-%s' % RUN_ID, ADDRESSES['first']) as first, \
            running_peer('/var/tmp/precache-peer3-%s' % RUN_ID, ADDRESSES['third']) as third:
        hosts = {'first': {'peer': first}, 'second': {'peer': None}, 'third': {'peer': third}}
        wrappers = '/var/tmp/precache-wrappers-%s' % RUN_ID
        os.makedirs(wrappers, exist_ok=True)
        pools = []
        for name, host in hosts.items():
            peer = host['peer']
            host['reach'] = peer.private if peer else (lambda path: path)
            host_tree(host['reach'])
            interpreter = sys.executable
            if peer:  # the module runs in the peer's mount namespace (its pidfile, never a process name)
                interpreter = os.path.join(wrappers, name)
                with open(interpreter, 'w') as handle:
                    handle.write('#!/bin/sh\nexec nsenter -t "$(cat %s)" -m -- %s "$@"\n'
                                 % (peer.pids['libvirtd'], sys.executable))
                os.chmod(interpreter, 0o755)
            conn = libvirt.open(peer.uri if peer else 'qemu:///system')
            pools.append(conn.storagePoolCreateXML(
                "<pool type='dir'><name>%s</name><target><path>%s/_base</path></target></pool>" % (POOL, INSTANCES),
                0))
            host['conn'] = conn
            host['line'] = ' '.join(['precache-%s' % name, 'ansible_connection=local',
                                     'ansible_python_interpreter=%s' % interpreter] +
                                    (['storagepools_precache_uri=%s' % peer.uri] if peer else []))
        try:
            yield hosts
        finally:
            for pool in pools:
                pool.destroy()
            for host in hosts.values():
                host['conn'].close()
            shutil.rmtree(TREE, ignore_errors=True)
            shutil.rmtree(wrappers, ignore_errors=True)


@pytest.fixture
def inventory(fleet, workdir):
    path = os.path.join(workdir, 'precache-inventory.ini')
    with open(path, 'w') as handle:
        handle.write('[compute]\n')
        for name in ('first', 'second', 'third'):  # the first host of the play downloads
            handle.write(fleet[name]['line'] + '\n')
        handle.write('[compute:vars]\nstoragepools_instances_path=%s\nstoragepools_cache_pool=%s\n'
                     'storagepools_nova_conf=%s/nova.conf\nstoragepools_state_dir=%s/state\n'
                     % (INSTANCES, POOL, TREE, TREE))
    return path


def image_requests(server, name):
    return [request for request in server.requests if request[0] == '/' + name]


def test_one_download_the_rest_by_stream_where_nova_looks(installed, server, fleet, inventory, workdir):
    body = raw_image(16 * MiB)
    name = 'precache-%s.raw' % RUN_ID
    server.images[name] = body
    extra = os.path.join(workdir, 'image.yml')
    with open(extra, 'w') as handle:
        handle.write('storagepools_precache_image:\n  id: %s\n  url: %s\n  checksum: "%s"\n  format: raw\n'
                     % (IMAGE_ID, server.url(name), digest_of(body)))
    fname = nova_cache_fname(IMAGE_ID)
    where = {host: fleet[host]['reach'](os.path.join(INSTANCES, '_base', fname)) for host in fleet}

    code, out = run_playbook(installed, 'image_precache', inventory, '-e', '@' + extra, '--check')
    assert code == 0, out
    assert image_requests(server, name) == [], 'check mode downloaded'
    assert not any(os.path.exists(path) for path in where.values()), 'check mode wrote a base'
    assert 'would stream %s from precache-first' % fname in ' '.join(out.split()), out

    code, out = run_playbook(installed, 'image_precache', inventory, '-e', '@' + extra)
    assert code == 0, out
    assert len(image_requests(server, name)) == 1, server.requests
    assert {host: recap['changed'] for host, recap in recaps(out).items()} == {
        'precache-first': '1', 'precache-second': '1', 'precache-third': '1'}, out
    for host, path in where.items():
        assert sha256(path) == digest_of(body).split(':')[1], host
        record = read_file_metadata(path)
        assert record['format'] == 'raw' and record['virtual_size'] == len(body), (host, record)
        assert record['source']['image_id'] == IMAGE_ID, (host, record)
        found = os.stat(path)  # root's, and Nova (its own user) can read it
        assert (found.st_uid, found.st_mode & 0o7777) == (0, 0o644), (host, oct(found.st_mode))
        assert record['checksum'] == digest_of(body), (host, record)  # checked as it arrived, on every host
        if host == 'first':
            assert record['source']['url'] == server.url(name), record
        else:  # streamed from the first host, through its libvirtd
            assert record['method'] == 'stream', record
            assert record['source']['uri'] == fleet['first']['peer'].uri and record['source']['volume'] == fname
        # the cache pool's libvirt sees it (the module ran against that host's own daemon)
        pool = fleet[host]['conn'].storagePoolLookupByName(POOL)
        pool.refresh(0)
        assert pool.storageVolLookupByName(fname).info()[1] == len(body), host

    # the same image by URL on every host afterwards: a cache hit by digest there too, streamed hosts included
    for options in ([], ['--check'], ['-e', 'storagepools_precache_from=url']):
        code, out = run_playbook(installed, 'image_precache', inventory, '-e', '@' + extra, *options)
        assert code == 0, out
        assert all(recap['changed'] == '0' for recap in recaps(out).values()), out
    assert len(image_requests(server, name)) == 1, server.requests


def test_a_wrong_digest_is_refused_naming_the_variable_and_nothing_lands(installed, server, fleet, inventory, workdir):
    body = raw_image(4 * MiB)
    name = 'precache-wrong-%s.raw' % RUN_ID
    server.images[name] = body
    image_id = 'precache-wrong-%s' % RUN_ID
    image = {'id': image_id, 'url': server.url(name), 'checksum': digest_of(b'other'), 'format': 'raw'}
    code, out = run_playbook(installed, 'image_precache', inventory, '-e',
                             json.dumps({'storagepools_precache_image': image}))
    assert code != 0, out
    assert 'storagepools_precache_image.checksum: ' in out, out
    fname = nova_cache_fname(image_id)
    for host in fleet.values():
        assert not os.path.exists(host['reach'](os.path.join(INSTANCES, '_base', fname)))


def test_an_unknown_variable_and_a_host_that_is_not_one_are_refused_before_anything(installed, server, inventory):
    image = {'id': 'precache-typo-%s' % RUN_ID, 'url': server.url('none'), 'checksum': digest_of(b'x'),
             'format': 'raw'}
    before = len(server.requests)
    for extra, message in (({'storagepools_precache_fro': 'precache-first'},
                            'unknown variable(s) storagepools_precache_fro'),
                           ({'storagepools_precache_from': 'precache-nosuch'},
                            'storagepools_precache_from must be url or an inventory host (precache-nosuch')):
        code, out = run_playbook(installed, 'image_precache', inventory, '-e',
                                 json.dumps(dict(extra, storagepools_precache_image=image)))
        assert code != 0 and message in ' '.join(out.split()), out
    assert len(server.requests) == before


def test_file_mode_is_octal_without_write_bits_for_others(dir_pool, workdir):
    image = os.path.join(workdir, 'image.raw')
    with open(image, 'wb') as handle:
        handle.write(raw_image(2 * MiB))
    for mode in ('0666', '0620', '644x', '4755'):
        result = run_module('virt_volume_clone', dict(pool=dir_pool[0], name='moded', file_mode=mode,
                                                      source={'path': image, 'format': 'raw'}))
        assert result['failed'] is True and result['msg'].startswith('file_mode: '), (mode, result)
    assert os.listdir(dir_pool[1]) == []
