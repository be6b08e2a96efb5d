# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Planning the adoption of one instance's legacy disks into a file pool: a pure function (plan_adoption)
of what Adopter.observe saw, the steps in the order docs/adoption.md gives."""

from __future__ import annotations


import os
from typing import Any, Dict, List, Optional

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import naming, records as metadata
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.instance_plan import (
    InstancePlan,
    deferred,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._nova import layout as nova_layout
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.domain import DomainDocument

# result ``method`` of a disk, also in its record
LINK, COPY, LIVE_COPY = 'link', 'copy', 'live-copy'


def file_identity(info: os.stat_result) -> Dict[str, int]:
    """What a record keeps of a legacy file to know it again: its size and mtime."""
    return {'size': info.st_size, 'mtime_ns': info.st_mtime_ns}


class DiskMove:
    """One legacy disk, where it goes, and what was observed of both (the planner reads only these)."""

    def __init__(self, instance_uuid: str, legacy: nova_layout.LegacyDisk, pool_dir: str, cache_pool: str,
                 in_pool: bool = False) -> None:
        self.legacy = legacy
        self.volume = naming.volume_name(instance_uuid, legacy.name)
        self.dest = os.path.join(pool_dir, self.volume)
        self.instance_uuid = instance_uuid
        self.cache_pool = cache_pool
        self.in_pool = in_pool  # the domain already uses the volume (a pivoted live copy), only finished here
        self.method: Optional[str] = None
        # observed (Adopter.observe_disk)
        self.dest_exists = False
        self.same_inode = False  # the destination is the legacy file's inode (a hard link)
        self.record: Optional[Dict[str, Any]] = None  # ours on the destination, once it is the data's
        self.linked = False  # the legacy name is our symlink to the destination
        self.fresh_copy = False  # a verified copy of the legacy file as it is now
        # carried between the steps of a run
        self.copied_stat: Optional[os.stat_result] = None
        self.live_size: Optional[int] = None

    def make_record(self, size: int, adopting: bool = False, source_stat: Optional[os.stat_result] = None
                    ) -> Dict[str, Any]:
        backing = None
        if self.legacy.backing:
            backing = {'pool': self.cache_pool, 'volume': os.path.basename(self.legacy.backing),
                       'path': self.legacy.backing, 'format': self.legacy.backing_format}
        source = {'path': self.legacy.legacy_path, 'instance_uuid': self.instance_uuid}
        record = metadata.make_record(self.legacy.format, size, source, backing=backing,
                                      method=self.method)
        if adopting:
            record['adopting'] = file_identity(source_stat)
        return record

    def ours(self, path: Any = None) -> Optional[Dict[str, Any]]:
        """The record on ``dest`` (or ``path``, a name or descriptor) when this adoption made it (else None)."""
        try:
            record = metadata.read_file_metadata(self.dest if path is None else path, self.dest)
        except (OSError, metadata.MetadataError):
            return None
        if record and record.get('source', {}).get('path') == self.legacy.legacy_path:
            return record
        return None

    def describe(self) -> Dict[str, Any]:
        moved = 0 if self.method == LINK else self.legacy.allocated_bytes()
        return {'name': self.legacy.name, 'from': self.legacy.legacy_path, 'to': self.dest,
                'method': self.method, 'format': self.legacy.format, 'bytes': moved}


class AdoptionObservation:
    """What Adopter.observe saw of one instance."""

    def __init__(self, instance_uuid: str, document: DomainDocument, live: bool, moves: List[DiskMove],
                 disk_info: Dict[str, str], domain: Any = None, files: Optional[nova_layout.InstanceFiles] = None
                 ) -> None:
        self.instance_uuid = instance_uuid
        self.document = document
        self.live = live
        self.moves = moves  # the legacy disks, then those already in the pool
        self.disk_info = disk_info
        self.domain = domain
        self.files = files


def _finish_steps(plan: InstancePlan, move: DiskMove, observed: AdoptionObservation, operations: Any,
                  record: bool) -> None:
    """What every disk ends with: its record, the backing format in its header, the legacy name's symlink."""
    name = move.legacy.name
    if record:
        plan.add('record', deferred(operations, 'record', move), disk=name)
    if move.legacy.needs_backing_format:
        plan.add('rebase', deferred(operations, 'rebase', move), disk=name)
    if not move.linked:
        plan.add('swap', deferred(operations, 'swap', move, observed.domain, observed.files), disk=name)


def _needs_record(move: DiskMove) -> bool:
    return move.record is None or bool(move.record.get('adopting'))


def plan_adoption(observed: AdoptionObservation, pool_name: str, disk_type: str, operations: Any = None
                  ) -> InstancePlan:
    """The journalled steps that adopt one instance into a file pool, from what was observed (pure).

    ``operations`` (an Adopter) does the steps when the plan is applied."""
    after = observed.document.copy()
    plan = InstancePlan(observed.instance_uuid, observed.document, after)
    for move in observed.moves:
        name, legacy = move.legacy.name, move.legacy
        if move.in_pool or legacy.moved:
            _finish_steps(plan, move, observed, operations, _needs_record(move))
        elif move.method == LIVE_COPY:
            plan.add('register', deferred(operations, 'register_live', move, observed.domain), disk=name)
            plan.add('blockcopy', deferred(operations, 'block_copy', move, observed.domain), disk=name)
            _finish_steps(plan, move, observed, operations, record=False)  # the block copy records it
        else:
            if not move.dest_exists:
                plan.add('register', deferred(operations, 'register', move), disk=name)
            if move.method == LINK:
                if not move.same_inode:
                    plan.add('link', deferred(operations, 'link', move), disk=name)
                _finish_steps(plan, move, observed, operations, _needs_record(move))
            else:
                if not move.fresh_copy:
                    plan.add('copy', deferred(operations, 'copy', move), disk=name,
                             undo=deferred(operations, 'discard_copy', move))
                    plan.add('verify', deferred(operations, 'verify', move), disk=name)
                    plan.keep()
                _finish_steps(plan, move, observed, operations, record=False)  # the copy records it
        disk = after.disk(legacy.target)
        if disk_type == 'volume':
            disk.point_at_volume(pool_name, move.volume)
        else:
            disk.point_at_file(move.dest)
        if legacy.backing:
            disk.set_backing_store(legacy.backing, legacy.backing_format)
        if not move.in_pool or any(step.disk == name for step in plan.steps) or move.dest not in observed.disk_info:
            plan.disks.append(move.describe())
    wanted = dict(observed.disk_info)
    for move in observed.moves:
        wanted.setdefault(move.legacy.legacy_path, move.legacy.format)
        wanted[move.dest] = move.legacy.format
    if wanted != observed.disk_info:
        plan.add('disk_info', deferred(operations, 'write_disk_info', observed.files, wanted))
    if plan.domain_changes:
        plan.add('domain', deferred(operations, 'define', after))
    return plan
