# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Undoing the adoption of a shut-off Nova instance into a file pool (legacy_disk_adopt state: reverted).

Observed first (Reverter.observe: the journal's legacy record, the domain's inactive XML, the legacy names
and the pool volumes, each volume opened once), planned by revert_plan.plan_revert (the steps are
described there), then applied on the skeleton of instance.py. The nova user owns the instance directory:
every name there is used relative to the directory descriptor InstanceFiles opened without following a
symlink, temporaries are random and O_EXCL, a symlink planted at a legacy name is replaced itself (rename),
never followed. What the layout was comes only from the journal in ``state_dir``.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Any, Dict, List

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import (
    records as metadata,
    space as limits,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.file import empty_placeholder
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.adopt_plan import (
    COPY,
    LINK,
    file_identity,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.instance import (
    InstancePlan,
    InstanceWorkflow,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.revert_plan import (
    LEGACY_RECORD,
    USES_LEGACY,
    USES_VOLUME,
    DiskRevert,
    RevertObservation,
    plan_cutover_revert,
    plan_revert,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.atomic_file import (
    discard_temporary,
    link_atomically,
    make_temporary,
    rename_into_place,
    write_atomically,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._images import copy as data_copy
from ansible_collections.storagepools.libvirt.plugins.module_utils._images import inspect as image_inspect
from ansible_collections.storagepools.libvirt.plugins.module_utils._images import qemu_img
from ansible_collections.storagepools.libvirt.plugins.module_utils._images.qemu_img import pinned_image
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt import domain as libvirt_domain
from ansible_collections.storagepools.libvirt.plugins.module_utils._nova import layout as nova_layout
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.domain import DomainDocument

_VOLUME_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _pool_disk(document: DomainDocument, instance_uuid: str, pool_name: str, pool_dir: str) -> bool:
    """Whether the domain has a ``{uuid}_{name}`` disk of the pool (by path or by pool/volume)."""
    for disk in document.disks():
        if disk.source_volume and disk.source_volume[0] == pool_name \
                and (disk.source_volume[1] or '').startswith(instance_uuid + '_'):
            return True
        path = disk.source_file or ''
        if os.path.dirname(path) == pool_dir and os.path.basename(path).startswith(instance_uuid + '_'):
            return True
    return False


class Reverter(InstanceWorkflow):
    """Bring an instance's legacy layout back from a file pool (dir, fs, netfs)."""

    done_result, nothing_result = 'reverted', 'not_adopted'
    forget_when_done = (LEGACY_RECORD,)

    def __init__(self, conn: Any, instances_path: str, disks_pool: Any, state_dir: str,
                 nova_conf: nova_layout.NovaConf, check_mode: bool) -> None:
        super().__init__(conn, instances_path, state_dir, nova_conf, check_mode)
        self.pool = disks_pool  # an Endpoint of a file pool
        self.opened: List[DiskRevert] = []

    @staticmethod
    def nova_settings() -> None:
        return None

    def find_disks(self, instance_uuid: str, files: nova_layout.InstanceFiles, document: DomainDocument) -> list:
        return []  # the disks come from the journal's record (observe)

    def release(self) -> None:
        for disk in self.opened:
            for name in ('volume_fd', 'temporary_fd', 'base_fd'):
                if getattr(disk, name) is not None:
                    os.close(getattr(disk, name))
                    setattr(disk, name, None)
        self.opened = []

    # -- observe, plan ------------------------------------------------------

    def observe(self, instance_uuid: str, files: nova_layout.InstanceFiles, loaded: Dict[str, Any],
                disks: list) -> Any:
        document = loaded['document']
        record = self._legacy_record(instance_uuid, files, document, self.pool.target)
        if record is None:
            return {'result': 'not_adopted'}
        same_fs = os.fstat(files.fd).st_dev == os.stat(self.pool.target).st_dev
        reverts = []
        for recorded in record['disks']:
            disk = DiskRevert(recorded, LINK if same_fs else COPY)
            self.opened.append(disk)
            self._observe_disk(disk, files, document, same_fs)
            reverts.append(disk)
        content, _mode = nova_layout.read_disk_info_bytes(files.fd)
        return RevertObservation(instance_uuid, document, record, reverts, content, loaded['domain'], files)

    def _legacy_record(self, instance_uuid: str, files: nova_layout.InstanceFiles, document: DomainDocument,
                       pool_dir: Any) -> Any:
        """The journal's record of the layout before the adoption, None when nothing of the instance is in the
        pool; raises Skip when it is in the pool but the record is missing or for another pool or directory."""
        record = self.journal.kept(instance_uuid, LEGACY_RECORD)
        if record is None:
            if self._adopted_without_record(instance_uuid, files, document):
                raise nova_layout.Skip('state_dir has no record of its layout before the adoption (adopted by a '
                                       'version that kept none, or its journal was moved aside); nothing is '
                                       'guessed: revert it by hand (docs/adoption.md)')
            return None
        if record.get('pool') != self.pool.name or record.get('pool_dir') != pool_dir:
            raise nova_layout.Skip("it was adopted into pool '%s', not disks_pool '%s'"
                                   % (record.get('pool'), self.pool.name))
        if record.get('instance_dir') != files.path:
            raise nova_layout.Skip('it was adopted from %s, not %s' % (record.get('instance_dir'), files.path))
        return record

    def _adopted_without_record(self, instance_uuid, files, document):
        linked = any(files.lstat(name) is not None and stat.S_ISLNK(files.lstat(name).st_mode)
                     and os.path.dirname(files.readlink(name)) == self.pool.target
                     for name in os.listdir(files.fd) if nova_layout.DISK_NAME_RE.match(name))
        return linked or _pool_disk(document, instance_uuid, self.pool.name, self.pool.target)

    def _observe_disk(self, disk: DiskRevert, files: nova_layout.InstanceFiles, document: DomainDocument,
                      same_fs: bool) -> None:
        found = files.lstat(disk.name)
        disk.legacy_is_file = found is not None and stat.S_ISREG(found.st_mode)
        try:
            disk.volume_fd = os.open(disk.dest, _VOLUME_FLAGS)  # the pool's directory is root's
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise nova_layout.Skip('its pool volume %s %s' % (disk.dest, nova_layout.why_not_opened(exc)))
        if disk.volume_fd is not None:
            info = os.fstat(disk.volume_fd)
            if not stat.S_ISREG(info.st_mode):
                raise nova_layout.Skip('its pool volume %s is not a regular file' % disk.dest)
            disk.volume_exists = True
            disk.same_inode = disk.legacy_is_file and (found.st_dev, found.st_ino) == (info.st_dev, info.st_ino)
            try:
                record = metadata.read_file_metadata(disk.volume_fd, disk.dest)
            except (OSError, metadata.MetadataError):
                record = None
            disk.volume_recorded = bool(record) and record.get('source', {}).get('path') == disk.legacy_path
            disk.volume_ours = disk.volume_recorded or disk.same_inode or empty_placeholder(disk.dest, info.st_size)
            if disk.legacy_is_file and not same_fs and not disk.same_inode:
                legacy_fd, _info = nova_layout.open_regular_file(disk.name, files.fd)
                try:
                    disk.equal_bytes = data_copy.same_bytes(legacy_fd, disk.volume_fd)
                finally:
                    os.close(legacy_fd)
        current = document.disk(disk.target)
        if current is None:
            raise nova_layout.Skip('the domain has no disk %s (%s) any more' % (disk.target, disk.name))
        if current.source_file == disk.dest or current.source_volume == (self.pool.name, disk.volume):
            disk.domain_uses = USES_VOLUME
        elif current.source_file == disk.legacy_path:
            disk.domain_uses = USES_LEGACY
        disk.domain_source = current.source_file or '%s/%s' % (current.source_volume or ('?', '?'))

    def plan(self, observed: RevertObservation) -> InstancePlan:
        return plan_revert(observed, self.pool.name, self)

    def require_space(self, observed: RevertObservation, plan: InstancePlan) -> None:
        """Copies back onto the instance directory's filesystem must fit, before the first byte."""
        copied = set(step.disk for step in plan.steps if step.action == 'copy_back')
        copies = [disk for disk in observed.disks if disk.name in copied]
        if not copies:
            return
        needed = sum(self.copy_need(disk) for disk in copies)
        files = observed.files
        limits.require_space(needed, limits.free_in_directory(files.path, files.fd), files.path,
                             'instances_path', 'copying instance %s back (%d disks)'
                             % (observed.instance_uuid, len(copies)))

    @staticmethod
    def copy_need(disk: DiskRevert) -> int:
        """The bytes a copy back of ``disk`` takes in the instance directory (a sparse copy of the volume)."""
        return limits.thin_file_need(disk.volume_fd, os.fstat(disk.volume_fd).st_size)

    # -- the steps ----------------------------------------------------------

    def link_back(self, disk: DiskRevert, files: nova_layout.InstanceFiles) -> None:
        """The volume's inode (opened in the pool) gets its legacy name again, renamed over what is there."""
        link_atomically(disk.volume_fd, disk.legacy_path, dir_fd=files.fd)

    def copy_back(self, disk: DiskRevert, files: nova_layout.InstanceFiles) -> None:
        """The volume's current data into a fresh temporary beside the legacy name, its owner and mode."""
        disk.temporary, disk.temporary_fd = make_temporary(disk.legacy_path, files.fd)
        info = os.fstat(disk.volume_fd)
        try:
            data_copy.copy_file(disk.volume_fd, disk.temporary_fd, allow_reflink=False)
            os.fchown(disk.temporary_fd, info.st_uid, info.st_gid)
            os.fchmod(disk.temporary_fd, info.st_mode & 0o7777)
            os.fsync(disk.temporary_fd)
        except OSError as exc:  # the plan's undo (discard_temporary) removes the copy
            raise StoragePoolsError('instances_path: copying %s back to %s failed: %s; the partial copy was '
                                    'removed, the volume is as it was' % (disk.dest, disk.legacy_path, exc.strerror))

    def verify_back(self, disk: DiskRevert) -> None:
        if not data_copy.same_bytes(disk.volume_fd, disk.temporary_fd):
            raise StoragePoolsError('verify_back: the copy of %s differs from it; the volume is kept' % disk.dest)

    def swap_back(self, disk: DiskRevert, domain: Any, files: nova_layout.InstanceFiles) -> None:
        """The verified copy renamed over the legacy name, while the domain is still shut off."""
        if libvirt_domain.is_active(domain):
            self.discard_temporary(disk, files)
            raise StoragePoolsError('running: the domain was started while %s was being copied back (by Nova?); '
                                    'it runs on the pool volume, the copy was removed. Shut it off and rerun'
                                    % disk.dest)
        rename_into_place(disk.temporary, disk.legacy_path, files.fd)
        disk.temporary = None
        placed, made = files.lstat(disk.name), os.fstat(disk.temporary_fd)
        if placed is None or (placed.st_dev, placed.st_ino) != (made.st_dev, made.st_ino):
            raise StoragePoolsError('swap_back: after the rename %s is not the verified copy (its temporary was '
                                    'swapped meanwhile, by the nova user?); the domain stays on %s'
                                    % (disk.legacy_path, disk.dest))

    def discard_temporary(self, disk: DiskRevert, files: nova_layout.InstanceFiles) -> None:
        if disk.temporary is not None:
            discard_temporary(disk.temporary, files.fd)
            disk.temporary = None

    def define(self, after: DomainDocument) -> None:
        libvirt_domain.define(self.conn, after.to_xml())

    def write_disk_info(self, files: nova_layout.InstanceFiles, content: bytes, mode: int) -> None:
        path = os.path.join(files.path, nova_layout.DISK_INFO)
        write_atomically(path, content, mode=mode, owner_like=path, dir_fd=files.fd)

    def unrecord(self, disk: DiskRevert) -> None:
        """The record goes from the inode the legacy name now shares (a legacy file carries none)."""
        try:
            os.removexattr(disk.volume_fd, metadata.XATTR_NAME)
        except OSError as exc:
            if exc.errno != errno.ENODATA:
                raise

    def remove(self, disk: DiskRevert) -> None:
        """The volume goes through libvirt, so the pool no longer lists it (a name libvirt does not know is
        unlinked in the pool's directory, root's)."""
        if not libvirt_domain.remove_volume(self.pool, disk.volume) and os.path.lexists(disk.dest):
            os.unlink(disk.dest)


class CutoverReverter(Reverter):
    """Point an instance imported into an rbd or logical pool back at its legacy files, then remove the images.

    A legacy file is used as it is when it reads as its image (``qemu-img compare``, formats explicit, an
    overlay's base pinned); else, when it is as imported (the guest wrote the image since) or, with ``force``,
    gone (finalize removed it), the image's data is copied back first: written through the backend's qemu
    filename (nothing here knows rbd from LVM) into a root-owned O_EXCL temporary in the instance directory,
    in the legacy format (an overlay re-created on its unchanged base), compared, then given Nova's owner and
    mode and renamed over the legacy name while the domain is shut off."""

    def __init__(self, conn: Any, instances_path: str, pool: Any, target: Any, state_dir: str,
                 nova_conf: nova_layout.NovaConf, check_mode: bool, force: bool = False) -> None:
        super().__init__(conn, instances_path, pool, state_dir, nova_conf, check_mode)
        self.target = target  # the pool's storage backend (RbdBackend, LogicalBackend)
        self.force = force

    def close(self) -> None:
        self.target.close()

    def _adopted_without_record(self, instance_uuid, files, document):
        return any(self.target.domain_volume(disk, instance_uuid) for disk in document.disks())

    def observe(self, instance_uuid: str, files: nova_layout.InstanceFiles, loaded: Dict[str, Any],
                disks: list) -> Any:
        document = loaded['document']
        record = self._legacy_record(instance_uuid, files, document, None)
        if record is None:
            return {'result': 'not_adopted'}
        reverts = []
        for recorded in record['disks']:
            disk = DiskRevert(recorded, 'un-import')
            self.opened.append(disk)
            self._observe_import(instance_uuid, disk, files, document)
            reverts.append(disk)
        content, _mode = nova_layout.read_disk_info_bytes(files.fd)
        return RevertObservation(instance_uuid, document, record, reverts, content, loaded['domain'], files)

    def _observe_import(self, instance_uuid, disk, files, document):
        found = files.lstat(disk.name)
        disk.legacy_is_file = found is not None and stat.S_ISREG(found.st_mode)
        disk.volume_exists = disk.volume in self.target.names()
        image_record = (self.target.read_record(disk.volume) if disk.volume_exists else None) or {}
        disk.volume_ours = (image_record.get('source') or {}).get('path') == disk.legacy_path
        current = document.disk(disk.target)
        if current is None:
            raise nova_layout.Skip('the domain has no disk %s (%s) any more' % (disk.target, disk.name))
        if self.target.domain_volume(current, instance_uuid) == disk.volume:
            disk.domain_uses = USES_VOLUME
        elif current.source_file == disk.legacy_path:
            disk.domain_uses = USES_LEGACY
        disk.domain_source = current.source_file or current.rbd_image or current.source_block or ''
        if disk.owner is None:  # a record of an older version: the legacy file's, else the directory's
            kept = found if disk.legacy_is_file else os.fstat(files.fd)
            disk.owner = [kept.st_uid, kept.st_gid]
            disk.mode = stat.S_IMODE(found.st_mode) if disk.legacy_is_file else 0o644
        if not (disk.volume_exists and disk.volume_ours and disk.domain_uses == USES_VOLUME):
            return
        if disk.virtual_size is None:
            disk.virtual_size = self.target.size(disk.volume)
        if disk.backing:
            try:
                disk.base_fd = files.open_checked_base(disk.backing, disk.backing_format)
            except nova_layout.Skip as exc:
                raise nova_layout.Skip('disk %s backs onto %s' % (disk.name, exc))
        if not disk.legacy_is_file:
            return
        fd, info = nova_layout.open_regular_file(disk.name, files.fd)
        try:
            disk.legacy_unchanged = image_record.get('imported_from') == file_identity(info)
            if self._backs_onto_its_base(disk, fd):
                disk.equal_bytes = self._reads_as_image(disk, fd, 'disks_pool')
        finally:
            os.close(fd)

    @staticmethod
    def _backs_onto_its_base(disk, fd):
        """Whether a qcow2 legacy file (changed since the import, maybe a killed revert's copy) names the
        recorded base and nothing else qemu would open (a data file); raw: always."""
        if disk.format != 'qcow2':
            return True
        try:
            _size, backing, _format = image_inspect.read_qcow2_overlay(disk.legacy_path, fd=fd)
        except image_inspect.ImageRefused:
            return False
        if backing and not os.path.isabs(backing):
            backing = os.path.join(os.path.dirname(disk.legacy_path), backing)
        return (os.path.normpath(backing) if backing else None) == disk.backing

    def _reads_as_image(self, disk, fd, option):
        """Whether the legacy-format file ``fd`` (an overlay on its pinned base) reads as the image, all of it
        (an image larger than the legacy disk, an LV of whole extents, must hold only zeroes past its end)."""
        source, fds = pinned_image(fd, disk.format, (disk.base_fd, disk.backing_format) if disk.backing else None)
        return qemu_img.same_content(source, disk.format, self.target.qemu_target(disk.volume), 'raw', option,
                                     size=self.target.size(disk.volume), pass_fds=fds)

    def plan(self, observed: RevertObservation) -> InstancePlan:
        return plan_cutover_revert(observed, self.pool.name, self, self.force)

    @staticmethod
    def copy_need(disk: DiskRevert) -> int:
        """An image's guest view in a new file (its allocation unknown here: the whole virtual size)."""
        return limits.thin_file_need(None, disk.virtual_size, new_qcow2=disk.format == 'qcow2')

    # -- the copy back ------------------------------------------------------

    def copy_back(self, disk: DiskRevert, files: nova_layout.InstanceFiles) -> None:
        """The image's current data, in the legacy format, into a fresh root-owned temporary beside the legacy
        name (an overlay: only what differs from its base)."""
        disk.temporary, disk.temporary_fd = make_temporary(disk.legacy_path, files.fd)
        backing = (disk.base_fd, disk.backing, disk.backing_format) if disk.backing else None
        try:
            qemu_img.write_file(self.target.qemu_target(disk.volume), disk.virtual_size, disk.temporary_fd,
                                disk.format, 'copy_back', backing=backing)
        except OSError as exc:  # the plan's undo (discard_temporary) removes the copy
            raise StoragePoolsError('instances_path: copying %s back to %s failed: %s; the partial copy was '
                                    'removed, the image is as it was' % (disk.dest, disk.legacy_path, exc.strerror))

    def verify_back(self, disk: DiskRevert) -> None:
        if not self._reads_as_image(disk, disk.temporary_fd, 'verify_back'):
            raise StoragePoolsError('verify_back: the copy of %s into %s reads differently (was the domain started, '
                                    'or did the guest write past the %d bytes of the legacy disk?); the copy was '
                                    'removed, the image is kept' % (disk.dest, disk.legacy_path, disk.virtual_size))

    def swap_back(self, disk: DiskRevert, domain: Any, files: nova_layout.InstanceFiles) -> None:
        """Nova's owner and mode (root's until now, while the nova user could not write it), then renamed over
        the legacy name (a symlink planted there is replaced itself)."""
        os.fchown(disk.temporary_fd, disk.owner[0], disk.owner[1])
        os.fchmod(disk.temporary_fd, disk.mode & 0o7777)  # after fchown, which may clear set-id bits
        os.fsync(disk.temporary_fd)
        super().swap_back(disk, domain, files)

    def remove_image(self, disk: DiskRevert) -> None:
        self.target.remove(disk.volume)
