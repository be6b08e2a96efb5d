# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Base pruning between observation and apply (prune.py): LV bases from a real ``lvs`` report, the decisions
the apply side carries out, Nova's lock held with the rule checked again on real files.

data/lvm-cache-*.txt are what LVM 2.03.16's ``lvs`` reported on a volume group on a loop device whose
metadata (data/lvm-cache-vgcfg.txt) was written with ``vgcfgrestore`` (this host has no device-mapper to
make LVs): a base imported by nova_image_cache, an LVM snapshot of it (its clone), and an unused base.
"""

from __future__ import annotations

import os
import time

import pytest

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import logical as lvm
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge import base_prune_plan, prune, prune_plan
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.base_prune_plan import (
    CacheBase,
    CacheUse,
    plan_base_prune,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import OptionError, StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.journal import Journal
from ansible_collections.storagepools.libvirt.plugins.module_utils._nova import image_cache as rules

DATA = os.path.join(os.path.dirname(__file__), 'data')
BASE = '0e76292794888d4f1fa75fb3aff4ca27c58f56a6'
UNUSED = '3c9d53a1e8aa0c1ea4b9c8d7e6f5a4b3c2d1e0f9'
SNAPSHOT = '6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b_disk'
DAY = 86400


def report(fields):
    with open(os.path.join(DATA, 'lvm-cache-lvs-%s.txt' % fields.replace(',', '-'))) as handle:
        return handle.read()


@pytest.fixture
def lvs(monkeypatch):
    """logical.py's lvm calls answered with the recorded reports (the argv must be what made them)."""
    def answer(argv, _option):
        assert argv[:2] == ['lvs', '--noheadings'], argv
        return report(argv[argv.index('-o') + 1])
    monkeypatch.setattr(lvm, '_lvm', answer)


def lv_bases(age):
    sizes, records = lvm.lv_sizes('bases-vg'), lvm.read_records('bases-vg')
    return [CacheBase(name, sizes[name], age, '/dev/bases-vg/%s' % name, records[name]) for name in sorted(sizes)]


def test_lvs_report_origins_tags_and_sizes(lvs):
    assert lvm.snapshot_origins('bases-vg') == {SNAPSHOT: BASE}
    assert lvm.parse_origins(report('lv_name,origin')) == {SNAPSHOT: BASE}
    sizes = lvm.lv_sizes('bases-vg')
    assert sizes == {BASE: 8 << 20, UNUSED: 8 << 20, SNAPSHOT: 4 << 20}
    records = lvm.read_records('bases-vg')
    assert records[BASE]['source']['nova_base'] == BASE and records[SNAPSHOT]['backing']['volume'] == BASE


def test_an_lv_base_goes_only_when_no_snapshot_uses_it(lvs):
    bases = lv_bases(2 * DAY)
    origins = lvm.snapshot_origins('bases-vg')
    records = dict((('lvm-cache', base.name), base.record) for base in bases)
    use = CacheUse(rules.NovaRules([]), records, snapshot_origins=origins)
    decisions = dict((d.volume, d) for d in plan_base_prune('lvm-cache', 'logical', bases, use))
    assert set(decisions) == {BASE, UNUSED}  # the instance's snapshot LV is no base
    assert decisions[UNUSED].action == base_prune_plan.QUARANTINE and not decisions[UNUSED].nova_lock
    assert decisions[BASE].reason == 'recorded as the backing of lvm-cache/%s' % SNAPSHOT
    # without any record naming it, LVM's own origin link keeps it
    bare = CacheUse(rules.NovaRules([]), {}, snapshot_origins=origins)
    decisions = dict((d.volume, d) for d in plan_base_prune('lvm-cache', 'logical', bases, bare))
    assert decisions[BASE].action == base_prune_plan.KEEP
    assert decisions[BASE].reason == 'the origin of the LVM snapshots %s' % SNAPSHOT
    assert base_prune_plan.used_now('lvm-cache', 'logical', bases, bare) == {BASE}
    # younger than Nova's original age: kept, and so in a Nova-ruled name only
    young = dict((d.volume, d.action) for d in plan_base_prune('lvm-cache', 'logical', lv_bases(60), bare))
    assert young == {BASE: base_prune_plan.KEEP, UNUSED: base_prune_plan.KEEP}


def view(name, locations, quarantined=(), marked=()):
    return prune_plan.PoolView(name, dict((n, '/p/%s/%s' % (name, n)) for n in locations),
                               dict((n, 1) for n in locations), dict((n, None) for n in locations),
                               [prune_plan.QuarantinedVolume(n, time.time() + 60, 1) for n in quarantined],
                               marked=marked)


def test_restore_names_go_to_the_pool_holding_them():
    disks, cache = view('disks', ['u_disk'], ['v_disk']), view('cache', [BASE], [UNUSED])
    assert prune.restore_by_pool(['v_disk', UNUSED, BASE], disks, cache) == {'disks': ['v_disk'],
                                                                             'cache': [UNUSED, BASE]}
    assert prune.restore_by_pool(['v_disk'], disks, disks) == {'disks': ['v_disk']}  # the cache is the disks pool
    with pytest.raises(OptionError) as refused:
        prune.restore_by_pool(['nowhere'], disks, cache)
    assert 'restore: pool disks or cache has no volume nowhere' in str(refused.value.msg) and UNUSED in \
        str(refused.value.msg)


def params(**extra):
    return dict(dict(quarantine=600, lock_timeout=600, instances_path='/nonexistent'), **extra)


def test_a_base_decision_becomes_the_reclaim_the_apply_side_runs():
    now = time.time()
    cache = view('cache', [BASE, UNUSED], marked=[BASE])
    old = base_prune_plan.BaseDecision('cache', UNUSED, 'unused', 7, base_prune_plan.QUARANTINE, nova_lock=True)
    decision = prune.reclaim_of(old, cache, now, params(), None, 1.0, [], '/target')
    assert (decision.action, decision.expires_at, decision.bytes) == (prune_plan.QUARANTINED, now + 600, 7)
    assert decision.guard is not None  # Nova's lock
    assert prune.reclaim_of(old, cache, now, params(quarantine=0), None, 1.0, [], '/t').action == prune_plan.PURGED
    restored = prune.reclaim_of(old, cache, now, params(), None, 1.0, [UNUSED], '/target')
    assert (restored.action, restored.reason) == (prune_plan.KEPT, 'named in restore')
    kept = base_prune_plan.BaseDecision('cache', BASE, 'in use', 7, base_prune_plan.KEEP)
    unmarked = prune.reclaim_of(kept, cache, now, params(), None, None, [], None)
    assert unmarked.action == prune_plan.RESTORED and unmarked.quarantined  # a killed run's mark is dropped


class StepsBackend:
    """The quarantine steps of a backend, recorded (the apply side's view of any backend)."""

    pool_name = 'cache'

    def __init__(self):
        self.done = []

    def quarantine_steps(self, name, expires_at):
        return [(step, '%s %s' % (step, name), lambda step=step: self.done.append((step, name)))
                for step in ('mark', 'quarantine')]


def guarded(error):
    class Guard:
        def __enter__(self):
            if error:
                raise error

        def __exit__(self, *exc_info):
            return False
    return Guard


def test_a_guard_keeps_or_fails_a_decision_before_any_step(tmp_path):
    backend, journal = StepsBackend(), Journal(str(tmp_path))
    decisions = [prune_plan.Reclaim('cache', name, 'unused', 1, prune_plan.QUARANTINED, time.time() + 60)
                 for name in ('a', 'b', 'c')]
    decisions[0].guard = guarded(prune_plan.StillUsed('touched since'))
    decisions[1].guard = guarded(StoragePoolsError("cache_pool: Nova's lock /x is a symlink"))
    decisions[2].guard = guarded(None)
    check = prune.apply_decisions(backend, decisions, None)
    assert [entry['volume'] for entry in check] == ['a', 'a', 'b', 'b', 'c', 'c'] and backend.done == []
    actions = prune.apply_decisions(backend, decisions, journal)
    assert [(d.action, d.reason) for d in decisions] == [
        (prune_plan.KEPT, 'touched since'),
        (prune_plan.FAILED, "taking the lock of b failed: cache_pool: Nova's lock /x is a symlink"),
        (prune_plan.QUARANTINED, 'unused')]
    assert backend.done == [('mark', 'c'), ('quarantine', 'c')] and [a['volume'] for a in actions] == ['c', 'c']
    ahead = journal.read('prune-cache')['history'][-1]['steps'][0]['steps']  # every step, journalled first
    assert [(step['step'], step['volume']) for step in ahead] == [
        ('mark', 'a'), ('quarantine', 'a'), ('mark', 'b'), ('quarantine', 'b'), ('mark', 'c'), ('quarantine', 'c')]


@pytest.fixture
def nova_host(tmp_path):
    instances = tmp_path / 'instances'
    base_dir = instances / '_base'
    base_dir.mkdir(parents=True)
    path = base_dir / UNUSED
    path.write_bytes(b'base')
    then = time.time() - 2 * DAY
    os.utime(path, (then, then))
    return str(instances), str(base_dir), os.stat(path).st_mtime


def test_novas_lock_is_held_and_the_rule_checked_again(nova_host):
    instances, base_dir, mtime = nova_host
    nova = rules.NovaRules([])
    with prune.nova_lock_held(instances, base_dir, UNUSED, nova, mtime, False, 5):
        assert os.path.isfile(os.path.join(instances, 'locks', 'nova-' + UNUSED))
    os.utime(os.path.join(base_dir, UNUSED))  # Nova used it since the plan (it touches what it uses)
    with pytest.raises(prune_plan.StillUsed) as kept:
        with prune.nova_lock_held(instances, base_dir, UNUSED, nova, mtime, False, 5):
            pytest.fail('entered')
    assert 'mtime changed' in kept.value.reason
    now = os.stat(os.path.join(base_dir, UNUSED)).st_mtime
    with pytest.raises(prune_plan.StillUsed) as young:  # unchanged since the plan, but Nova keeps it now
        with prune.nova_lock_held(instances, base_dir, UNUSED, nova, now, False, 5):
            pytest.fail('entered')
    assert 'younger than' in young.value.reason
    with prune.nova_lock_held(instances, base_dir, UNUSED, nova, now, True, 5):  # max_used_percent's: unused will do
        pass
    used = rules.NovaRules(['an-image'])
    with pytest.raises(prune_plan.StillUsed):
        with prune.nova_lock_held(instances, base_dir, rules.cache_fname('an-image'), used, None, True, 5):
            pytest.fail('entered')


def test_a_base_swapped_for_a_symlink_is_left_alone(nova_host, tmp_path):
    instances, base_dir, mtime = nova_host
    os.unlink(os.path.join(base_dir, UNUSED))
    target = tmp_path / 'elsewhere'
    target.write_bytes(b'root only')
    os.symlink(str(target), os.path.join(base_dir, UNUSED))
    with pytest.raises(prune_plan.StillUsed) as kept:
        with prune.nova_lock_held(instances, base_dir, UNUSED, rules.NovaRules([]), mtime, False, 5):
            pytest.fail('entered')
    assert 'is a symlink' in kept.value.reason and target.read_bytes() == b'root only'
