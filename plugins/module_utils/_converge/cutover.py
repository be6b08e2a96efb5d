# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The two-phase cutover of a host's file-disk instances to an rbd or logical pool (docs/adoption.md).

Nova's ``images_type`` is host-wide: once it says rbd (or lvm), every
domain Nova regenerates points at ``<pool>/<uuid>_<name>`` (or
``/dev/<vg>/<uuid>_<name>``), and before that, at the legacy files. So a
host moves in two runs:

1. import (``finalize: false``), per shut-off instance and disk: a raw rbd
   image or thick LV holding the guest's view (an overlay flattened with
   its ``_base`` file, formats explicit), compared with its source, then
   recorded (image-meta / LV tags, including the legacy file's size and
   mtime); then the domain's own XML gets network disks with Ceph auth (or
   block disks), nothing else changes. The legacy files stay, untouched, so
   a host whose nova.conf still says qcow2 keeps working on them. With lvm
   the config drive stays a file, as Nova keeps it.
2. finalize (``finalize: true``), after nova.conf is switched: the legacy
   files are removed, but only those whose size and mtime still match
   what was imported (else the instance is reported and nothing goes).

Observed first (Cutover.observe), planned by a pure function (cutover_plan.py),
then applied (_converge/instance.py) onto the pool's storage backend
(_backends: rbd.RbdBackend, logical.LogicalBackend); this file holds the
workflow only. Every step is journalled; a killed import is recognised (its
record says ``adopting``, or the journal shows the image was being made)
and redone; a failed one removes the volumes it made for the instance.
"""

from __future__ import annotations

import json
import os
import stat
from typing import Any, Dict, List

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import records as metadata
from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.base import (
    legacy_source as _legacy_source,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.adopt_plan import file_identity
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.cutover_plan import (
    CutoverObservation,
    ImageImport,
    plan_cutover,
    point_domain,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.instance import (
    InstancePlan,
    InstanceWorkflow,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.revert_plan import (
    LEGACY_RECORD,
    legacy_record,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.atomic_file import write_atomically
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._images import qemu_img
from ansible_collections.storagepools.libvirt.plugins.module_utils._images.qemu_img import virtual_size
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt import domain as libvirt_domain
from ansible_collections.storagepools.libvirt.plugins.module_utils._nova import layout as nova_layout
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.domain import DomainDocument


def _file_identity(fd):
    """What an import recorded of its legacy file (opened by legacy_disks; never followed through a name)."""
    return file_identity(os.fstat(fd))


class Cutover(InstanceWorkflow):
    """Import and finalize for one host, onto ``target`` (the pool's storage backend: RbdBackend or LogicalBackend) of pool ``pool``."""

    result_template = dict(InstanceWorkflow.result_template, removed=[])

    def __init__(self, conn: Any, instances_path: str, pool: Any, target: Any, state_dir: str,
                 nova_conf: nova_layout.NovaConf, check_mode: bool, finalize: bool) -> None:
        super().__init__(conn, instances_path, state_dir, nova_conf, check_mode)
        self.pool = pool
        self.target = target
        self.finalize = finalize
        self._records: Dict[str, Any] = {}

    def close(self) -> None:
        self.target.close()

    def allow_running(self) -> bool:
        return self.finalize

    @staticmethod
    def report(plan: InstancePlan) -> Dict[str, Any]:
        return dict(InstanceWorkflow.report(plan), removed=plan.removed)

    # -- nova.conf ----------------------------------------------------------

    def nova_settings(self) -> Dict[str, Dict[str, str]]:
        """The nova.conf values under which Nova regenerates exactly the disks this cutover writes."""
        return self.target.nova_settings()

    def check_nova_conf(self) -> None:
        """finalize only after nova.conf is switched: else a hard reboot would want the removed files."""
        if not self.nova_conf.found:
            raise StoragePoolsError('finalize: %s does not exist, so nothing shows that Nova uses the pool yet; '
                                    'the legacy files stay' % self.nova_conf.path)
        wrong = []
        for section, values in self.nova_settings().items():
            for key, value in values.items():
                current = self.nova_conf.get(section, key)
                if key == 'force_raw_images':
                    ok = self.nova_conf.force_raw_images
                else:
                    ok = current == value
                if not ok:
                    wrong.append('[%s] %s = %s (it says %s)' % (section, key, value, current))
        if wrong:
            raise StoragePoolsError("finalize: %s is not switched to pool '%s' yet; set %s and restart "
                                    'nova-compute, then finalize. The legacy files stay until then'
                                    % (self.nova_conf.path, self.pool.name, '; '.join(wrong)))

    # -- observe, plan ------------------------------------------------------

    def observe(self, instance_uuid: str, files: nova_layout.InstanceFiles, loaded: Dict[str, Any],
                disks: List[nova_layout.LegacyDisk]) -> Any:
        document = loaded['document']
        disks = [legacy for legacy in disks if self.target.moves(legacy)]
        if loaded['live'] and disks:
            return {'result': 'skipped',
                    'reason': 'the domain is running on its legacy files; shut it off, import, then finalize'}
        imports = []
        for legacy in disks:
            image = self.target.volume_name(instance_uuid, legacy.name)
            state = self._image_state(instance_uuid, image, legacy)
            if state == 'foreign':
                return {'result': 'skipped', 'reason': "the disks pool already has a volume '%s' with other data"
                                                       % image}
            if state == 'changed':
                return {'result': 'skipped', 'reason': (
                    "%s changed after its import into %s '%s' (was the instance started on its legacy "
                    "files?); nothing was done. Remove that volume to import the disk again"
                    % (legacy.legacy_path, self.target.kind, image))}
            imports.append(ImageImport(legacy, image, state))
        after = point_domain(document, imports, self.target)
        removals = self._removals(instance_uuid, files, after) if self.finalize else []
        if isinstance(removals, dict):
            return removals
        stale_info = self._stale_disk_info(files, instance_uuid, after, removals) if self.finalize else {}
        if loaded['live'] and removals:
            in_use = set(disk.source_file for disk in DomainDocument(libvirt_domain.live_xml(loaded['domain'])).disks())
            if in_use.intersection(path for path, _image in removals):
                return {'result': 'skipped', 'reason': 'the running domain still uses its legacy files; finalize '
                                                       'leaves them'}
        return CutoverObservation(instance_uuid, document, after, imports, self._unrecorded(instance_uuid, after),
                                  removals, stale_info.get('kept'), files)

    def plan(self, observed: CutoverObservation) -> InstancePlan:
        return plan_cutover(observed, self.target, self)

    def before_apply(self, observed: CutoverObservation, plan: InstancePlan) -> None:
        """Keep the legacy layout in the journal while the domain uses no image yet: what a revert (state:
        reverted, before finalize) points the domain back at."""
        if self.finalize or not observed.imports or self._pool_disks(observed.instance_uuid, observed.document):
            return
        content, mode = nova_layout.read_disk_info_bytes(observed.files.fd)
        disks = [{'name': item.legacy.name, 'target': item.legacy.target, 'legacy_path': item.legacy.legacy_path,
                  'format': item.legacy.format, 'backing': item.legacy.backing,
                  'backing_format': item.legacy.backing_format, 'volume': item.image,
                  'dest': self.target.location(item.image),
                  # what a copy back (after finalize) writes: the disk's size, Nova's owner and mode
                  'virtual_size': virtual_size(item.legacy.legacy_path, item.legacy.format, fd=item.legacy.fd),
                  'owner': [item.legacy.stat.st_uid, item.legacy.stat.st_gid],
                  'mode': stat.S_IMODE(item.legacy.stat.st_mode)} for item in observed.imports]
        self.journal.keep(observed.instance_uuid, LEGACY_RECORD,
                          legacy_record(observed.files.path, self.pool.name, None, disks, observed.document,
                                        content, mode))

    def require_space(self, observed: CutoverObservation, plan: InstancePlan) -> None:
        """Refuse the instance before its first image is made when all its imports do not fit."""
        pending = [item for item in observed.imports if item.state != 'done']
        if not pending:
            return
        needed = sum(self.target.space_needed(item.legacy) for item in pending)
        freed = sum(self.target.space_freed(item.image) for item in pending if item.state == 'redo')
        self.check_space(needed, self.target.space_available() + freed, self.target.where(),
                         'importing instance %s (%d disks)' % (observed.instance_uuid, len(pending)))

    def _exists(self, image):
        return image in self.target.names()  # one listing per run: a rerun over a whole host stays fast

    def _recorded(self, image):
        """An image's record, read once per run (writes go through write_record)."""
        if image not in self._records:
            self._records[image] = self.target.read_record(image)
        return self._records[image]

    def _image_state(self, instance_uuid, image, legacy):
        if not self._exists(image):
            return 'absent'
        record = self._recorded(image)
        if record is None or record.get('source', {}).get('path') != legacy.legacy_path:
            if record is None and self._killed_import(instance_uuid, image, legacy):
                return 'redo'
            return 'foreign'
        if record.get('adopting'):
            return 'redo'
        if record.get('imported_from') != _file_identity(legacy.fd):
            return 'changed'
        return 'done'

    def _killed_import(self, instance_uuid, image, legacy):
        """An image without a record is ours only when the run under way journalled its import (a finished
        run's never counts: it may have been rolled back and the name reused) and it is still exactly the
        empty image that import created (killed between creating and recording it)."""
        if self.journal.under_way(instance_uuid, 'import', disk=legacy.name) is None:
            return False
        return self.target.untouched(image, virtual_size(legacy.legacy_path, legacy.format, fd=legacy.fd))

    # -- the steps --------------------------------------------------------------

    def discard(self, item: ImageImport) -> None:
        """A killed import's volume goes; the import starts over."""
        self.target.remove(item.image)
        self._records.pop(item.image, None)

    def import_image(self, item: ImageImport) -> None:
        """qemu reads the overlay and its base through our descriptors, formats explicit (_legacy_source): no
        probe, and nothing is written into the nova user's files."""
        legacy = item.legacy
        item.identity = _file_identity(legacy.fd)
        size = virtual_size(legacy.legacy_path, legacy.format, fd=legacy.fd)
        item.size = self.target.create(item.image, size)  # LVM rounds up to whole extents
        self._records.pop(item.image, None)
        item.record = self._record(legacy, item.size)
        self.write_record(item.image, dict(item.record, adopting=item.identity))
        self.progress.begin('import', legacy.name, size)
        self.target.write(item.image, legacy, progress=self.progress.advance)

    def verify(self, item: ImageImport) -> None:
        source, fds = _legacy_source(item.legacy)
        qemu_img.run(qemu_img.compare_argv(source, item.legacy.format, self.target.qemu_target(item.image), 'raw'),
                     option='verify', pass_fds=fds, size=item.size)

    def record_import(self, item: ImageImport) -> None:
        self.write_record(item.image, dict(item.record, imported_from=item.identity))

    def write_record(self, image: str, record: Dict[str, Any]) -> None:
        self.target.write_record(image, record)
        self._records[image] = record

    def unmake(self, image: str) -> None:
        """Undo of a failed import: its volume goes (best effort: the next run discards what its record calls
        unfinished); the legacy files were never touched."""
        if self._exists(image):
            self.target.remove(image)
            self._records.pop(image, None)

    def define(self, after: DomainDocument) -> None:
        libvirt_domain.define(self.conn, after.to_xml())

    @staticmethod
    def remove_legacy(files: nova_layout.InstanceFiles, path: str) -> None:
        os.unlink(os.path.basename(path), dir_fd=files.fd)  # a name in the instance directory, nowhere else

    @staticmethod
    def write_disk_info(files: nova_layout.InstanceFiles, kept: Dict[str, str]) -> None:
        disk_info = os.path.join(files.path, nova_layout.DISK_INFO)
        write_atomically(disk_info, json.dumps(kept).encode('utf-8'), mode=0o644, owner_like=disk_info,
                         dir_fd=files.fd)

    def _record(self, legacy, size):
        source = {'path': legacy.legacy_path, 'instance_uuid': os.path.basename(os.path.dirname(legacy.legacy_path)),
                  'format': legacy.format}
        if legacy.backing:
            source['flattened_from'] = {'path': legacy.backing, 'format': legacy.backing_format}
        return metadata.make_record('raw', size, source, method=self.target.method)

    def _pool_disks(self, instance_uuid, document):
        """(disk, volume name) of the domain's disks on the target's ``<uuid>_*`` volumes."""
        found = [(disk, self.target.domain_volume(disk, instance_uuid)) for disk in document.disks()]
        return [(disk, name) for disk, name in found if name]

    def _unrecorded(self, instance_uuid, document):
        """Volumes of an instance already on the backend (Nova's images_type=rbd or lvm) that have no record
        yet: only the record is written; the domain already points at them."""
        missing = []
        for _disk, image in self._pool_disks(instance_uuid, document):
            if not self._exists(image):
                continue  # this run imports it (or the domain names an image that is gone: not ours to fix)
            if self._recorded(image) is None:
                source = {'instance_uuid': instance_uuid, 'volume': self.target.location(image)}
                missing.append((image, metadata.make_record('raw', self.target.size(image), source,
                                                            method='in-place')))
        return missing

    def _legacy_name(self, instance_uuid, image):
        """The Nova disk name whose volume is ``image`` (names of the instance directory are never taken from a
        record: image-meta is writable by any holder of the pool's cephx key), or None."""
        prefix = instance_uuid + '_'
        if not image.startswith(prefix):
            return None
        name = self.target.disk_name(image[len(prefix):])
        if not nova_layout.DISK_NAME_RE.match(name) or self.target.volume_name(instance_uuid, name) != image:
            return None
        return name

    def _removals(self, instance_uuid, files, document):
        """Legacy files finalize may remove: [(path, disk name)], or a skip result when one changed since.

        Each path is ``<instances_path>/<uuid>/<disk name>`` derived from the volume's name; a record naming
        any other path removes nothing."""
        removals = []
        for _disk, image in self._pool_disks(instance_uuid, document):
            if not self._exists(image):
                continue
            record = self._recorded(image) or {}
            name = self._legacy_name(instance_uuid, image)
            if name is None or record.get('adopting'):
                continue
            path = os.path.join(files.path, name)
            if (record.get('source') or {}).get('path') != path:
                continue  # not imported from this instance's legacy file: not ours to remove
            found = files.lstat(name)
            if found is None:
                continue
            try:
                fd, _info = nova_layout.open_regular_file(name, files.fd)
            except OSError:
                return {'result': 'skipped', 'reason': '%s is no longer the imported file; finalize leaves it' % path}
            try:
                identity = _file_identity(fd)
            finally:
                os.close(fd)
            if record.get('imported_from') != identity:
                return {'result': 'skipped', 'reason': (
                    "%s changed after its import into %s '%s'; finalize removes nothing of this instance. "
                    "Check which holds the guest's data" % (path, self.target.kind, image))}
            removals.append((path, image))
        return removals

    def _stale_disk_info(self, files, instance_uuid, document, removals):
        """{kept: disk.info without the imported legacy paths that are (or are about to be) gone}, or {}."""
        info = nova_layout.read_disk_info(files.path, files.fd)
        going = set(path for path, _image in removals)
        for _disk, image in self._pool_disks(instance_uuid, document):
            name = self._legacy_name(instance_uuid, image) if self._exists(image) else None
            if name is not None and files.lstat(name) is None:
                going.add(os.path.join(files.path, name))
        kept = dict((path, fmt) for path, fmt in info.items() if path not in going)
        return {'kept': kept} if kept != info else {}
