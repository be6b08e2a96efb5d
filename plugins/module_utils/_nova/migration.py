# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a destination host must have before Nova block-live-migrates an adopted instance (docs/live-migration.md).

Established by running Nova 34's own code and a real migration between two
libvirtds (tests/integration/test_nova_live_migration.py):

- Nova's destination ``pre_live_migration`` creates the disks of
  ``get_instance_disk_info`` at ``<instances_path>/<uuid>/<basename of the
  source path>`` (so ``<uuid>_disk``), never at the pool path, and writes a
  disk.info naming those files.
- The domain XML Nova sends (``migration.get_updated_guest_xml``) keeps the
  pool paths, and Nova migrates with ``VIR_MIGRATE_NON_SHARED_INC``, for
  which the destination's libvirt refuses to precreate a missing disk
  ("pre-creation of storage targets for incremental storage migration is not
  supported"). So each copied disk must already exist at its pool path on the
  destination: the same pool (same target path) active there, the volume
  precreated with the same format and size, and a qcow2 one over the same
  backing file (only the top layer is copied), which must exist there too.
- Nova copies only file and block disks that are neither readonly nor
  shareable (``_live_migration_copy_disk_paths``). A readonly disk (the
  config drive: libvirt marks every cdrom readonly) is opened on the
  destination as it is there: it must hold the source's bytes. A
  ``type='volume'`` disk is neither listed in the disk info nor copied: the
  destination opens whatever volume of that name it has, and nothing done
  beforehand keeps it current while the guest runs, so it is refused.

This module is pure: the facts come from the caller (``_libvirt/migration.py``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.domain import DomainDisk, DomainDocument

# libvirt's words when a copied disk is missing on the destination (VIR_MIGRATE_NON_SHARED_INC)
LIBVIRT_REFUSES_PRECREATE = 'pre-creation of storage targets for incremental storage migration is not supported'

AFTER_MIGRATION = (
    "on the destination, Nova's pre_live_migration leaves files named after the pool volumes in "
    "<instances_path>/{uuid}/ and a disk.info naming them; the legacy paths ({legacy}) do not exist there, so a "
    "hard reboot or start on the destination (which rebuilds the XML at the legacy paths) fails with "
    "DiskNotFound until they are links to the pool volumes again; remove those files and re-create the links "
    "and disk.info on the destination")


@dataclass(frozen=True)
class VolumeFacts:
    """One volume (or a source disk) as the check needs it. ``sha256``: only for disks the migration does not copy."""

    path: str
    format: Optional[str] = None
    capacity: Optional[int] = None
    backing_path: Optional[str] = None
    backing_format: Optional[str] = None
    sha256: Optional[str] = None


@dataclass(frozen=True)
class PoolFacts:
    """A destination pool: its definition's type and target, whether it runs, its volumes by name."""

    name: str
    type: Optional[str]
    target: Optional[str]
    active: bool
    volumes: Mapping[str, VolumeFacts] = field(default_factory=dict)


def is_copied(disk: DomainDisk) -> bool:
    """Nova's ``_live_migration_copy_disk_paths``: a file or block disk, neither readonly nor shareable."""
    element = disk.element
    return (disk.type in ('file', 'block') and element.find('readonly') is None
            and element.find('shareable') is None)


def disk_path(disk: DomainDisk) -> Optional[str]:
    return disk.source_file or disk.source_block


def backing_of(disk: DomainDisk) -> Optional[VolumeFacts]:
    """The first <backingStore> of a disk as the domain names it (None when it has none)."""
    node = disk.element.find('backingStore/source')
    if node is None or not node.get('file'):
        return None
    format_node = disk.element.find('backingStore/format')
    return VolumeFacts(path=node.get('file'), format=format_node.get('type') if format_node is not None else None)


def _normal(path: Optional[str]) -> Optional[str]:
    return os.path.normpath(path) if path else None


def pool_at(pools: Sequence[PoolFacts], directory: str) -> Optional[PoolFacts]:
    """The destination pool whose target is ``directory`` (libvirt looks a disk's pool up the same way)."""
    wanted = _normal(directory)
    return next((pool for pool in pools if _normal(pool.target) == wanted), None)


def _find_volume(pools: Sequence[PoolFacts], path: str, problems: List[str], what: str) -> Optional[VolumeFacts]:
    pool = pool_at(pools, os.path.dirname(path))
    if pool is None:
        problems.append('%s: the destination has no pool with target %s (define it there with the same target '
                        'and start it: virt_pool_ensure)' % (what, os.path.dirname(path)))
        return None
    if not pool.active:
        problems.append("%s: pool '%s' at %s is not active on the destination" % (what, pool.name, pool.target))
        return None
    volume = pool.volumes.get(os.path.basename(path))
    if volume is None:
        problems.append("%s: pool '%s' on the destination has no volume %s" % (what, pool.name,
                                                                               os.path.basename(path)))
    return volume


def _precreate_hint(source: VolumeFacts, copied: bool) -> str:
    hint = 'a %s volume of %s bytes' % (source.format, source.capacity)
    if source.backing_path:
        hint += ' over %s (%s)' % (source.backing_path, source.backing_format)
    return hint + ('' if copied else ", holding a copy of the source's bytes (the migration does not copy it)")


def _check_volume(source: VolumeFacts, found: VolumeFacts, copied: bool, problems: List[str], what: str) -> None:
    if found.format != source.format:
        problems.append('%s: the destination volume is %s, the domain opens it as %s'
                        % (what, found.format, source.format))
    if source.capacity is not None and found.capacity != source.capacity:
        problems.append('%s: the destination volume has %s bytes, the source disk %s' % (what, found.capacity,
                                                                                         source.capacity))
    if (found.backing_path, found.backing_format) != (source.backing_path, source.backing_format):
        problems.append('%s: the destination volume is backed by %s (%s), the source disk by %s (%s): only the top '
                        'layer is copied' % (what, found.backing_path, found.backing_format, source.backing_path,
                                             source.backing_format))
    if not copied and (source.sha256 is None or found.sha256 != source.sha256):
        problems.append("%s: not copied by the migration (readonly or shareable) and the destination volume does "
                        "not hold the source's bytes" % what)


def check_disk(disk: DomainDisk, source: VolumeFacts, pools: Sequence[PoolFacts],
               instance_dir: Optional[str]) -> Dict[str, Any]:
    """What one disk needs on the destination: ``problems`` (to fix first) and ``refused`` (cannot be fixed)."""
    path = disk_path(disk)
    report: Dict[str, Any] = dict(target=disk.target, device=disk.device, type=disk.type, path=path,
                                  copied=is_copied(disk), made_by_nova=False, needs=None, problems=[], refused=[])
    what = 'disk %s' % disk.target
    if disk.type == 'volume':
        report['refused'].append(
            "%s is type='volume' (%s): Nova's block migration neither lists nor copies it, and the destination opens "
            "whatever volume of that name it has; point it at its file first (adopt with disk_type: file)"
            % (what, '/'.join(part or '' for part in disk.source_volume or ())))
        return report
    if path is None:
        return report  # a network disk (rbd: shared, nothing to create) or an empty cdrom
    if instance_dir and _normal(os.path.dirname(path)) == _normal(instance_dir):
        report['made_by_nova'] = True  # a legacy path: pre_live_migration creates it there
        if not report['copied']:
            report['problems'].append('%s: a readonly legacy file; Nova creates it EMPTY on the destination and the '
                                      'migration does not copy it' % what)
        return report
    report['needs'] = _precreate_hint(source, report['copied'])
    found = _find_volume(pools, path, report['problems'], what)
    if found is not None:
        _check_volume(source, found, report['copied'], report['problems'], what)
    if source.backing_path:
        base = _find_volume(pools, source.backing_path, report['problems'], '%s backing file' % what)
        if base is not None and base.format != source.backing_format:
            report['problems'].append('%s backing file: the destination has it as %s, the chain needs %s'
                                      % (what, base.format, source.backing_format))
    return report


class MigrationDisks:
    """The disks of one domain XML as a block live migration sees them: what the caller must look up."""

    def __init__(self, domain_xml: str) -> None:
        self.document = DomainDocument(domain_xml)
        self.disks = self.document.disks()

    @property
    def targets(self) -> List[str]:
        """Disks whose size the check compares (file and block)."""
        return [disk.target for disk in self.disks if disk_path(disk) and disk.target]

    @property
    def uncopied_paths(self) -> List[str]:
        """Disks the migration does not copy: compared by content."""
        return [disk_path(disk) for disk in self.disks if disk_path(disk) and not is_copied(disk)]

    @property
    def directories(self) -> List[str]:
        """The destination directories (pool targets) the disks and their backing files need."""
        found = set()
        for disk in self.disks:
            backing = backing_of(disk)
            for path in (disk_path(disk), backing.path if backing else None):
                if path:
                    found.add(os.path.normpath(os.path.dirname(path)))
        return sorted(found)


def pool_facts(pools: Sequence[Mapping[str, Any]], digests: Mapping[str, Optional[str]]) -> List[PoolFacts]:
    """PoolFacts from plain dicts (``_libvirt/migration.py``), with the content digests of the uncopied disks."""
    made = []
    for pool in pools:
        volumes = {}
        for name, volume in pool.get('volumes', {}).items():
            path = volume.get('path')
            volumes[name] = VolumeFacts(sha256=digests.get(path) if path else None, **volume)
        made.append(PoolFacts(name=pool['name'], type=pool.get('type'), target=pool.get('target'),
                              active=bool(pool.get('active')), volumes=volumes))
    return made


def check_instance(domain_xml: str, capacities: Mapping[str, Optional[int]], source_digests: Mapping[str, Optional[str]],
                   pools: Sequence[PoolFacts], instances_path: Optional[str] = None) -> Dict[str, Any]:
    """Whether the destination (``pools``) is ready for a block live migration of the domain.

    ``capacities``: the source's disk sizes by target; ``source_digests``: sha256 of the disks not copied.
    """
    migrating = MigrationDisks(domain_xml)
    document = migrating.document
    instance_dir = os.path.join(instances_path, document.uuid) if instances_path and document.uuid else None
    disks = []
    for disk in migrating.disks:
        path = disk_path(disk)
        source = None
        if path:
            backing = backing_of(disk)
            source = VolumeFacts(path=path, format=disk.driver_format or 'raw', capacity=capacities.get(disk.target),
                                 backing_path=backing.path if backing else None,
                                 backing_format=backing.format if backing else None,
                                 sha256=source_digests.get(path))
        disks.append(check_disk(disk, source, pools, instance_dir))
    problems = [problem for disk in disks for problem in disk['problems']]
    refused = [reason for disk in disks for reason in disk['refused']]
    after = []
    pool_disks = [disk for disk in disks if disk['needs']]
    if pool_disks and instance_dir:
        prefix = '%s_' % document.uuid
        legacy = ', '.join(os.path.join(instance_dir, name[len(prefix):] if name.startswith(prefix) else name)
                           for name in (os.path.basename(disk['path']) for disk in pool_disks))
        after.append(AFTER_MIGRATION.format(uuid=document.uuid, legacy=legacy))
    return dict(uuid=document.uuid, name=document.name, ready=not problems and not refused, disks=disks,
                problems=problems, refused=refused, after_migration=after)
