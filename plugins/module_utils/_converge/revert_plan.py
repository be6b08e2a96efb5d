# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Planning the undoing of an adoption into a file pool (state: reverted): a pure function (plan_revert) of
what Reverter.observe saw and of the legacy layout the adoption kept in the journal (legacy_record).

The record is written by the adoption before its first step, in ``state_dir`` (root's alone), never read
from the nova user's instance directory: the legacy paths and formats, each disk's ``<disk>`` element as
it was, and disk.info's exact content.

Per disk, each step journalled first, so at no moment is the data without a name at its legacy path:

- same filesystem, ``link_back``: the pool volume's inode gets its legacy name again (a hard link renamed
  over the symlink: atomic, nothing copied);
- other filesystem, ``copy_back`` (the volume's CURRENT data, into a fresh temporary in the instance
  directory), ``verify_back`` (byte compare), ``swap_back`` (renamed over the symlink, while the domain is
  still shut off).

Then per instance ``domain`` (the domain's own XML with only those disks' type, source and backingStore as
they were; everything else as libvirt has it now) and ``disk_info`` (its content before the adoption, or,
when Nova changed it since, the current one without the pool paths), and last per disk ``unrecord`` (the
record's xattr, on the inode the legacy name now shares) and ``remove`` (the volume, through libvirt so
that the pool stops listing it).

A cutover into an rbd or logical pool (plan_cutover_revert) keeps its legacy files until finalize: the domain
goes back to a file that reads as its image, and an image whose data the legacy file lacks (the guest wrote it
since, or, with ``force``, finalize removed the file) is copied back first: ``copy_back``, ``verify_back``,
``swap_back``, then ``domain``, ``disk_info`` and per image ``remove``.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional

from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.adopt_plan import COPY, LINK
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.instance_plan import (
    InstancePlan,
    deferred,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._nova.layout import Skip
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.domain import DomainDocument

LEGACY_RECORD = 'legacy'  # the journal's kept fact: the layout before the adoption
LEGACY_RECORD_VERSION = 1
# where the domain's disk points (DiskRevert.domain_uses)
USES_VOLUME, USES_LEGACY = 'volume', 'legacy'


def legacy_record(instance_dir: str, pool_name: str, pool_dir: str, disks: List[Dict[str, Any]],
                  document: DomainDocument, disk_info: Optional[bytes], disk_info_mode: Optional[int]
                  ) -> Dict[str, Any]:
    """What a revert needs, taken before an adoption's first step. ``disks``: per legacy disk its name,
    target, legacy_path, format, volume and dest; each gets its ``<disk>`` element as it is now."""
    kept = []
    for disk in disks:
        element = document.disk(disk['target'])
        kept.append(dict(disk, element=element.to_xml() if element is not None else None))
    return {'version': LEGACY_RECORD_VERSION, 'instance_dir': instance_dir, 'pool': pool_name, 'pool_dir': pool_dir,
            'disks': kept, 'disk_info': None if disk_info is None else disk_info.decode('utf-8'),
            'disk_info_mode': disk_info_mode}


class DiskRevert:
    """One adopted disk, as recorded before the adoption, and what was observed of it now."""

    def __init__(self, recorded: Dict[str, Any], method: str) -> None:
        self.name = recorded['name']
        self.target = recorded['target']
        self.legacy_path = recorded['legacy_path']
        self.format = recorded['format']
        self.volume = recorded['volume']
        self.dest = recorded['dest']
        self.element = recorded['element']
        # a cutover's record (absent from older ones): the base of an overlay, and what a copy back writes
        self.backing = recorded.get('backing')
        self.backing_format = recorded.get('backing_format')
        self.virtual_size: Optional[int] = recorded.get('virtual_size')  # else the image's size (observe)
        self.owner = recorded.get('owner')  # [uid, gid] of the legacy file; else as observe finds
        self.mode = recorded.get('mode')
        self.method = method  # LINK (same filesystem), COPY, or a cutover's un-import
        # observed (Reverter.observe)
        self.legacy_is_file = False  # the legacy name is a regular file (not our symlink, not missing)
        self.volume_exists = False
        self.volume_ours = False  # this adoption's: its record, its inode at the legacy name, or empty
        self.volume_recorded = False  # the volume carries our record (an xattr on its inode)
        self.same_inode = False  # the legacy name is the volume's inode
        self.equal_bytes = False  # another filesystem: the legacy file holds the volume's bytes (rbd, LVM: reads
        # the same as the image)
        self.legacy_unchanged = False  # rbd, LVM: the legacy file's size and mtime are what was imported
        self.domain_uses: Optional[str] = None  # USES_VOLUME, USES_LEGACY, or None (something else)
        self.domain_source = ''  # what the domain's disk points at, for a reason
        # carried between the steps of a run (Reverter)
        self.volume_fd: Optional[int] = None
        self.base_fd: Optional[int] = None  # a cutover's copy back of an overlay: its base, opened and checked
        self.temporary: Optional[str] = None
        self.temporary_fd: Optional[int] = None

    def describe(self) -> Dict[str, Any]:
        return {'name': self.name, 'from': self.dest, 'to': self.legacy_path, 'method': self.method,
                'format': self.format}


class RevertObservation:
    """What Reverter.observe saw of one instance."""

    def __init__(self, instance_uuid: str, document: DomainDocument, record: Dict[str, Any],
                 disks: List[DiskRevert], disk_info: Optional[bytes], domain: Any = None, files: Any = None) -> None:
        self.instance_uuid = instance_uuid
        self.document = document
        self.record = record
        self.disks = disks
        self.disk_info = disk_info  # disk.info's content now (None: there is none)
        self.domain = domain
        self.files = files


def wanted_disk_info(record: Dict[str, Any], current: Optional[bytes]) -> Optional[bytes]:
    """disk.info's content after the revert: as it was before the adoption when what Nova keeps in it now
    (without the pool paths) is the same, else the current entries without the pool paths."""
    recorded = record.get('disk_info')
    if current is None:
        return None if recorded is None else recorded.encode('utf-8')
    try:
        entries = json.loads(current.decode('utf-8')) if current.strip() else {}
    except ValueError:
        raise Skip('disk.info is not JSON; Nova would regenerate it by probing, refusing to guess')
    if not isinstance(entries, dict):
        raise Skip('disk.info is not a JSON object')
    pool_dir = record['pool_dir']
    legacy = dict((path, value) for path, value in entries.items() if os.path.dirname(path) != pool_dir)
    if recorded is not None:
        before = json.loads(recorded)
        for disk in record['disks']:  # entries a cutover's finalize took out with the legacy files come back
            if disk['legacy_path'] in before:
                legacy.setdefault(disk['legacy_path'], before[disk['legacy_path']])
        if before == legacy:
            return recorded.encode('utf-8')
    return json.dumps(legacy).encode('utf-8')


def _restore_disk_info(plan: InstancePlan, observed: RevertObservation, operations: Any) -> None:
    wanted = wanted_disk_info(observed.record, observed.disk_info)
    if wanted != observed.disk_info:
        mode = observed.record.get('disk_info_mode') or 0o644
        plan.add('disk_info', deferred(operations, 'write_disk_info', observed.files, wanted, mode))


def _check(disk: DiskRevert, pool_name: str) -> None:
    """Raise Skip when the disk's state is not one a revert (or a killed one) leaves: nothing is guessed."""
    if disk.domain_uses is None:
        raise Skip('disk %s (%s) points at %s, neither its pool volume %s nor its legacy path %s; it changed '
                   'since the adoption' % (disk.name, disk.target, disk.domain_source or 'nothing', disk.dest,
                                           disk.legacy_path))
    if disk.volume_exists and not disk.volume_ours and (disk.domain_uses == USES_VOLUME or not disk.legacy_is_file):
        raise Skip("the disks pool '%s' has a volume '%s' this adoption did not make; left alone"
                   % (pool_name, disk.volume))
    if disk.legacy_is_file:
        if disk.volume_exists and disk.domain_uses == USES_VOLUME and not (disk.same_inode or disk.equal_bytes):
            raise Skip('%s is a file that differs from %s, which the domain uses; refusing to choose between them'
                       % (disk.legacy_path, disk.dest))
    elif not disk.volume_exists:
        raise Skip('neither %s nor %s holds disk %s' % (disk.legacy_path, disk.dest, disk.name))


def plan_revert(observed: RevertObservation, pool_name: str, operations: Any = None) -> InstancePlan:
    """The journalled steps that bring one instance's legacy layout back from a file pool (pure).

    ``operations`` (a Reverter) does the steps when the plan is applied."""
    after = observed.document.copy()
    plan = InstancePlan(observed.instance_uuid, observed.document, after)
    finishing = []
    for disk in observed.disks:
        _check(disk, pool_name)
        name = disk.name
        shares_inode = disk.same_inode
        if not disk.legacy_is_file:  # the data is only in the pool volume
            if disk.method == LINK:
                plan.add('link_back', deferred(operations, 'link_back', disk, observed.files), disk=name)
                shares_inode = True
            else:
                plan.add('copy_back', deferred(operations, 'copy_back', disk, observed.files), disk=name,
                         undo=deferred(operations, 'discard_temporary', disk, observed.files))
                plan.add('verify_back', deferred(operations, 'verify_back', disk), disk=name)
                plan.add('swap_back', deferred(operations, 'swap_back', disk, observed.domain, observed.files),
                         disk=name)
                plan.keep()
            plan.disks.append(disk.describe())
        if disk.volume_exists and disk.volume_ours:
            if shares_inode and disk.volume_recorded:
                finishing.append(('unrecord', deferred(operations, 'unrecord', disk), name))
            finishing.append(('remove', deferred(operations, 'remove', disk), name))
        after.disk(disk.target).restore_source(disk.element)
    if plan.domain_changes:
        plan.add('domain', deferred(operations, 'define', after))
    _restore_disk_info(plan, observed, operations)
    for action, do, name in finishing:
        plan.add(action, do, disk=name)
    return plan


def _cutover_disk(disk: DiskRevert, pool_name: str, force: bool) -> bool:
    """Whether the image's data goes back into the legacy file first (copy back); raises Skip when neither
    holding on to the image nor going back is provably right."""
    if disk.domain_uses is None or (disk.volume_exists and not disk.volume_ours and disk.domain_uses == USES_VOLUME):
        _check(disk, pool_name)
    if disk.domain_uses != USES_VOLUME:  # the domain reads the legacy file again (a killed revert): the image is stale
        if not disk.legacy_is_file:
            raise Skip('%s, which the domain uses, is gone' % disk.legacy_path)
        return False
    if not disk.volume_exists:
        raise Skip('the domain uses %s, which is gone' % disk.dest)
    if disk.legacy_is_file:
        if disk.equal_bytes:  # as imported, or a killed revert's verified copy back
            return False
        if disk.legacy_unchanged:  # the instance ran on the image since its import
            return True
        raise Skip('%s changed after its import into %s and reads differently; refusing to choose between them'
                   % (disk.legacy_path, disk.dest))
    if not force:
        raise Skip('%s is gone (removed by finalize?) or not a regular file: the data is only in %s. Set force to '
                   'copy it back (verified) and revert, or keep the instance on the pool' % (disk.legacy_path, disk.dest))
    return True


def plan_cutover_revert(observed: RevertObservation, pool_name: str, operations: Any = None,
                        force: bool = False) -> InstancePlan:
    """The journalled steps that point an instance imported into an rbd or logical pool back at its legacy
    files and remove the images (pure). A legacy file that reads as its image is used as it is; the data of an
    image the guest wrote since its import (or, with ``force``, whose legacy file finalize removed) is copied
    back first: ``copy_back`` (into a root-owned temporary beside the legacy name, in the legacy format),
    ``verify_back`` (the guest views compared), ``swap_back`` (Nova's owner and mode, renamed over the name)."""
    after = observed.document.copy()
    plan = InstancePlan(observed.instance_uuid, observed.document, after)
    removals = []
    for disk in observed.disks:
        copy = _cutover_disk(disk, pool_name, force)
        if copy:
            plan.add('copy_back', deferred(operations, 'copy_back', disk, observed.files), disk=disk.name,
                     undo=deferred(operations, 'discard_temporary', disk, observed.files))
            plan.add('verify_back', deferred(operations, 'verify_back', disk), disk=disk.name)
            plan.add('swap_back', deferred(operations, 'swap_back', disk, observed.domain, observed.files),
                     disk=disk.name)
            plan.keep()
        if disk.volume_exists and disk.volume_ours:
            removals.append(disk)
            plan.disks.append(dict(disk.describe(), method=COPY) if copy else disk.describe())
        after.disk(disk.target).restore_source(disk.element, driver_and_auth=True)
    if plan.domain_changes:
        plan.add('domain', deferred(operations, 'define', after))
    _restore_disk_info(plan, observed, operations)
    for disk in removals:
        plan.add('remove', deferred(operations, 'remove_image', disk), disk=disk.name)
    return plan
