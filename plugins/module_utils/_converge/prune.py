# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reclaiming volumes: observe the host, let the planners decide (prune_plan.py), apply every decision.

Observed: the disks pool's volumes (names, sizes, records; what is in
quarantine) through its backend, every domain of this host and of each peer
(live and inactive XML), and the instance directories under instances_path:
each opened without following a symlink (the nova user owns them and may
plant one), its symlinks read, never followed, and only a link whose target
IS a volume's path counts. The decisions are applied under the host lock,
their steps journalled first, in one write (``<state_dir>/journal/prune-<pool>.json``);
a kill at any step leaves a state the next run re-observes and converges from.

The first time a run sees each orphan is kept root-only in
``<state_dir>/prune/<pool>.json`` (journal.private_directory's rules).

With ``bases``, the image cache pool is observed too (base_prune_plan.py decides): the records of every
pool's volumes, the clones of an rbd base's snapshot (librbd), the origins of LVM snapshots, the domains'
disks and backing chains and the image ids in their Nova metadata, the backing files the overlays' qcow2
headers name. A base of an rbd or logical pool was last used when a run last saw it in use, kept root-only in
``<state_dir>/prune/bases/<pool>.json``; a file of ``_base`` by its mtime, Nova's own clock. Its decisions
are applied by the same journalled steps as the orphans'; a file of ``_base`` under Nova's lock for it, with
Nova's rule checked again while the lock is held.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import time
from typing import TYPE_CHECKING

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.base import backend_class, backend_for
from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.file import FILE_POOL_TYPES
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge import base_prune_plan, prune_plan
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.image_cache import overlay_backing_formats
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.atomic_file import write_atomically
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import (
    OptionError,
    StoragePoolsError,
    error_text,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.journal import (
    HostLock,
    Journal,
    private_directory,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.private import privacy_problems
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.connection import open_connection
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.listing import domain_documents
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.pool import Endpoint
from ansible_collections.storagepools.libvirt.plugins.module_utils._nova import image_cache as nova_cache
from ansible_collections.storagepools.libvirt.plugins.module_utils._nova import layout as nova_layout

if TYPE_CHECKING:  # annotations only: nothing more is imported at run time
    from typing import Any

    from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.base import StorageBackend

MOUNTINFO = '/proc/self/mountinfo'


def open_backend(conn: Any, pool: str, option: str, ceph_keyring: str | None = None,
                 quarantine_dir: str | None = None) -> StorageBackend:
    """The backend of the active pool ``pool`` with its quarantine directory (file pools) set."""
    endpoint = Endpoint(conn, pool, option)
    if backend_class(endpoint.type) is None:
        raise StoragePoolsError("%s: '%s' is a %s pool; this version reclaims volumes of dir, fs, netfs, logical "
                                "and rbd pools" % (option, pool, endpoint.type))
    backend = backend_for(endpoint, option, ceph_keyring)
    if quarantine_dir is not None:
        backend.quarantine_directory = quarantine_dir
    return backend


def pool_view(backend: StorageBackend) -> prune_plan.PoolView:
    """What the planners see of the pool behind ``backend``."""
    locations, sizes, records, unusable = backend.observe_volumes()
    quarantined = [prune_plan.QuarantinedVolume(*entry) for entry in backend.quarantined()]
    rbd_names = locations if backend.endpoint.type == 'rbd' else {}
    return prune_plan.PoolView(backend.pool_name, locations, sizes, records, quarantined, unusable, rbd_names,
                               listed=backend.endpoint.pool.listVolumes(), marked=backend.marked_volumes())


def references_of(conn: Any, peers: list[str] = (), origin: str = 'this host') -> prune_plan.DomainReferences:
    """What every domain of this host and of each peer (a libvirt URI) references; a peer that cannot be
    read fails the task (nothing is reclaimed on a guess)."""
    references = prune_plan.DomainReferences()
    for text in domain_documents(conn):
        references.add(text, origin)
    for uri in peers:
        try:
            peer = open_connection(uri)
        except StoragePoolsError as exc:
            raise StoragePoolsError('peers: %s; nothing is reclaimed while a peer sharing instances_path cannot '
                                    'be asked which volumes it uses' % exc.msg, libvirt_error=exc.libvirt_error)
        try:
            for text in domain_documents(peer):
                references.add(text, uri)
        finally:
            peer.close()
    return references


def instance_links(instances_path: str, locations: dict[str, str]) -> prune_plan.InstanceLinks:
    """Which volumes an instance directory (``<uuid>``, ``<uuid>_resize``, ``<uuid>_del``) links: a symlink
    whose target is a volume's path, or a disk.info entry naming it. A directory that is a symlink is not
    an instance directory (it is ignored, and reported); no link is ever followed."""
    wanted = set(locations.values())
    links, ignored = {}, []
    try:
        entries = sorted(os.listdir(instances_path))
    except FileNotFoundError:
        return prune_plan.InstanceLinks()
    except OSError as exc:
        raise StoragePoolsError('instances_path: cannot list %s: %s' % (instances_path, exc.strerror))
    for entry in entries:
        instance_uuid = entry
        for suffix in prune_plan.INSTANCE_DIR_SUFFIXES[1:]:
            if entry.endswith(suffix):
                instance_uuid = entry[:-len(suffix)]
        if not nova_layout.is_uuid(instance_uuid):
            continue
        try:
            fd = nova_layout.open_directory(instances_path, entry)
        except OSError:
            ignored.append(os.path.join(instances_path, entry))
            continue
        try:
            _links_in(fd, os.path.join(instances_path, entry), wanted, links)
        finally:
            os.close(fd)
    return prune_plan.InstanceLinks(links, ignored)


def _links_in(fd, directory, wanted, links):
    for name in os.listdir(fd):
        try:
            info = os.lstat(name, dir_fd=fd)
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(info.st_mode):
            target = os.readlink(name, dir_fd=fd)
            if target in wanted:
                links.setdefault(target, os.path.join(directory, name))
    try:
        disk_info = nova_layout.read_disk_info(directory, fd)
    except Exception:  # a malformed disk.info (the nova user writes it) names nothing
        return
    for path in disk_info:
        if path in wanted:
            links.setdefault(path, os.path.join(directory, nova_layout.DISK_INFO))


def shared_instances_path(instances_path: str, declared: str) -> str | None:
    """The filesystem type of a shared ``instances_path`` (declared: auto | shared | local), or None."""
    if declared == 'local':
        return None
    if declared == 'shared':
        return 'declared shared'
    try:
        with open(MOUNTINFO) as handle:
            mountinfo = handle.read()
    except OSError:
        return None
    return prune_plan.shared_filesystem(mountinfo, os.path.realpath(instances_path))


class FirstSeen:
    """``<state_dir>/prune/<pool>.json``: {volume: when a run first saw it orphaned}, root-only; with
    ``kind`` 'bases', ``<state_dir>/prune/bases/<pool>.json``: {base: when a run last saw it in use}."""

    def __init__(self, state_dir: str, pool: str, kind: str | None = None) -> None:
        self.top = os.path.join(state_dir, 'prune')
        self.directory = os.path.join(self.top, kind) if kind else self.top
        self.path = os.path.join(self.directory, '%s.json' % pool)

    def read(self) -> dict[str, float]:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise StoragePoolsError('state_dir: cannot open %s: %s (a symlink?); check who made it, then remove '
                                    'it' % (self.path, exc.strerror))
        with os.fdopen(fd, 'rb') as handle:
            problems = privacy_problems(os.fstat(handle.fileno()))
            if problems:
                raise StoragePoolsError('state_dir: %s is %s; only root may write there'
                                        % (self.path, ' and '.join(problems)))
            try:
                seen = json.loads(handle.read().decode('utf-8'))
            except ValueError:
                seen = {}  # a torn record only restarts the clocks (later reclaims, never earlier ones)
        return dict((str(name), float(when)) for name, when in seen.items()) if isinstance(seen, dict) else {}

    def write(self, seen: dict[str, float]) -> None:
        private_directory(os.path.dirname(self.top), create=True)
        private_directory(self.top, create=True)
        if self.directory != self.top:
            private_directory(self.directory, create=True)
        write_atomically(self.path, json.dumps(seen, sort_keys=True).encode('utf-8'), mode=0o600)


def steps_of(backend: StorageBackend, decision: prune_plan.Reclaim) -> list:
    """The planner's extra steps, then the backend's, that carry ``decision`` out."""
    steps = []
    if decision.action == prune_plan.QUARANTINED:
        steps = backend.quarantine_steps(decision.volume, decision.expires_at)
    elif decision.action == prune_plan.RESTORED:
        steps = backend.restore_steps(decision.volume)
    elif decision.action == prune_plan.PURGED and not decision.quarantined:  # quarantine: 0, or state: absent
        steps = backend.quarantine_steps(decision.volume, decision.expires_at) + backend.purge_steps(decision.volume)
    elif decision.action == prune_plan.PURGED:
        steps = backend.purge_steps(decision.volume)
    return list(decision.extra_steps) + steps if decision.changes else steps


def apply_decisions(backend: StorageBackend, decisions: list, journal: Journal | None) -> list[dict]:
    """Carry out every changing decision (any planner's) inside the decision's guard (Nova's lock); the steps
    run (``journal`` None: check mode, nothing runs). Every step is journalled before the first runs, in one
    write: a killed run is completed by the next one observing the pool again, never from the journal. A
    decision that fails becomes ``failed`` with why; one its guard finds still used becomes ``kept``."""
    key = 'prune-%s' % backend.pool_name
    planned = [(decision, steps_of(backend, decision)) for decision in decisions]
    if journal is None:
        return [{'action': step, 'volume': decision.volume, 'detail': detail}
                for decision, steps in planned for step, detail, _do in steps]
    actions = []
    if any(steps for _decision, steps in planned):
        journal.ahead(key, [{'step': step, 'volume': decision.volume}
                            for decision, steps in planned for step, _detail, _do in steps])
    for decision, steps in planned:
        if not steps:
            continue
        doing = 'taking the lock of %s' % decision.volume
        try:
            with decision.guard() if decision.guard else contextlib.nullcontext():
                for step, detail, do in steps:
                    doing = detail
                    actions.append({'action': step, 'volume': decision.volume, 'detail': detail})
                    journal.passing(step)
                    do()
        except prune_plan.StillUsed as exc:
            decision.action, decision.reason = prune_plan.KEPT, exc.reason
        except (StoragePoolsError, OSError, Exception) as exc:  # a libvirt or Ceph error too
            decision.action = prune_plan.FAILED
            decision.reason = '%s failed: %s' % (doing, getattr(exc, 'msg', None) or error_text(exc))
    if actions:
        journal.finish(key, 'done')
    return actions


def run_locked(state_dir: str, lock_timeout: int, check_mode: bool):
    """The host lock for a real run (check mode takes none, as adoption's does)."""
    return contextlib.nullcontext() if check_mode else HostLock(state_dir, lock_timeout)


def summary_of(decisions: list) -> dict:
    summary = dict((action, sum(1 for decision in decisions if decision.action == action))
                   for action in (prune_plan.KEPT,) + prune_plan.CHANGES + (prune_plan.FAILED,))
    for action in (prune_plan.QUARANTINED, prune_plan.PURGED, prune_plan.RESTORED):
        summary['%s_bytes' % action] = sum(decision.bytes for decision in decisions if decision.action == action)
    return summary


def prune(conn: Any, params: dict, check_mode: bool) -> dict:
    """One nova_storage_prune run over the disks pool; the module's result (without diff)."""
    shared = shared_instances_path(params['instances_path'], params['shared_instances_path'])
    if shared and not params['peers']:
        raise StoragePoolsError(
            'peers: instances_path %s is on a shared filesystem (%s): another host may use a volume this host '
            'does not. Name the libvirt URIs of every host sharing it in peers, or set shared_instances_path: '
            'local if no other host mounts it' % (params['instances_path'], shared))
    backend = open_backend(conn, params['disks_pool'], 'disks_pool', params['ceph_keyring'], params['quarantine_dir'])
    cache = None
    first_seen = FirstSeen(params['state_dir'], backend.pool_name)
    try:
        cache = cache_backend(conn, params, backend)
        with run_locked(params['state_dir'], params['lock_timeout'], check_mode):
            view = pool_view(backend)
            cache_view = None if cache is None else view if cache is backend else pool_view(cache)
            restore = restore_by_pool(params['restore'] or (), view, cache_view)
            references = references_of(conn, params['peers'])
            links = instance_links(params['instances_path'], view.locations)
            now = time.time()
            policy = prune_plan.Policy(now, params['orphan_min_age'], params['quarantine'],
                                       params['orphans'], restore[view.name])
            decisions, seen = prune_plan.plan_orphans(view, references, links, first_seen.read(), policy)
            base_decisions, last_used = [], None
            if cache is not None:
                last_used = FirstSeen(params['state_dir'], cache.pool_name, 'bases')
                base_decisions, used = plan_bases(conn, params, cache, cache_view, backend, view, references, now,
                                                  last_used.read(), restore[cache_view.name])
                if cache is backend:  # the bases of the disks pool: their decisions replace the orphans' kept
                    decided = set(decision.volume for decision in base_decisions)
                    decisions = [d for d in decisions if d.quarantined or d.volume not in decided] + base_decisions
                    base_decisions = []
            journal = None if check_mode else Journal(params['state_dir'])
            actions = apply_decisions(backend, decisions, journal)
            if base_decisions:
                actions += apply_decisions(cache, base_decisions, journal)
            decisions += base_decisions
            if not check_mode:
                first_seen.write(dict((name, when) for name, when in seen.items()
                                      if not any(d.volume == name and d.changes for d in decisions)))
                if last_used is not None:
                    last_used.write(used)
    finally:
        backend.close()
        if cache is not None and cache is not backend:
            cache.close()
    return dict(decisions=decisions, actions=actions, ignored=links.ignored, shared=shared,
                cache_missing=params['bases'] and cache is None)


def restore_by_pool(names: list, view: prune_plan.PoolView, cache_view: prune_plan.PoolView | None) -> dict:
    """{pool: the names of ``restore`` that pool holds (in quarantine or back in it)}; a name neither the
    disks pool nor the cache pool holds is refused."""
    views = [view] + ([cache_view] if cache_view is not None and cache_view is not view else [])
    found = dict((each.name, []) for each in views)
    unknown = []
    for name in names:
        holders = [each for each in views if name in each.quarantined] or \
            [each for each in views if name in each.locations]
        if holders:
            found[holders[0].name].append(name)
        else:
            unknown.append(name)
    if unknown:
        quarantined = sorted(set().union(*(each.quarantined for each in views)))
        raise OptionError('restore', 'pool %s has no volume %s in quarantine nor in the pool (quarantined: %s)'
                          % (' or '.join(each.name for each in views), ', '.join(unknown),
                             ', '.join(quarantined) or 'none'))
    return found


# -- image cache bases (base_prune_plan.py decides) ------------------------------------------------------------

def cache_backend(conn: Any, params: dict, disks: StorageBackend) -> StorageBackend | None:
    """The backend of the cache pool for ``bases``: ``disks`` itself when it is the disks pool, None with
    ``bases`` false or when no such pool is defined (nothing to prune)."""
    if not params['bases']:
        return None
    if params['cache_pool'] == disks.pool_name:
        return disks
    if params['cache_pool'] not in conn.listStoragePools() + conn.listDefinedStoragePools():
        return None
    return open_backend(conn, params['cache_pool'], 'cache_pool', params['ceph_keyring'])


def nova_rules(params: dict, pool_type: str, references: prune_plan.DomainReferences, disk_backings) -> Any:
    """NovaRules of the host: the image ids of every domain (this host and the peers), the bases the
    instances' overlays back onto; the ages are the task's, and for a file of ``_base`` never below
    nova.conf's (a prune never removes a file Nova's own manager would still keep)."""
    settings = nova_cache.conf_settings(nova_layout.NovaConf(params['nova_conf']))
    original = params['remove_unused_original_minimum_age_seconds']
    resized = params['remove_unused_resized_minimum_age_seconds']
    remove = True
    if pool_type in FILE_POOL_TYPES:
        original = max(original, settings['remove_unused_original_minimum_age_seconds'])
        resized = max(resized, settings['remove_unused_resized_minimum_age_seconds'])
        remove = settings['remove_unused_base_images']
    return nova_cache.NovaRules(references.image_ids, disk_backings, None, original, resized, remove)


def all_records(conn: Any, backends: list, views: list) -> dict:
    """{(pool, volume): record} of every volume of the file and logical pools, and of the pools ``views``
    (observed through ``backends``), quarantined ones included."""
    records = {}
    for key, record in other_records(conn, None).items():
        records[tuple(key.split('/', 1))] = record
    for backend, view in zip(backends, views):
        for name, record in backend.quarantined_records().items():
            records.setdefault((view.name, name), record)
        for name, record in view.records.items():
            records[(view.name, name)] = record
    return records


def domain_users(references: prune_plan.DomainReferences, cache_view: prune_plan.PoolView) -> dict:
    """{base location: the domain disk that names it} (a source of a disk or of its backing chain)."""
    users = {}
    for (kind, value), who in references.sources.items():
        if kind in ('path', 'rbd'):
            users.setdefault(value, who)
        elif kind == 'volume' and value[0] == cache_view.name and value[1] in cache_view.locations:
            users.setdefault(cache_view.locations[value[1]], who)
    return users


def plan_bases(conn: Any, params: dict, cache: StorageBackend, cache_view: prune_plan.PoolView,
               disks: StorageBackend, disks_view: prune_plan.PoolView, references: prune_plan.DomainReferences,
               now: float, last_used: dict, restore: list) -> tuple[list, dict]:
    """(the Reclaim decisions on the cache pool's bases and on what it holds in quarantine, the new
    last-used clock {base: when last seen in use} of an rbd or logical cache pool)."""
    pool_type = cache.endpoint.type
    file_pool = pool_type in FILE_POOL_TYPES
    overlays = overlay_backing_formats(params['instances_path'])
    base_dir = os.path.join(os.path.normpath(params['instances_path']), nova_layout.BASE_DIR)
    disk_backings = set(os.path.basename(path) for path in overlays if os.path.dirname(path) == base_dir)
    rules = nova_rules(params, pool_type, references, disk_backings)
    bases, mtimes, decisions = [], {}, []
    for name in sorted(cache_view.locations):
        if nova_cache.name_kind(name) is None:
            continue
        location = cache_view.locations[name]
        if name in cache_view.unusable:
            decisions.append(prune_plan.Reclaim(cache_view.name, name, cache_view.unusable[name],
                                                cache_view.sizes.get(name, 0), prune_plan.KEPT))
            continue
        if file_pool:
            mtimes[name] = os.lstat(location).st_mtime
            age = now - mtimes[name]
        else:
            age = now - last_used.get(name, now)
        bases.append(base_prune_plan.CacheBase(name, cache_view.sizes.get(name, 0), max(0.0, age), location,
                                               cache_view.records.get(name)))
    use = base_prune_plan.CacheUse(
        rules, all_records(conn, [disks, cache], [disks_view, cache_view]), overlay_backings=list(overlays),
        clone_children=dict((base.name, cache.clone_children(base.name)) for base in bases),
        snapshot_origins=cache.snapshot_origins(), domain_users=domain_users(references, cache_view))
    capacity = used = None
    if params['max_used_percent'] is not None:
        capacity, used = cache.capacity_and_used()
    planned = base_prune_plan.plan_base_prune(cache_view.name, pool_type, bases, use, params['max_used_percent'],
                                              capacity, used)
    for base in planned:
        decisions.append(reclaim_of(base, cache_view, now, params, rules, mtimes.get(base.volume), restore,
                                    cache.target if file_pool else None))
    if cache_view is not disks_view:
        decisions.extend(prune_plan.plan_quarantined(cache_view, prune_plan.Policy(now, restore=restore)))
        if file_pool:
            for decision in decisions:
                if decision.action == prune_plan.RESTORED and decision.quarantined:
                    decision.extra_steps.append(touch_step(cache, decision.volume))
    in_use = base_prune_plan.used_now(cache_view.name, pool_type, bases, use)
    clock = dict((base.name, now if base.name in in_use else last_used.get(base.name, now)) for base in bases)
    for decision in decisions:
        if decision.action == prune_plan.RESTORED:
            clock[decision.volume] = now  # a restored base's clock starts afresh
        elif decision.changes:
            clock.pop(decision.volume, None)
    return decisions, ({} if file_pool else clock)


def reclaim_of(base: base_prune_plan.BaseDecision, cache_view: prune_plan.PoolView, now: float, params: dict,
               rules: Any, mtime: float | None, restore: list, cache_target: str | None) -> prune_plan.Reclaim:
    """The Reclaim decision carrying out the planner's BaseDecision (a file of ``_base``, in the directory
    ``cache_target``: under Nova's lock)."""
    name = base.volume
    if base.action == base_prune_plan.QUARANTINE and name not in restore:
        action = prune_plan.PURGED if params['quarantine'] == 0 else prune_plan.QUARANTINED
        decision = prune_plan.Reclaim(base.pool, name, base.reason, base.bytes, action, now + params['quarantine'],
                                      decided_at=now)
        if base.nova_lock:
            decision.guard = lambda: nova_lock_held(params['instances_path'], cache_target, name, rules, mtime,
                                                    base.by_capacity, min(params['lock_timeout'], 60))
        return decision
    reason = 'named in restore' if base.action == base_prune_plan.QUARANTINE else base.reason
    if name in cache_view.marked:  # a killed run's quarantine mark
        return prune_plan.Reclaim(base.pool, name, '%s; dropping the quarantine mark a killed run left' % reason,
                                  base.bytes, prune_plan.RESTORED, None, True)
    return prune_plan.Reclaim(base.pool, name, reason, base.bytes, prune_plan.KEPT)


@contextlib.contextmanager
def nova_lock_held(instances_path: str, directory: str, name: str, rules: Any, mtime: float | None,
                   by_capacity: bool, timeout: int):
    """Nova's lock for the base file ``name`` of ``directory`` (``_base``), held while it is quarantined;
    inside, the file (opened without following a symlink) must still be what was planned on: untouched
    since (Nova touches the bases it uses) and, unless the capacity policy took it, one Nova's own manager
    removes now."""
    with nova_cache.NovaBaseLock(instances_path, name, timeout, 'cache_pool'):
        fd, found = _open_in(directory, name)
        if fd is None:
            raise prune_plan.StillUsed('%s %s; left alone' % (os.path.join(directory, name), found))
        os.close(fd)
        if mtime is not None and found.st_mtime != mtime:
            raise prune_plan.StillUsed("used since it was planned on (its mtime changed, Nova's last-used clock); "
                                       "checked under Nova's lock")
        kept = rules.in_use(name) if by_capacity else rules.why_kept(name, nova_cache.mtime_age(found))
        if kept:
            raise prune_plan.StillUsed("%s (checked under Nova's lock)" % kept)
        yield


def touch_step(backend: StorageBackend, name: str) -> tuple:
    """A step setting the mtime of a ``_base`` file about to be restored to now: Nova's last-used clock, so
    neither Nova's manager nor the next prune takes it for long unused (its data stays as it was). It runs
    first, in the quarantine directory, so a restore killed later still brings back a touched file."""
    def touch():
        for directory in (backend.quarantine_path, backend.target):
            fd, found = _open_in(directory, name)
            if fd is not None:
                try:
                    os.utime(fd)
                finally:
                    os.close(fd)
                return
        raise StoragePoolsError('cache_pool: %s %s' % (os.path.join(backend.target, name), found))
    return ('touch', "set the mtime of '%s' to now (Nova's last-used clock starts afresh)" % name, touch)


def other_records(conn: Any, skip: str | None) -> dict[str, dict | None]:
    """{``pool/volume``: record} of the volumes of every other active file or logical pool, quarantined ones
    too (their records may name a volume as their backing, and a restore needs it)."""
    records = {}
    for pool in conn.listAllStoragePools(0):
        name = pool.name()
        if name == skip or not pool.isActive():
            continue
        endpoint = Endpoint(conn, name, 'pool')
        if endpoint.type not in ('dir', 'fs', 'netfs', 'logical'):
            continue
        backend = backend_for(endpoint, 'pool')
        try:
            for volume, record in backend.observe_volumes()[2].items():
                records['%s/%s' % (name, volume)] = record
            for volume, record in backend.quarantined_records().items():
                records.setdefault('%s/%s' % (name, volume), record)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.EACCES):
                raise
        finally:
            backend.close()
    return records


def remove_volume(conn: Any, params: dict, name: str, check_mode: bool) -> dict:
    """virt_volume_clone state: absent: volume ``name`` quarantined (``quarantine`` 0: deleted), refused while
    a domain of this host or a record uses it; the module's result."""
    backend = open_backend(conn, params['pool'], 'pool', params['ceph_keyring'], params['quarantine_dir'])
    try:
        with run_locked(params['state_dir'], 600, check_mode):
            view = pool_view(backend)
            if name not in view.locations:
                reason = 'quarantined' if name in view.quarantined else 'absent'
                return dict(changed=False, actions=[], reclaimed=[], volume=None, reason=reason)
            if name in view.unusable:
                raise StoragePoolsError("name: volume '%s' of pool '%s' is %s; it is not removed"
                                        % (name, view.name, view.unusable[name]))
            why = prune_plan.refuse_removal(view, name, references_of(conn), other_records(conn, view.name))
            if why:
                raise StoragePoolsError("name: volume '%s' of pool '%s' is %s; it is not removed"
                                        % (name, view.name, why))
            now = time.time()
            action = prune_plan.PURGED if params['quarantine'] == 0 else prune_plan.QUARANTINED
            decision = prune_plan.Reclaim(view.name, name, 'state: absent', view.sizes.get(name, 0), action,
                                          now + params['quarantine'], decided_at=now)
            actions = apply_decisions(backend, [decision], None if check_mode else Journal(params['state_dir']))
    finally:
        backend.close()
    if decision.action == prune_plan.FAILED:
        raise StoragePoolsError('name: %s' % decision.reason, actions=actions)
    return dict(changed=True, actions=actions, reclaimed=[decision.result()], volume=None,
                diff=prune_plan.diff_text([decision]))


def _open_in(directory: str, name: str) -> tuple:
    """(descriptor, stat) of the regular file ``name`` of ``directory``, never through a symlink; (None,
    why not) when it is not one (the nova user owns ``_base`` and may have swapped it)."""
    try:
        top = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # the pool's target, our quarantine
    except OSError as exc:
        return None, 'cannot be reached: %s' % exc.strerror
    try:
        return nova_layout.open_regular_file(name, top)
    except OSError as exc:
        return None, nova_layout.why_not_opened(exc)
    finally:
        os.close(top)
