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
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge import prune_plan
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.atomic_file import write_atomically
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError, error_text
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.journal import (
    HostLock,
    Journal,
    private_directory,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.private import privacy_problems
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.connection import open_connection
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.listing import domain_documents
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.pool import Endpoint
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
    """``<state_dir>/prune/<pool>.json``: {volume: when a run first saw it orphaned}, root-only."""

    def __init__(self, state_dir: str, pool: str) -> None:
        self.directory = os.path.join(state_dir, 'prune')
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
        private_directory(os.path.dirname(self.directory), create=True)
        private_directory(self.directory, create=True)
        write_atomically(self.path, json.dumps(seen, sort_keys=True).encode('utf-8'), mode=0o600)


def steps_of(backend: StorageBackend, decision: prune_plan.Reclaim) -> list:
    """The backend's steps that carry ``decision`` out."""
    if decision.action == prune_plan.QUARANTINED:
        return backend.quarantine_steps(decision.volume, decision.expires_at)
    if decision.action == prune_plan.RESTORED:
        return backend.restore_steps(decision.volume)
    if decision.action == prune_plan.PURGED and not decision.quarantined:  # quarantine: 0, or state: absent
        return backend.quarantine_steps(decision.volume, decision.expires_at) + backend.purge_steps(decision.volume)
    if decision.action == prune_plan.PURGED:
        return backend.purge_steps(decision.volume)
    return []


def apply_decisions(backend: StorageBackend, decisions: list, journal: Journal | None) -> list[dict]:
    """Carry out every changing decision (any planner's); the steps run (``journal`` None: check mode,
    nothing runs). Every step is journalled before the first runs, in one write: a killed run is completed
    by the next one observing the pool again, never from the journal. A decision that fails becomes
    ``failed`` with why."""
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
        for step, detail, do in steps:
            actions.append({'action': step, 'volume': decision.volume, 'detail': detail})
            try:
                journal.passing(step)
                do()
            except (StoragePoolsError, OSError, Exception) as exc:  # a libvirt or Ceph error too
                decision.action = prune_plan.FAILED
                decision.reason = '%s failed: %s' % (detail, getattr(exc, 'msg', None) or error_text(exc))
                break
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
    first_seen = FirstSeen(params['state_dir'], backend.pool_name)
    try:
        with run_locked(params['state_dir'], params['lock_timeout'], check_mode):
            view = pool_view(backend)
            references = references_of(conn, params['peers'])
            links = instance_links(params['instances_path'], view.locations)
            policy = prune_plan.Policy(time.time(), params['orphan_min_age'], params['quarantine'],
                                       params['orphans'], params['restore'] or ())
            decisions, seen = prune_plan.plan_orphans(view, references, links, first_seen.read(), policy)
            # bases (issue 15 part 2) are not considered yet: their planner will add its decisions here
            journal = None if check_mode else Journal(params['state_dir'])
            actions = apply_decisions(backend, decisions, journal)
            if not check_mode:
                first_seen.write(dict((name, when) for name, when in seen.items()
                                      if not any(d.volume == name and d.changes for d in decisions)))
    finally:
        backend.close()
    return dict(decisions=decisions, actions=actions, ignored=links.ignored, shared=shared)


def other_records(conn: Any, skip: str) -> dict[str, dict | None]:
    """{``pool/volume``: record} of the volumes of every other active file or logical pool (their records
    may name a volume as their backing)."""
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
