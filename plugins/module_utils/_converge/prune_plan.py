# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What ``nova_storage_prune`` reclaims, decided from what was observed (no file, libvirt or Ceph call here).

An **orphan** is a volume of the disks pool named ``{uuid}_{disk}`` whose
instance has no domain (by uuid) on this host or a peer, that no instance
directory links (a legacy path that is a symlink to the volume, or a
disk.info entry naming it), that no disk of any domain of this host or a
peer references (by path, pool/volume, block device or rbd name, backing
chains included), and that no other volume's record names as its backing.
Everything else is kept, with the reason.

The age clock starts when a run first sees a volume orphaned: ``first_seen``
is kept root-only in state_dir, never taken from the file's mtime (an
adopted disk of a long-stopped instance is old). A volume that is no longer
an orphan leaves ``first_seen``: its clock starts afresh.

A planner yields ``Reclaim`` decisions (pool, volume, reason, bytes, action);
the apply side (prune.py) carries out every decision any planner yields. The
image-cache base planner (issue 15 part 2) plugs in as a second planner of
the same decisions.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import OptionError
from ansible_collections.storagepools.libvirt.plugins.module_utils._nova import image_cache as nova_cache
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.domain import DomainDocument

if TYPE_CHECKING:  # annotations only: nothing more is imported at run time
    from collections.abc import Iterable

KEPT, QUARANTINED, PURGED, RESTORED, FAILED = 'kept', 'quarantined', 'purged', 'restored', 'failed'
CHANGES = (QUARANTINED, PURGED, RESTORED)
INSTANCE_VOLUME_RE = re.compile(r'^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})_(.+)$')
# the directories Nova keeps an instance's files in while it lives, resizes, and is being deleted
INSTANCE_DIR_SUFFIXES = ('', '_resize', '_del')
# filesystem types another host can mount too (Nova's shared-storage test, by type instead of a marker file)
SHARED_FILESYSTEMS = frozenset(('nfs', 'nfs4', 'cifs', 'smb3', 'glusterfs', 'fuse.glusterfs', 'ceph',
                                'fuse.ceph-fuse', 'ocfs2', 'gfs2', 'lustre', 'beegfs', 'fuse.beegfs', 'gpfs',
                                'afs', '9p', 'virtiofs', 'fuse.sshfs', 'fuse.s3fs', 'fuse.juicefs'))


def when(stamp: float) -> str:
    """A timestamp in the words of a reason (UTC, seconds)."""
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(stamp))


class Reclaim:
    """One decision: what happens (or would happen) to ``volume`` of ``pool`` and why.

    ``action``: kept | quarantined | purged | restored (and failed, set by the apply side). ``bytes``: what
    the volume takes (what reclaiming it frees). ``expires_at``: when a quarantine ends (quarantined, and a
    purge at once: now). ``quarantined``: the decision is about a volume already in quarantine.

    Set by the planner for the apply side: ``guard``, None or a callable giving the context held around the
    decision's steps (Nova's lock for a base of ``_base``; it raises StillUsed when the volume must stay);
    ``extra_steps``, steps (name, detail, do) run before the backend's."""

    def __init__(self, pool: str, volume: str, reason: str, size: int, action: str,
                 expires_at: float | None = None, quarantined: bool = False,
                 decided_at: float | None = None) -> None:
        self.pool = pool
        self.volume = volume
        self.reason = reason
        self.bytes = size
        self.action = action
        self.expires_at = expires_at
        self.quarantined = quarantined
        self.decided_at = time.time() if decided_at is None else decided_at
        self.guard = None
        self.extra_steps = []

    @property
    def changes(self) -> bool:
        return self.action in CHANGES

    def result(self) -> dict:
        return {'pool': self.pool, 'volume': self.volume, 'reason': self.reason, 'bytes': self.bytes,
                'action': self.action}

    def __repr__(self) -> str:
        return 'Reclaim(%r)' % self.result()


class StillUsed(Exception):
    """Raised by a decision's guard: checked again as it was about to be reclaimed, the volume stays."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DomainReferences:
    """What the domains of this host (and its peers) reference: uuids, files, block devices, pool volumes,
    rbd images; each with who references it, for the reason. ``image_ids``: the image ids Nova wrote into
    their metadata (Nova's in-use rule for bases)."""

    def __init__(self) -> None:
        self.uuids = {}
        self.sources = {}
        self.image_ids = set()

    def add(self, xml: str, origin: str) -> None:
        """Take in one domain document (live or inactive) of the host ``origin`` names."""
        document = DomainDocument(xml)
        label = "domain '%s' (%s) on %s" % (document.name, document.uuid, origin)
        if document.uuid:
            self.uuids.setdefault(document.uuid.lower(), label)
        self.image_ids |= nova_cache.domain_image_ids(document)
        for disk in document.disks():
            for source in disk.element.iter('source'):  # the disk's own and its backingStore chain's
                for key in self._keys(source):
                    self.sources.setdefault(key, '%s (disk %s)' % (label, disk.target))

    @staticmethod
    def _keys(source):
        keys = [('path', source.get(name)) for name in ('file', 'dev') if source.get(name)]
        if source.get('pool') and source.get('volume'):
            keys.append(('volume', (source.get('pool'), source.get('volume'))))
        if source.get('protocol') == 'rbd' and source.get('name'):
            keys.append(('rbd', source.get('name').split('@', 1)[0]))
        return keys

    def domain_of(self, instance_uuid: str) -> str | None:
        return self.uuids.get(instance_uuid.lower())

    def user_of(self, pool: str, volume: str, location: str, rbd_name: str | None = None) -> str | None:
        """Who references the volume (by path, pool/volume or rbd name), or None."""
        keys = [('path', location), ('volume', (pool, volume))] + ([('rbd', rbd_name)] if rbd_name else [])
        for key in keys:
            if key in self.sources:
                return self.sources[key]
        return None


def backing_users(pool: str, locations: dict, records: dict[str, dict | None]) -> dict[str, str]:
    """{volume name: the volume whose record names it as its backing} within ``pool``; ``records`` may hold
    other pools' volumes too, keyed ``pool/volume``."""
    by_location = dict((location, name) for name, location in locations.items())
    users = {}
    for holder, record in sorted(records.items()):
        backing = (record or {}).get('backing') or {}
        name = None
        if backing.get('pool') == pool and backing.get('volume') in locations:
            name = backing['volume']
        elif backing.get('path') in by_location:
            name = by_location[backing['path']]
        if name is not None and name != holder:
            users.setdefault(name, holder)
    return users


class QuarantinedVolume:
    """A volume in quarantine: its name, when the quarantine ends, what it takes."""

    def __init__(self, name: str, expires_at: float, size: int) -> None:
        self.name = name
        self.expires_at = expires_at
        self.bytes = size


class PoolView:
    """The disks pool as observed: its volumes' locations (path or ``ceph pool/image``), sizes, records,
    the volumes that must not be touched (with why), and what is in quarantine."""

    def __init__(self, name: str, locations: dict[str, str], sizes: dict[str, int],
                 records: dict[str, dict | None], quarantined: Iterable[QuarantinedVolume] = (),
                 unusable: dict[str, str] | None = None, rbd_names: dict[str, str] | None = None,
                 listed: Iterable[str] = (), marked: Iterable[str] = ()) -> None:
        self.name = name
        self.listed = set(listed)  # what libvirt lists
        self.marked = set(marked)  # volumes in the pool still carrying a quarantine mark (a killed run's)
        self.locations = locations
        self.sizes = sizes
        self.records = records
        self.quarantined = dict((entry.name, entry) for entry in quarantined)
        self.unusable = unusable or {}
        self.rbd_names = rbd_names or {}


class InstanceLinks:
    """What the instance directories say: {volume location: the legacy path (a symlink) or disk.info naming
    it}. Only real directories count; ``ignored`` lists names that were not (a symlink planted there)."""

    def __init__(self, links: dict[str, str] | None = None, ignored: Iterable[str] = ()) -> None:
        self.links = links or {}
        self.ignored = list(ignored)


class Policy:
    """The task's options the orphan planner decides by."""

    def __init__(self, now: float, orphan_min_age: int = 3600, quarantine: int = 604800, orphans: bool = True,
                 restore: Iterable[str] = ()) -> None:
        self.now = now
        self.orphan_min_age = orphan_min_age
        self.quarantine = quarantine
        self.orphans = orphans
        self.restore = list(restore)


def why_kept(view: PoolView, name: str, references: DomainReferences, links: InstanceLinks,
             backing: dict[str, str]) -> str | None:
    """Why volume ``name`` is not an orphan, or None when it is one."""
    if name in view.unusable:
        return view.unusable[name]
    matched = INSTANCE_VOLUME_RE.match(name)
    if not matched:
        return 'not named {instance_uuid}_{disk}'
    location = view.locations[name]
    domain = references.domain_of(matched.group(1))
    if domain:
        return 'its instance has %s' % domain
    user = references.user_of(view.name, name, location, view.rbd_names.get(name))
    if user:
        return 'used by %s' % user
    if location in links.links:
        return 'linked from %s' % links.links[location]
    if name in backing:
        return 'the backing of volume %s (its record)' % backing[name]
    return None


def plan_orphans(view: PoolView, references: DomainReferences, links: InstanceLinks, first_seen: dict[str, float],
                 policy: Policy, records: dict[str, dict | None] | None = None) -> tuple[list[Reclaim], dict]:
    """(decisions, the new first_seen) for the disks pool: orphans past ``orphan_min_age`` quarantined (purged
    with ``quarantine`` 0), quarantined volumes past their expiry purged, ``restore`` names restored.

    ``records``: the records of other pools' volumes as well (``pool/volume``), for backing users."""
    now = policy.now
    # a name already back in the pool is a rerun's: nothing to do
    unknown = [name for name in policy.restore if name not in view.quarantined and name not in view.locations]
    if unknown:
        raise OptionError('restore', 'pool %s has no volume %s in quarantine nor in the pool (quarantined: %s)'
                          % (view.name, ', '.join(unknown), ', '.join(sorted(view.quarantined)) or 'none'))
    backing = backing_users(view.name, view.locations, dict(records or {}, **view.records))
    decisions, seen = [], {}
    for name in sorted(view.locations):
        size = view.sizes.get(name, 0)
        reason = why_kept(view, name, references, links, backing)
        if reason is None and name in policy.restore:
            reason = 'named in restore'
        if reason is None:
            seen[name] = first_seen.get(name, now)
            reason = orphan_reason(seen[name], now)
            age = now - seen[name]
            if name in view.quarantined:
                reason = '%s; a quarantined volume of that name exists (restore or wait for its purge)' % reason
            elif not policy.orphans:
                reason = '%s; orphans is false' % reason
            elif age < policy.orphan_min_age:
                reason = '%s; reclaimed once orphaned for orphan_min_age (%d s to go)' % (
                    reason, policy.orphan_min_age - age)
            else:
                action = PURGED if policy.quarantine == 0 else QUARANTINED
                decisions.append(Reclaim(view.name, name, reason, size, action, now + policy.quarantine,
                                         decided_at=now))
                continue
        if name in view.marked:  # a restore killed after its move, or a quarantine killed after its mark
            decisions.append(Reclaim(view.name, name, '%s; dropping the quarantine mark a killed run left' % reason,
                                     size, RESTORED, None, True))
            continue
        decisions.append(Reclaim(view.name, name, reason, size, KEPT))
    decisions.extend(plan_quarantined(view, policy))
    return decisions, seen


def orphan_reason(first: float, now: float) -> str:
    since = 'first seen orphaned now' if first >= now else 'orphaned since %s' % when(first)
    return 'orphan: no domain, instance directory or record uses it (%s)' % since


def plan_quarantined(view: PoolView, policy: Policy) -> list[Reclaim]:
    """Decisions on what is in quarantine: restore what ``restore`` names, purge what expired, keep the rest."""
    decisions = []
    for name, entry in sorted(view.quarantined.items()):
        if name in policy.restore:
            if name in view.locations:
                reason = 'restore: pool %s already holds a volume %s; it stays in quarantine' % (view.name, name)
                decisions.append(Reclaim(view.name, name, reason, entry.bytes, KEPT, entry.expires_at, True))
                continue
            decisions.append(Reclaim(view.name, name, 'named in restore', entry.bytes, RESTORED, None, True))
        elif name in view.listed and name not in view.locations:  # libvirt lists it still: a killed run's
            decisions.append(Reclaim(view.name, name, 'completing the quarantine a killed run left', entry.bytes,
                                     QUARANTINED, entry.expires_at, True, decided_at=policy.now))
        elif entry.expires_at <= policy.now:
            decisions.append(Reclaim(view.name, name, 'quarantine expired at %s' % when(entry.expires_at),
                                     entry.bytes, PURGED, entry.expires_at, True))
        else:
            decisions.append(Reclaim(view.name, name, 'quarantined until %s' % when(entry.expires_at),
                                     entry.bytes, KEPT, entry.expires_at, True))
    return decisions


def refuse_removal(view: PoolView, name: str, references: DomainReferences,
                   records: dict[str, dict | None] | None = None) -> str | None:
    """Why ``virt_volume_clone state: absent`` must not take volume ``name`` (a domain or a record uses it),
    or None. Unlike an orphan, a volume of a defined instance without a disk on it may go."""
    backing = backing_users(view.name, view.locations, dict(records or {}, **view.records))
    user = references.user_of(view.name, name, view.locations[name], view.rbd_names.get(name))
    if user:
        return 'used by %s' % user
    if name in backing:
        return 'the backing of volume %s (its record)' % backing[name]
    return None


def shared_filesystem(mountinfo: str, path: str) -> str | None:
    """The type of the filesystem ``path`` (a real path) is on when another host can mount it too, else None.

    ``mountinfo``: /proc/self/mountinfo's text; the longest mount point above ``path`` decides."""
    best, best_type = '', None
    for line in mountinfo.splitlines():
        fields = line.split()
        if ' - ' not in line or len(fields) < 5:
            continue
        mount_point = fields[4].replace('\\040', ' ')
        fs_type = line.split(' - ', 1)[1].split()[0]
        inside = path == mount_point or path.startswith(mount_point.rstrip('/') + '/')
        if inside and len(mount_point) >= len(best):
            best, best_type = mount_point, fs_type
    return best_type if best_type in SHARED_FILESYSTEMS else None


def diff_text(decisions: Iterable[Reclaim]) -> dict:
    """--diff of the changing decisions: where each volume is before and after."""
    before, after = [], []
    for decision in decisions:
        if not decision.changes:
            continue
        where = '%s/%s' % (decision.pool, decision.volume)
        before.append('%s: %s\n' % (where, 'quarantined' if decision.quarantined else 'in the pool'))
        if decision.action == QUARANTINED:
            after.append('%s: quarantined for %d s\n' % (where, decision.expires_at - decision.decided_at))
        elif decision.action == PURGED:
            after.append('%s: purged\n' % where)
        else:
            after.append('%s: in the pool\n' % where)
    return {'before': ''.join(before), 'after': ''.join(after), 'before_header': 'volumes (before)',
            'after_header': 'volumes (after)'}
