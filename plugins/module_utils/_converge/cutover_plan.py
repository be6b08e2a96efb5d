# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Planning the cutover of one instance to an rbd or logical pool: a pure function (plan_cutover) of what
Cutover.observe saw: import, verify, record and point the domain, or finalize."""

from __future__ import annotations


from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.instance_plan import InstancePlan, deferred
from ansible_collections.storagepools.libvirt.plugins.module_utils._nova import layout as nova_layout
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.domain import DomainDocument


class ImageImport:
    """One legacy disk and the volume it is imported into: ``state`` is absent | redo (a killed import) |
    done | changed (the legacy file differs since) | foreign (another's volume)."""

    def __init__(self, legacy: nova_layout.LegacyDisk, image: str, state: str) -> None:
        self.legacy = legacy
        self.image = image
        self.state = state
        # carried between the steps of a run
        self.identity: Optional[Dict[str, int]] = None
        self.size: Optional[int] = None
        self.record: Optional[Dict[str, Any]] = None


class CutoverObservation:
    """What Cutover.observe saw of one instance; ``after`` is its domain with the imported disks pointed at
    their volumes (what finalize looks at to find the legacy files it may remove)."""

    def __init__(self, instance_uuid: str, document: DomainDocument, after: DomainDocument,
                 imports: List[ImageImport], unrecorded: List[Tuple[str, Dict[str, Any]]],
                 removals: List[Tuple[str, str]], kept_disk_info: Optional[Dict[str, str]],
                 files: Optional[nova_layout.InstanceFiles] = None) -> None:
        self.instance_uuid = instance_uuid
        self.document = document
        self.after = after
        self.imports = imports
        self.unrecorded = unrecorded  # (volume, record) of volumes the domain already uses
        self.removals = removals  # (legacy path, volume) finalize removes
        self.kept_disk_info = kept_disk_info  # disk.info without the removed paths, when it changes
        self.files = files


def point_domain(document: DomainDocument, imports: List[ImageImport], target: Any) -> DomainDocument:
    """A copy of ``document`` whose imported disks name their volumes (``target.point``)."""
    after = document.copy()
    for item in imports:
        target.point(after.disk(item.legacy.target), item.image)
    return after


def plan_cutover(observed: CutoverObservation, target: Any, operations: Any = None) -> InstancePlan:
    """The journalled steps of one instance's import or finalize, from what was observed (pure).

    ``target`` names and locates the volumes; ``operations`` (a Cutover) does the steps when the plan is
    applied. A failing import removes the volumes this run made for the instance (undo); what comes after
    the imports stays when a later step fails."""
    plan = InstancePlan(observed.instance_uuid, observed.document, observed.after)
    for item in observed.imports:
        if item.state == 'done':
            continue
        name, undo = item.legacy.name, deferred(operations, 'unmake', item.image)
        if item.state == 'redo':
            plan.add('discard', deferred(operations, 'discard', item), disk=name, undo=undo)
        plan.add('import', deferred(operations, 'import_image', item), disk=name, undo=undo)
        plan.add('verify', deferred(operations, 'verify', item), disk=name)
        plan.add('record', deferred(operations, 'record_import', item), disk=name)
        plan.disks.append({'name': name, 'from': item.legacy.legacy_path, 'to': target.location(item.image),
                           'method': target.method, 'format': item.legacy.format,
                           'bytes': item.legacy.allocated_bytes()})
    plan.keep()
    for image, record in observed.unrecorded:
        plan.add('record', deferred(operations, 'write_record', image, record), disk=image)
    if plan.domain_changes:
        plan.add('domain', deferred(operations, 'define', observed.after))
    for path, image in observed.removals:
        plan.add('remove', deferred(operations, 'remove_legacy', observed.files, path), disk=image)
        plan.removed.append(path)
    if observed.kept_disk_info is not None:
        plan.add('disk_info', deferred(operations, 'write_disk_info', observed.files, observed.kept_disk_info))
    return plan
