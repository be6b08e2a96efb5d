# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a destination must have for Nova's block live migration of an adopted instance.

The domain is libvirt's own live XML of a running adopted instance (the one
tests/integration/test_nova_live_migration.py migrated, paths moved under
/var/lib/nova); the destination pools are what _libvirt/migration.py reads.
"""

from __future__ import annotations

import os

import pytest

from ansible_collections.storagepools.libvirt.plugins.module_utils._nova import migration

DATA = os.path.join(os.path.dirname(__file__), 'data')
UUID = 'bd015569-16c2-4552-b225-671299d18e16'
DISKS = '/var/lib/nova/disks'
INSTANCES = '/var/lib/nova/instances'
BASE = os.path.join(INSTANCES, '_base', 'c08120be2c872f8ef7979e65f6dcf3ddcdc5c33f')
MiB = 1024 * 1024
CAPACITIES = {'vda': 32 * MiB, 'vdb': 8 * MiB, 'hda': MiB // 2}
CONFIG = os.path.join(DISKS, '%s_disk.config' % UUID)
DIGEST = 'c' * 64


def adopted_xml():
    with open(os.path.join(DATA, 'adopted-running.xml')) as handle:
        return handle.read()


def ready_volumes():
    return {
        '%s_disk' % UUID: dict(path=os.path.join(DISKS, '%s_disk' % UUID), format='qcow2', capacity=32 * MiB,
                               backing_path=BASE, backing_format='raw'),
        '%s_disk.local' % UUID: dict(path=os.path.join(DISKS, '%s_disk.local' % UUID), format='raw',
                                     capacity=8 * MiB),
        '%s_disk.config' % UUID: dict(path=CONFIG, format='raw', capacity=MiB // 2),
    }


def destination(volumes=None, cache_volumes=None, disks_active=True, digest=DIGEST, drop=()):
    volumes = ready_volumes() if volumes is None else volumes
    cache = {os.path.basename(BASE): dict(path=BASE, format='raw', capacity=16 * MiB)} \
        if cache_volumes is None else cache_volumes
    pools = [dict(name='disks', type='dir', target=DISKS + '/', active=disks_active, volumes=volumes),
             dict(name='cache', type='dir', target=os.path.join(INSTANCES, '_base'), active=True, volumes=cache),
             dict(name='default', type='dir', target='/var/lib/libvirt/images', active=True, volumes={})]
    return migration.pool_facts([pool for pool in pools if pool['name'] not in drop], {CONFIG: digest})


def check(pools, xml=None, capacities=None, source_digest=DIGEST):
    capacities = CAPACITIES if capacities is None else capacities
    return migration.check_instance(xml or adopted_xml(), capacities, {CONFIG: source_digest}, pools, INSTANCES)


def test_what_the_migration_copies_and_where_it_looks():
    disks = migration.MigrationDisks(adopted_xml())
    assert disks.targets == ['vda', 'vdb', 'hda']
    # the config drive is a cdrom: libvirt made it <readonly/>, so Nova's _live_migration_copy_disk_paths skips it
    assert disks.uncopied_paths == [CONFIG]
    assert disks.directories == [DISKS, os.path.join(INSTANCES, '_base')]


def test_a_destination_with_the_same_pools_and_precreated_volumes_is_ready():
    result = check(destination())
    assert result['ready'] is True, result
    assert (result['uuid'], result['name'], result['problems'], result['refused']) == (
        UUID, 'instance-0000002a', [], [])
    vda, vdb, hda = result['disks']
    assert (vda['copied'], vdb['copied'], hda['copied']) == (True, True, False)
    assert vda['needs'] == 'a qcow2 volume of %d bytes over %s (raw)' % (32 * MiB, BASE)
    assert 'holding a copy of the source' in hda['needs']
    # Nova leaves no legacy links on the destination: the report says which paths must come back
    assert result['after_migration'] and all(os.path.join(INSTANCES, UUID, name) in result['after_migration'][0]
                                             for name in ('disk', 'disk.local', 'disk.config'))


def test_no_pool_at_the_target_path():
    result = check(destination(drop=('disks',)))
    assert result['ready'] is False
    assert [problem.split(':')[0] for problem in result['problems']] == ['disk vda', 'disk vdb', 'disk hda']
    assert 'no pool with target %s' % DISKS in result['problems'][0]


def test_an_inactive_pool_is_not_enough():
    result = check(destination(disks_active=False))
    assert result['ready'] is False
    assert all("pool 'disks' at %s/ is not active" % DISKS in problem for problem in result['problems'])


def test_a_missing_volume_is_named_with_what_to_precreate():
    volumes = ready_volumes()
    del volumes['%s_disk.local' % UUID]
    result = check(destination(volumes=volumes))
    assert result['problems'] == ["disk vdb: pool 'disks' on the destination has no volume %s_disk.local" % UUID]
    assert result['disks'][1]['needs'] == 'a raw volume of %d bytes' % (8 * MiB)


@pytest.mark.parametrize('change, words', [
    (dict(format='raw'), 'the destination volume is raw, the domain opens it as qcow2'),
    (dict(capacity=16 * MiB), 'has %d bytes, the source disk %d' % (16 * MiB, 32 * MiB)),
    (dict(backing_path=None, backing_format=None), 'only the top layer is copied'),
    (dict(backing_path='/elsewhere/base'), 'backed by /elsewhere/base (raw)'),
])
def test_the_qcow2_volume_must_match_the_source_disk(change, words):
    volumes = ready_volumes()
    volumes['%s_disk' % UUID] = dict(volumes['%s_disk' % UUID], **change)
    result = check(destination(volumes=volumes))
    assert result['ready'] is False
    assert len(result['problems']) == 1 and words in result['problems'][0], result['problems']


def test_the_backing_file_must_be_on_the_destination():
    result = check(destination(cache_volumes={}))
    assert result['problems'] == ["disk vda backing file: pool 'cache' on the destination has no volume %s"
                                  % os.path.basename(BASE)]
    result = check(destination(cache_volumes={os.path.basename(BASE): dict(path=BASE, format='qcow2')}))
    assert result['problems'] == ['disk vda backing file: the destination has it as qcow2, the chain needs raw']


@pytest.mark.parametrize('destination_digest, source_digest', [('d' * 64, DIGEST), (None, DIGEST), (None, None)])
def test_a_disk_the_migration_does_not_copy_must_hold_the_same_bytes(destination_digest, source_digest):
    result = check(destination(digest=destination_digest), source_digest=source_digest)
    assert result['problems'] == ["disk hda: not copied by the migration (readonly or shareable) and the destination "
                                  "volume does not hold the source's bytes"]


def test_a_volume_disk_is_refused():
    xml = adopted_xml().replace(
        "<disk type='file' device='disk'>\n      <driver name='qemu' type='raw' cache='none'/>\n"
        "      <source file='%s/%s_disk.local' index='2'/>" % (DISKS, UUID),
        "<disk type='volume' device='disk'>\n      <driver name='qemu' type='raw' cache='none'/>\n"
        "      <source pool='disks' volume='%s_disk.local' index='2'/>" % UUID)
    assert "type='volume'" in xml
    result = check(destination(), xml=xml)
    assert result['ready'] is False and result['problems'] == []
    assert len(result['refused']) == 1 and result['refused'][0].startswith(
        "disk vdb is type='volume' (disks/%s_disk.local)" % UUID)
    assert result['disks'][1]['copied'] is False


def test_legacy_paths_are_made_by_nova():
    xml = adopted_xml().replace(DISKS + '/%s_' % UUID, '%s/%s/' % (INSTANCES, UUID))
    result = check(migration.pool_facts([], {}), xml=xml)
    assert [disk['made_by_nova'] for disk in result['disks']] == [True, True, True]
    assert result['after_migration'] == []
    # ... though the config drive, readonly, is made empty there and not copied (Nova's own behaviour)
    assert result['problems'] == ['disk hda: a readonly legacy file; Nova creates it EMPTY on the destination and '
                                  'the migration does not copy it']


def test_network_disks_need_nothing():
    xml = adopted_xml().replace(
        "<disk type='file' device='disk'>\n      <driver name='qemu' type='raw' cache='none'/>\n"
        "      <source file='%s/%s_disk.local' index='2'/>" % (DISKS, UUID),
        "<disk type='network' device='disk'>\n      <driver name='qemu' type='raw' cache='none'/>\n"
        "      <source protocol='rbd' name='vms/%s_disk.local'><host name='127.0.0.1'/></source>" % UUID)
    volumes = ready_volumes()
    del volumes['%s_disk.local' % UUID]
    result = check(destination(volumes=volumes), xml=xml)
    assert result['ready'] is True, result['problems']
    assert result['disks'][1]['path'] is None and result['disks'][1]['copied'] is False
