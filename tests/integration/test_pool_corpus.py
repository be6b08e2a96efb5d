# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The pool corpus (tests/unit/.../_xml/data/pools: every modelled type as libvirt's documentation and test
data write it) defined through virt_pool_ensure on the real libvirtd: a rerun, and a rerun with libvirt's own
dump of the pool, change nothing, also with on_drift=fail; a real change then fails loudly.

Each document keeps its own spelling (quotes, attribute and element order, '755', doubled and trailing
slashes, a logical target libvirt rewrites); only what must be unique on a shared daemon is replaced: the
name, the uuid (dropped), paths (under the test's own directory) and sources (devices, VG, iqn, Ceph pool).
Nothing is built or started: most sources cannot exist here (state=inactive, build=never).
"""

from __future__ import annotations

import os
import re
import uuid

import pytest
from conftest import REPO, libvirt, run_module

CORPUS = os.path.join(REPO, 'tests', 'unit', 'plugins', 'module_utils', '_xml', 'data', 'pools')
INACTIVE = libvirt.VIR_STORAGE_XML_INACTIVE

# Per corpus document: (text as written, its replacement); {work} is the test's directory, {id} a unique word.
UNIQUE_PARTS = {
    'dir': [('/var/lib/libvirt/images//corpus-dir/', '{work}//dir/')],
    'fs': [('/dev/VolGroup00/VirtImages', '/dev/spl-{id}/VirtImages'), ('/var/lib/virt/images', '{work}/fs')],
    'netfs': [('<dir path="/var/lib/virt/images"/>', '<dir path="/export/spl-{id}"/>'),
              ('<path>/var/lib/virt/images</path>', '<path>{work}/netfs</path>')],
    'netfs-cifs': [('samba_share', 'spl_{id}'), ('/mnt/cifs', '{work}/cifs')],
    'logical': [('/dev/sda2', '/dev/spl-{id}-a'), ('/dev/sda3', '/dev/spl-{id}-b'), ('HostVG', 'spl-{id}')],
    'disk': [('/dev/sdb', '/dev/spl-{id}-disk'), ('<path>/dev</path>', '<path>{work}/disk</path>')],
    'iscsi': [('iscsi-pool', 'spl-{id}'), ('/dev/disk/by-path', '{work}/iscsi')],
    'rbd': [('<name>rbd</name>', '<name>spl-{id}</name>'),
            ('2ec115d7-3a88-3ceb-bc12-0ac909a6fd87', '{secret}')],
    'zfs': [('tank', 'spl-{id}')],
}

# Per document: a real change to its dump (old, new), which on_drift=fail must refuse.
REAL_CHANGE = {
    'dir': ('/dir</path>', '/elsewhere</path>'),
    'fs': ('/VirtImages', '/OtherImages'),
    'netfs': ("<host name='nfs.example.com'/>", "<host name='nfs2.example.com'/>"),
    'netfs-cifs': ("<dir path='spl_", "<dir path='other_"),
    'logical': ("-b'/>", "-c'/>"),
    'disk': ('-disk', '-disk2'),
    'iscsi': ("port='3260'", "port='3261'"),
    'rbd': ("port='6790'", "port='6791'"),
    'zfs': ('<name>spl-', '<name>other-'),
}


def corpus_names():
    return sorted(name[:-4] for name in os.listdir(CORPUS) if name.endswith('.xml') and not name.endswith('.out.xml'))


def test_every_corpus_document_is_exercised():
    assert set(corpus_names()) == set(UNIQUE_PARTS) == set(REAL_CHANGE)


def supported_types(conn):
    """Pool types this libvirtd's storage drivers can define (from its pool capabilities)."""
    import xml.etree.ElementTree as ET
    capabilities = ET.fromstring(conn.getStoragePoolCapabilities(0))
    return {pool.get('type') for pool in capabilities.findall('pool') if pool.get('supported') == 'yes'}


@pytest.fixture
def ceph_secret(conn):
    """A libvirt ceph secret of this test's own, which the rbd document names (its value is never read)."""
    made = []

    def make():
        secret_uuid = str(uuid.uuid4())
        made.append(conn.secretDefineXML(
            "<secret ephemeral='no' private='yes'><uuid>%s</uuid><usage type='ceph'>"
            "<name>client.corpus spl-%s</name></usage></secret>" % (secret_uuid, secret_uuid), 0))
        return secret_uuid

    yield make
    for secret in made:
        secret.undefine()


def adapted(name, pool_name, workdir, secret):
    with open(os.path.join(CORPUS, name + '.xml')) as handle:
        text = handle.read()
    text, count = re.subn('<name>corpus-[a-z]+</name>', '<name>%s</name>' % pool_name, text)
    assert count == 1, 'the corpus document %s names no corpus-... pool' % name
    unique = uuid.uuid4().hex[:8]
    for old, new in UNIQUE_PARTS[name]:
        assert old in text, (name, old)
        text = text.replace(old, new.format(work=workdir, id=unique, secret=secret))
    assert '<uuid>' not in text
    return text


def ensure(pool_name, xml, on_drift='fail'):
    return run_module('virt_pool_ensure', dict(name=pool_name, xml=xml, state='inactive', autostart=False,
                                               build='never', on_drift=on_drift))


@pytest.mark.parametrize('name', corpus_names())
def test_a_corpus_document_converges_and_its_dump_is_no_drift(conn, pools, workdir, ceph_secret, name):
    pool_type = name.split('-')[0]
    if pool_type not in supported_types(conn):
        pytest.skip("this libvirtd has no storage driver for %s pools (pool capabilities say "
                    "supported='no'), so it cannot define one" % pool_type)
    pool_name = pools.new()
    document = adapted(name, pool_name, workdir, ceph_secret() if pool_type == 'rbd' else None)

    defined = ensure(pool_name, document)
    assert defined.get('failed') is not True, defined
    assert defined['changed'] is True and [step['action'] for step in defined['actions']] == ['define']
    pool = pools.lookup(pool_name)
    assert pool is not None and not pool.isActive()

    rerun = ensure(pool_name, document)
    assert rerun.get('failed') is not True, rerun
    assert (rerun['changed'], rerun['drift'], rerun['actions']) == (False, False, [])

    dump = pool.XMLDesc(INACTIVE)
    from_dump = ensure(pool_name, dump)
    assert from_dump.get('failed') is not True, from_dump
    assert (from_dump['changed'], from_dump['drift'], from_dump['actions']) == (False, False, [])

    old, new = REAL_CHANGE[name]
    assert old in dump, (name, old, dump)
    refused = ensure(pool_name, dump.replace(old, new))
    assert refused['failed'] is True and refused['drift'] is True, refused
    assert refused['msg'].startswith("on_drift: pool '%s' differs from the task" % pool_name), refused['msg']
    changed_lines = [line for line in refused['drift_diff'].splitlines()
                     if line[:1] in '+-' and not line.startswith(('+++', '---'))]
    assert changed_lines and refused['drift_diff'] in refused['msg']
    assert pool.XMLDesc(INACTIVE) == dump, 'on_drift=fail changed the pool'

    gone = run_module('virt_pool_ensure', dict(name=pool_name, state='absent'))
    assert gone['changed'] is True and pools.lookup(pool_name) is None
