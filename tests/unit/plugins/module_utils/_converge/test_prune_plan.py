# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The orphan planner: decisions from observed volumes, records, libvirt's own domain XML and instance links."""

from __future__ import annotations

import os

import pytest

from ansible_collections.storagepools.libvirt.plugins.module_utils._converge import prune_plan
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import OptionError

DATA = os.path.join(os.path.dirname(__file__), 'data')
INSTANCE = '6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b'  # the uuid of data/nova-instance.xml
GONE = '11111111-2222-4333-8444-555555555555'
OTHER = '99999999-2222-4333-8444-555555555555'
POOL_DIR = '/var/lib/nova/disks'
NOW = 1_800_000_000.0


def domain_xml():
    with open(os.path.join(DATA, 'nova-instance.xml')) as handle:
        return handle.read()


def adopted_xml(instance_uuid=INSTANCE, disk_path=None):
    """libvirt's XML of the Nova instance, adopted: its root disk on the pool (optionally another instance's)."""
    text = domain_xml().replace(INSTANCE, instance_uuid)
    return text.replace("/var/lib/nova/instances/%s/disk'" % instance_uuid,
                        "%s'" % (disk_path or '%s/%s_disk' % (POOL_DIR, instance_uuid)))


def view(names, records=None, quarantined=(), unusable=None):
    locations = dict((name, os.path.join(POOL_DIR, name)) for name in names)
    return prune_plan.PoolView('disks', locations, dict((name, 1024) for name in names), records or {},
                               quarantined, unusable)


def references(*texts):
    found = prune_plan.DomainReferences()
    for text in texts:
        found.add(text, 'this host')
    return found


def decide(pool, refs=None, links=None, first_seen=None, **policy):
    options = dict(orphan_min_age=0, quarantine=600)
    options.update(policy)
    return prune_plan.plan_orphans(pool, refs or references(), links or prune_plan.InstanceLinks(),
                                   first_seen or {}, prune_plan.Policy(NOW, **options))


def actions(decisions):
    return dict((decision.volume, decision.action) for decision in decisions)


def test_a_deleted_instances_volumes_are_orphans_and_a_defined_instances_are_kept():
    pool = view(['%s_disk' % INSTANCE, '%s_disk.local' % INSTANCE, '%s_disk' % GONE, 'notes.txt'])
    decisions, seen = decide(pool, references(adopted_xml()))
    assert actions(decisions) == {'%s_disk' % INSTANCE: 'kept', '%s_disk.local' % INSTANCE: 'kept',
                                  '%s_disk' % GONE: 'quarantined', 'notes.txt': 'kept'}
    why = dict((decision.volume, decision.reason) for decision in decisions)
    assert why['%s_disk' % INSTANCE] == "its instance has domain 'instance-0000002a' (%s) on this host" % INSTANCE
    assert why['notes.txt'] == 'not named {instance_uuid}_{disk}'
    assert seen == {'%s_disk' % GONE: NOW}
    quarantined = [decision for decision in decisions if decision.action == 'quarantined'][0]
    assert quarantined.expires_at == NOW + 600 and quarantined.bytes == 1024
    assert quarantined.result() == {'pool': 'disks', 'volume': '%s_disk' % GONE, 'bytes': 1024,
                                    'action': 'quarantined', 'reason': quarantined.reason}


def test_a_volume_another_domain_attaches_is_never_an_orphan():
    other = adopted_xml(OTHER).replace('</devices>', "<disk type='file' device='disk'><source file='%s/%s_disk'/>"
                                       "<target dev='vdc'/></disk></devices>" % (POOL_DIR, GONE))
    decisions, _seen = decide(view(['%s_disk' % GONE]), references(other))
    assert actions(decisions) == {'%s_disk' % GONE: 'kept'}
    assert decisions[0].reason.startswith("used by domain 'instance-0000002a' (%s) on this host (disk vdc)" % OTHER)


@pytest.mark.parametrize('disk', [
    "<disk type='volume' device='disk'><source pool='disks' volume='{gone}_disk'/><target dev='vdc'/></disk>",
    "<disk type='file' device='disk'><source file='/x/overlay'/><backingStore type='file'><format type='qcow2'/>"
    "<source file='{dir}/{gone}_disk'/><backingStore/></backingStore><target dev='vdc'/></disk>",
    "<disk type='block' device='disk'><source dev='{dir}/{gone}_disk'/><target dev='vdc'/></disk>",
])
def test_every_way_a_disk_names_a_volume_keeps_it(disk):
    other = adopted_xml(OTHER).replace('</devices>', disk.format(gone=GONE, dir=POOL_DIR) + '</devices>')
    decisions, _seen = decide(view(['%s_disk' % GONE]), references(other))
    assert actions(decisions) == {'%s_disk' % GONE: 'kept'}


def test_an_rbd_network_disk_keeps_its_image():
    pool = prune_plan.PoolView('vms', {'%s_disk' % GONE: 'rbd/%s_disk' % GONE}, {}, {},
                               rbd_names={'%s_disk' % GONE: 'rbd/%s_disk' % GONE})
    other = adopted_xml(OTHER).replace('</devices>', "<disk type='network' device='disk'><source protocol='rbd' "
                                       "name='rbd/%s_disk'/><target dev='vdc'/></disk></devices>" % GONE)
    assert actions(decide(pool, references(other))[0]) == {'%s_disk' % GONE: 'kept'}
    assert actions(decide(pool)[0]) == {'%s_disk' % GONE: 'quarantined'}


def test_an_instance_directory_link_or_disk_info_entry_keeps_it_and_a_record_backing_too():
    name = '%s_disk' % GONE
    links = prune_plan.InstanceLinks({os.path.join(POOL_DIR, name): '/i/%s_resize/disk' % GONE})
    decisions, seen = decide(view([name]), links=links)
    assert decisions[0].reason == 'linked from /i/%s_resize/disk' % GONE and seen == {}
    overlay = '%s_disk' % OTHER
    records = {overlay: {'backing': {'pool': 'disks', 'volume': name}}}
    decisions, _seen = decide(view([name, overlay], records=records))
    assert actions(decisions) == {name: 'kept', overlay: 'quarantined'}
    assert decisions[0].reason == 'the backing of volume %s (its record)' % overlay


def test_the_age_clock_starts_when_first_seen_and_not_before():
    name = '%s_disk' % GONE
    decisions, seen = decide(view([name]), orphan_min_age=3600)
    assert actions(decisions) == {name: 'kept'} and seen == {name: NOW}
    assert 'first seen orphaned now' in decisions[0].reason and '3600 s to go' in decisions[0].reason
    decisions, seen = decide(view([name]), first_seen={name: NOW - 3000}, orphan_min_age=3600)
    assert actions(decisions) == {name: 'kept'} and seen == {name: NOW - 3000} and '600 s to go' in decisions[0].reason
    decisions, _seen = decide(view([name]), first_seen={name: NOW - 3600}, orphan_min_age=3600)
    assert actions(decisions) == {name: 'quarantined'}
    # no longer an orphan: its clock is forgotten
    _decisions, seen = decide(view([name]), references(adopted_xml(GONE)), first_seen={name: NOW - 99})
    assert seen == {}


def test_quarantine_zero_purges_and_orphans_false_keeps():
    name = '%s_disk' % GONE
    assert actions(decide(view([name]), quarantine=0)[0]) == {name: 'purged'}
    decisions, _seen = decide(view([name]), orphans=False)
    assert actions(decisions) == {name: 'kept'} and decisions[0].reason.endswith('orphans is false')


def test_quarantined_volumes_are_kept_until_expiry_then_purged_or_restored():
    waiting = prune_plan.QuarantinedVolume('%s_disk' % GONE, NOW + 1, 10)
    expired = prune_plan.QuarantinedVolume('%s_disk.local' % GONE, NOW, 20)
    pool = view([], quarantined=[waiting, expired])
    decisions, _seen = decide(pool)
    assert actions(decisions) == {waiting.name: 'kept', expired.name: 'purged'}
    assert all(decision.quarantined for decision in decisions)
    assert actions(decide(pool, restore=[expired.name])[0]) == {waiting.name: 'kept', expired.name: 'restored'}
    with pytest.raises(OptionError, match='restore: pool disks has no volume nope'):
        decide(pool, restore=['nope'])
    # a name back in the pool (a rerun of the restore) is not reclaimed in that run
    decisions, _seen = decide(view([waiting.name]), restore=[waiting.name])
    assert actions(decisions) == {waiting.name: 'kept'} and decisions[0].reason == 'named in restore'


def test_a_volume_never_touched_says_why():
    name = '%s_disk' % GONE
    decisions, _seen = decide(view([name], unusable={name: 'a symlink in the pool (never followed)'}))
    assert actions(decisions) == {name: 'kept'} and decisions[0].reason == 'a symlink in the pool (never followed)'


def test_removal_is_refused_while_a_domain_or_a_record_uses_the_volume():
    name = '%s_disk' % INSTANCE
    pool = view([name, '%s_disk.local' % INSTANCE])
    assert prune_plan.refuse_removal(pool, name, references(adopted_xml())).startswith("used by domain")
    assert prune_plan.refuse_removal(pool, '%s_disk.local' % INSTANCE, references()) is None
    records = {'cache/overlay': {'backing': {'path': os.path.join(POOL_DIR, name)}}}
    assert prune_plan.refuse_removal(pool, name, references(), records) == \
        'the backing of volume cache/overlay (its record)'


MOUNTINFO = """22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
30 22 0:40 / /var/lib/nova/instances rw,relatime shared:9 - nfs4 filer:/nova rw,vers=4.2
31 22 0:41 / /var/lib/nova/instances-local rw - xfs /dev/vdb rw
32 22 0:42 / /mnt/my\\040share rw - cifs //filer/share rw
"""


@pytest.mark.parametrize('path, found', [
    ('/var/lib/nova/instances', 'nfs4'), ('/var/lib/nova/instances/_base', 'nfs4'),
    ('/var/lib/nova/instances-local', None), ('/var/lib/nova', None), ('/mnt/my share/x', 'cifs'),
])
def test_a_shared_filesystem_is_told_by_its_type(path, found):
    assert prune_plan.shared_filesystem(MOUNTINFO, path) == found


def test_the_diff_says_where_each_changing_volume_goes():
    decisions = [prune_plan.Reclaim('p', 'a', 'r', 1, 'quarantined', 160.0, decided_at=100.0),
                 prune_plan.Reclaim('p', 'b', 'r', 1, 'purged', 100.0, True),
                 prune_plan.Reclaim('p', 'c', 'r', 1, 'restored', None, True),
                 prune_plan.Reclaim('p', 'd', 'r', 1, 'kept')]
    diff = prune_plan.diff_text(decisions)
    assert diff['before'] == 'p/a: in the pool\np/b: quarantined\np/c: quarantined\n'
    assert diff['after'] == 'p/a: quarantined for 60 s\np/b: purged\np/c: in the pool\n'
