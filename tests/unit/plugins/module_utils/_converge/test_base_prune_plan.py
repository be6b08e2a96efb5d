# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The base prune planner: which bases of the cache pool are quarantined, and why the others stay."""

from __future__ import annotations

import os

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import records
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge import base_prune_plan as prune
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.base_prune_plan import (
    KEEP,
    QUARANTINE,
    CacheBase,
    CacheUse,
    plan_base_prune,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._nova import image_cache as rules
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.domain import DomainDocument

DATA = os.path.join(os.path.dirname(__file__), 'data')
HOUR, DAY = 3600, 86400
BASE_DIR = '/var/lib/nova/instances/_base'


def fp(image_id):
    return rules.cache_fname(image_id)


def imported(name):
    """The record nova_image_cache writes on a base it imported into an rbd or logical pool."""
    return records.make_record('raw', 1 << 30, {'path': os.path.join(BASE_DIR, name), 'nova_base': name},
                               method='rbd-import')


def by_volume(decisions):
    return dict((decision.volume, decision) for decision in decisions)


def domain_image_ids():
    with open(os.path.join(DATA, 'nova-instance.xml')) as handle:
        return rules.domain_image_ids(DomainDocument(handle.read()))


def test_rbd_bases_go_only_without_clones_and_when_ours():
    used_by_instance = fp(next(iter(domain_image_ids())))  # the image libvirt's domain metadata names
    names = {'cloned': fp('cloned'), 'free': fp('free'), 'young': fp('young'), 'foreign': fp('foreign'),
             'instance': used_by_instance}
    bases = [CacheBase(names['cloned'], 10, 5 * DAY, record=imported(names['cloned'])),
             CacheBase(names['free'], 20, 5 * DAY, record=imported(names['free'])),
             CacheBase(names['young'], 30, HOUR, record=imported(names['young'])),
             CacheBase(names['foreign'], 40, 5 * DAY, record=None),
             CacheBase(names['instance'], 50, 5 * DAY, record=imported(names['instance'])),
             CacheBase('6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b_disk', 60, 5 * DAY)]
    use = CacheUse(nova=rules.NovaRules(domain_image_ids()),
                   clone_children={names['cloned']: ['6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b_disk']})
    decisions = by_volume(plan_base_prune('rbd-cache', 'rbd', bases, use))
    assert set(decisions) == set(names.values())  # an instance's volume is no base: no decision
    assert decisions[names['cloned']].action == KEEP
    assert 'storagepools-base is the parent of the rbd clones 6f1d2c3b' in decisions[names['cloned']].reason
    assert decisions[names['free']].to_dict() == {
        'pool': 'rbd-cache', 'volume': names['free'], 'bytes': 20, 'action': QUARANTINE,
        'reason': "unused for 432000s, past Nova's 86400s for original bases"}
    assert decisions[names['free']].nova_lock is False  # an rbd image is no file Nova's manager removes
    assert 'younger' in decisions[names['young']].reason and decisions[names['young']].action == KEEP
    assert 'not ours' in decisions[names['foreign']].reason and decisions[names['foreign']].action == KEEP
    assert "image id hashes to it" in decisions[names['instance']].reason


def test_lv_bases_go_only_when_no_snapshot_uses_them():
    snapped, free, resized = fp('snapped'), fp('free'), fp('resized') + '_5'
    bases = [CacheBase(name, 100, 2 * HOUR, record=imported(name)) for name in (snapped, free, resized)]
    use = CacheUse(nova=rules.NovaRules([]), snapshot_origins={'u1_disk': snapped, 'u2_disk': None})
    decisions = by_volume(plan_base_prune('lvm-cache', 'logical', bases, use))
    assert decisions[snapped].action == KEEP and 'origin of the LVM snapshots u1_disk' in decisions[snapped].reason
    assert decisions[free].action == KEEP  # an original wants a day
    # a resized LV base is a resized base by its name, whatever Nova's _base scan makes of 42 characters
    assert decisions[resized].action == QUARANTINE and "3600s for resized" in decisions[resized].reason


def test_a_recorded_backing_keeps_a_base_by_volume_or_by_path():
    by_name, by_path, own, free = fp('a'), fp('b'), fp('c'), fp('d')
    bases = [CacheBase(name, 1, 5 * DAY, path=os.path.join(BASE_DIR, name)) for name in (by_name, by_path, own, free)]
    recorded = {
        ('nova-disks-pool', 'u1_disk'): {'backing': {'pool': 'nova-base-images-pool', 'volume': by_name}},
        ('nova-disks-pool', 'u2_disk'): {'backing': {'path': os.path.join(BASE_DIR, by_path), 'format': 'raw'}},
        ('nova-base-images-pool', own): {'backing': {'pool': 'nova-base-images-pool', 'volume': own}},
        ('nova-disks-pool', 'u3_disk'): {'backing': None},
        ('nova-disks-pool', 'u4_disk'): None,
    }
    use = CacheUse(nova=rules.NovaRules([]), records=recorded)
    decisions = by_volume(plan_base_prune('nova-base-images-pool', 'dir', bases, use))
    assert decisions[by_name].reason == 'recorded as the backing of nova-disks-pool/u1_disk'
    assert decisions[by_path].reason == 'recorded as the backing of nova-disks-pool/u2_disk'
    assert decisions[own].action == QUARANTINE  # a record naming itself uses nothing
    assert decisions[free].action == QUARANTINE and decisions[free].nova_lock is True


def test_file_bases_follow_nova_rules():
    overlay, disk, swap, one_digit, young = fp('o'), fp('disk'), 'swap_512', fp('r') + '_5', fp('y') + '_20'
    bases = [CacheBase(overlay, 1, 5 * DAY, path=os.path.join(BASE_DIR, overlay)),
             CacheBase(disk, 1, 5 * DAY), CacheBase(swap, 1, 5 * DAY), CacheBase(one_digit, 1, 5 * DAY),
             CacheBase(young, 1, 30 * 60), CacheBase('ephemeral_1_0706d66', 1, 5 * DAY),
             CacheBase(fp('x') + '.part', 1, 5 * DAY)]
    use = CacheUse(nova=rules.NovaRules([], disk_backings=[disk]), overlay_backings=[os.path.join(BASE_DIR, overlay)])
    decisions = by_volume(plan_base_prune('nova-base-images-pool', 'dir', bases, use))
    assert decisions[overlay].reason == 'the backing file of an overlay on this host'
    assert "disk backs onto it" in decisions[disk].reason
    assert 'block device mappings' in decisions[swap].reason and decisions[swap].action == KEEP
    assert "does not scan" in decisions[one_digit].reason and decisions[one_digit].action == KEEP
    assert "younger than Nova's 3600s for resized" in decisions[young].reason
    assert fp('x') + '.part' not in decisions
    assert [decision.volume for decision in plan_base_prune('p', 'dir', bases, use)] == sorted(decisions)


def test_nova_ages_are_the_callers():
    original, resized = fp('o'), fp('r') + '_20'
    bases = [CacheBase(original, 1, 2 * HOUR), CacheBase(resized, 1, 20 * 60)]
    short = CacheUse(nova=rules.NovaRules([], original_age=HOUR, resized_age=10 * 60))
    assert all(decision.action == QUARANTINE for decision in plan_base_prune('p', 'dir', bases, short))
    default = CacheUse(nova=rules.NovaRules([]))
    assert all(decision.action == KEEP for decision in plan_base_prune('p', 'dir', bases, default))


def test_max_used_percent_takes_the_least_recently_used_unused_bases_first():
    aged, oldest, older, newest, used = fp('aged'), fp('oldest'), fp('older'), fp('newest'), fp('used')
    bases = [CacheBase(aged, 10, 5 * DAY), CacheBase(oldest, 20, 20 * HOUR), CacheBase(older, 20, 10 * HOUR),
             CacheBase(newest, 20, HOUR), CacheBase(used, 30, 30 * DAY)]
    use = CacheUse(nova=rules.NovaRules([], disk_backings=[used]))
    # 100 bytes, 95 used: the aged base goes by age (85), then the oldest unused (65), then the older (45)
    decisions = by_volume(plan_base_prune('p', 'dir', bases, use, max_used_percent=50, capacity=100, used=95))
    assert [name for name in (aged, oldest, older, newest, used) if decisions[name].action == QUARANTINE] == [
        aged, oldest, older]
    assert decisions[oldest].reason.startswith('the cache pool is 85.0% full, above max_used_percent 50')
    assert decisions[older].nova_lock and 'is 65.0% full' in decisions[older].reason
    assert decisions[used].action == KEEP and decisions[newest].action == KEEP
    below = by_volume(plan_base_prune('p', 'dir', bases, use, max_used_percent=90, capacity=100, used=95))
    assert [name for name in below if below[name].action == QUARANTINE] == [aged]  # 85% is below 90%


def test_max_used_percent_never_overrides_remove_unused_base_images_false_for_files():
    bases = [CacheBase(fp('a'), 50, 5 * DAY), CacheBase(fp('b'), 50, HOUR)]
    use = CacheUse(nova=rules.NovaRules([], remove_unused_base_images=False))
    decisions = plan_base_prune('p', 'dir', bases, use, max_used_percent=10, capacity=100, used=100)
    assert [decision.action for decision in decisions] == [KEEP, KEEP]
    assert 'remove_unused_base_images=False' in decisions[0].reason
    rbd = [CacheBase(fp('a'), 50, HOUR, record=imported(fp('a')))]
    assert plan_base_prune('r', 'rbd', rbd, use, max_used_percent=10, capacity=100, used=100)[0].action == QUARANTINE


def test_the_decision_is_a_small_value():
    decision = prune.BaseDecision('p', 'v', 'why', 1, KEEP)
    assert decision.to_dict() == {'pool': 'p', 'volume': 'v', 'reason': 'why', 'bytes': 1, 'action': 'keep'}
    assert decision.nova_lock is False
