# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which bases of the image cache pool a prune quarantines, and why the others stay (docs/image-cache.md).

A pure function of what was observed (plan_base_prune): the bases of the cache pool (name, bytes, age), the
records of every volume (their recorded backing), the rbd clone children of each base's protected snapshot,
the origins of LVM snapshots, and Nova's view of the host (_nova/image_cache.NovaRules: the image ids of the
instances, the bases their ``disk`` files back onto). Nothing here opens a file, calls libvirt or Ceph.

A base is in use when any volume's recorded backing names it, any rbd image is a clone of its protected
snapshot, any LV is a snapshot of it, any overlay's header names it, or Nova takes it for in use. An unused
base older than Nova's age for its kind is quarantined; a file base in ``_base`` only when Nova's own manager
would remove it too. With ``max_used_percent``, while the pool is fuller than that the least recently used
of the remaining unused bases go too, whatever their age.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.file import FILE_POOL_TYPES
from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.naming import BASE_SNAPSHOT
from ansible_collections.storagepools.libvirt.plugins.module_utils._nova import image_cache as nova_cache

if TYPE_CHECKING:  # annotations only: nothing more is imported at run time
    from typing import Iterable, Mapping

QUARANTINE, KEEP = 'quarantine', 'keep'


@dataclasses.dataclass(frozen=True)
class BaseDecision:
    """What a prune does with one base: ``action`` QUARANTINE or KEEP, ``reason`` in an operator's words.

    ``nova_lock``: the base is a file of ``_base`` that Nova's manager also manages; the module takes
    NovaBaseLock(instances_path, volume) and re-checks Nova's rule (NovaRules.removes with the file's mtime
    age as it is under the lock) before quarantining it."""

    pool: str
    volume: str
    reason: str
    bytes: int
    action: str
    nova_lock: bool = False
    by_capacity: bool = False  # quarantined for max_used_percent, not for its age

    def to_dict(self) -> dict:
        return {'pool': self.pool, 'volume': self.volume, 'reason': self.reason, 'bytes': self.bytes,
                'action': self.action}


@dataclasses.dataclass(frozen=True)
class CacheBase:
    """One volume of the cache pool as observed: ``name``; ``bytes`` it takes in the pool (its allocation);
    ``age`` in seconds since its last known use (a file of ``_base``: now - mtime, Nova's clock; an rbd image
    or LV: since the record's last use, or since a prune first saw it unused); ``path`` where it is (records
    and overlays may name a base by path); ``record`` its own record or None."""

    name: str
    bytes: int
    age: float
    path: str | None = None
    record: dict | None = None


@dataclasses.dataclass
class CacheUse:
    """What uses bases, as observed on the host.

    ``records``: {(pool, volume): record} of every volume whose record may name a backing (all pools);
    ``overlay_backings``: base paths the qcow2 headers of the host's overlays name; ``clone_children``: {base
    name: [child image names]} of the base's protected snapshot (librbd's children, trash included);
    ``snapshot_origins``: {LV name: origin LV name} of the volume group; ``nova``: NovaRules of the host;
    ``domain_users``: {base path or ``ceph pool/image``: the domain disk whose source (or backing chain, as
    libvirt reports it) names it}."""

    nova: nova_cache.NovaRules
    records: Mapping = dataclasses.field(default_factory=dict)
    overlay_backings: Iterable[str] = ()
    clone_children: Mapping = dataclasses.field(default_factory=dict)
    snapshot_origins: Mapping = dataclasses.field(default_factory=dict)
    domain_users: Mapping = dataclasses.field(default_factory=dict)


def _recorded_users(pool: str, bases: list, records: Mapping) -> dict:
    """{base name: [volumes whose recorded backing names it]} (by pool and volume, or by path)."""
    by_path = dict((base.path, base.name) for base in bases if base.path)
    names = set(base.name for base in bases)
    users = {}
    for (user_pool, user_volume), record in sorted(records.items()):
        backing = (record or {}).get('backing') or {}
        name = None
        if backing.get('pool') == pool and backing.get('volume') in names:
            name = backing['volume']
        elif backing.get('path') in by_path:
            name = by_path[backing['path']]
        if name is not None and (user_pool, user_volume) != (pool, name):
            users.setdefault(name, []).append('%s/%s' % (user_pool, user_volume))
    return users


def _listed(what: str, names: Iterable[str]) -> str:
    names = sorted(names)
    more = ' and %d more' % (len(names) - 3) if len(names) > 3 else ''
    return '%s %s%s' % (what, ', '.join(names[:3]), more)


def in_use_reason(pool_type: str, base: CacheBase, use: CacheUse, recorded: Mapping) -> str | None:
    """Why ``base`` of a pool of ``pool_type`` is in use (words an operator reads), or None; ``recorded``:
    _recorded_users of the pool."""
    if base.name in recorded:
        return _listed('recorded as the backing of', recorded[base.name])
    children = use.clone_children.get(base.name)
    if children:
        return _listed('snapshot %s is the parent of the rbd clones' % BASE_SNAPSHOT, children)
    snapshots = [lv for lv, origin in use.snapshot_origins.items() if origin == base.name]
    if snapshots:
        return _listed('the origin of the LVM snapshots', snapshots)
    if base.path and base.path in use.domain_users:
        return 'used by %s' % use.domain_users[base.path]
    if base.path and base.path in set(use.overlay_backings):
        return 'the backing file of an overlay on this host'
    if pool_type in FILE_POOL_TYPES:
        return use.nova.in_use(base.name)
    if nova_cache.name_kind(base.name) in (nova_cache.ORIGINAL, nova_cache.RESIZED):
        return use.nova.in_use(base.name)  # a copy of a _base file an instance's image id still names
    return None


def used_now(pool: str, pool_type: str, bases: Iterable[CacheBase], use: CacheUse) -> set:
    """The names of the ``bases`` something uses now (in_use_reason): their last-used clock is now."""
    bases = list(bases)
    recorded = _recorded_users(pool, bases, use.records)
    return set(base.name for base in bases if in_use_reason(pool_type, base, use, recorded))


def not_ours_reason(pool_type: str, base: CacheBase) -> str | None:
    """Why ``base`` is not a base a prune may take, or None: a non-file base must carry the record of
    nova_image_cache's import (``source.nova_base`` its own name), so an image or LV someone else made
    under a base's name is never touched."""
    if pool_type in FILE_POOL_TYPES:
        return None
    source = (base.record or {}).get('source') or {}
    if source.get('nova_base') != base.name:
        return 'no record of nova_image_cache importing it: not ours to prune'
    return None


def aged_out_reason(pool_type: str, base: CacheBase, nova: nova_cache.NovaRules) -> str | None:
    """None while the unused ``base`` is younger than Nova's age for its kind (or, for a file of ``_base``,
    Nova's own manager would keep it: the reason is then Nova's), else why it is quarantined."""
    if pool_type in FILE_POOL_TYPES:
        kept = nova.why_kept(base.name, base.age)
        if kept:
            return None
    elif base.age < nova.min_age(base.name):
        return None
    return "unused for %ds, past Nova's %ds for %s bases" % (
        base.age, nova.min_age(base.name), nova_cache.name_kind(base.name))


def young_reason(pool_type: str, base: CacheBase, nova: nova_cache.NovaRules) -> str:
    if pool_type in FILE_POOL_TYPES:
        return nova.why_kept(base.name, base.age)
    return "unused for %ds, younger than Nova's %ds for %s bases" % (
        base.age, nova.min_age(base.name), nova_cache.name_kind(base.name))


def plan_base_prune(pool: str, pool_type: str, bases: Iterable[CacheBase], use: CacheUse,
                    max_used_percent: float | None = None, capacity: int | None = None,
                    used: int | None = None) -> list:
    """One BaseDecision per base of the cache pool ``pool`` (of libvirt ``pool_type``), sorted by name.

    Names Nova does not give a base (in-flight downloads, foreign files, an LV pool's instance volumes) get no
    decision. ``max_used_percent`` with the pool's ``capacity`` and ``used`` bytes: while the pool is fuller,
    the unused bases still kept for their age go too, least recently used (oldest ``age``) first, each counted
    as freeing its ``bytes``."""
    bases = [base for base in bases if nova_cache.name_kind(base.name) is not None]
    recorded = _recorded_users(pool, bases, use.records)
    decisions = {}
    young = []
    for base in bases:
        reason = not_ours_reason(pool_type, base) or in_use_reason(pool_type, base, use, recorded)
        if reason:
            decisions[base.name] = BaseDecision(pool, base.name, reason, base.bytes, KEEP)
            continue
        file_base = pool_type in FILE_POOL_TYPES
        aged = aged_out_reason(pool_type, base, use.nova)
        if aged:
            decisions[base.name] = BaseDecision(pool, base.name, aged, base.bytes, QUARANTINE, nova_lock=file_base)
            continue
        decisions[base.name] = BaseDecision(pool, base.name, young_reason(pool_type, base, use.nova), base.bytes,
                                            KEEP)
        if not (file_base and not use.nova.remove_unused_base_images):
            young.append(base)
    if max_used_percent is not None and capacity:
        _free_by_capacity(decisions, young, pool, pool_type, max_used_percent, capacity, used or 0)
    return [decisions[name] for name in sorted(decisions)]


def _free_by_capacity(decisions, young, pool, pool_type, max_used_percent, capacity, used):
    """Quarantine the least recently used of ``young`` (unused, kept for their age) while the pool is fuller
    than ``max_used_percent``."""
    used -= sum(decision.bytes for decision in decisions.values() if decision.action == QUARANTINE)
    for base in sorted(young, key=lambda base: (-base.age, base.name)):
        percent = 100.0 * used / capacity
        if percent <= max_used_percent:
            break
        reason = ('the cache pool is %.1f%% full, above max_used_percent %s: unused, least recently used first '
                  '(unused for %ds)' % (percent, max_used_percent, base.age))
        decisions[base.name] = BaseDecision(pool, base.name, reason, base.bytes, QUARANTINE,
                                            nova_lock=pool_type in FILE_POOL_TYPES, by_capacity=True)
        used -= base.bytes
