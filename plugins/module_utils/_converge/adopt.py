# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Adopting a shut-off Nova instance's legacy disks into a file pool (docs/adoption.md).

Observed first (Adopter.observe), then planned by a pure function
(adopt_plan.plan_adoption), then applied (instance_plan.py). Per disk, in this
order, each step journalled first and each resumable from what the
filesystem shows, so at no moment is the data without a name at its legacy
path:

- register: libvirt creates an empty placeholder volume ``{uuid}_{name}`` in
  the disks pool, so the pool lists the volume without a refresh (libvirt's
  refresh probes files and would follow a guest-written qcow2 header);
- same filesystem, method ``link``: the legacy file is hard-linked to a
  temporary name in the pool, renamed over the placeholder (O(1), the data
  now has both names); other filesystem, method ``copy``: ``copy`` the data
  extents into the placeholder, fsync, ``verify`` by byte compare;
- record: the metadata xattr (format, size, source, backing);
- rebase: a qcow2 overlay whose header lacks the backing format gets it
  (``qemu-img rebase -u``: header only, the base stays where it is);
- swap: an absolute symlink to the volume replaces the legacy path
  atomically (a link renamed over it), so Nova's paths keep working. A copy
  is swapped in only while the domain is still shut off (Nova may start it
  during the copy).

Before the first byte moves, an instance whose copies do not all fit in the
pool's free space is refused, saying what it needs and what is free
(_backends/space.py); a copy that fails anyway (ENOSPC from another writer) is
removed and its legacy file stays as it was.

Then per instance: disk.info gains the pool paths (same formats), and the
domain's own inactive XML is redefined with only those disks' type, source
and backingStore changed.
"""

from __future__ import annotations

import json
import os
import stat
from typing import Any, Dict, List, Tuple

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import (
    records as metadata,
    space as limits,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.file import empty_placeholder
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.instance import (
    InstancePlan,
    InstanceWorkflow,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.atomic_file import (
    flush,
    link_atomically,
    symlink_atomically,
    write_atomically,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._images import copy as data_copy
from ansible_collections.storagepools.libvirt.plugins.module_utils._images.inspect import read_qcow2_overlay
from ansible_collections.storagepools.libvirt.plugins.module_utils._images.qemu_img import (
    set_backing_format,
    virtual_size,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt import domain as libvirt_domain
from ansible_collections.storagepools.libvirt.plugins.module_utils._nova import layout as nova_layout
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.domain import DomainDocument
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.volume import VolumeDefinition

# result ``method`` of a disk, also in its record
LINK, COPY, LIVE_COPY = 'link', 'copy', 'live-copy'
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.adopt_plan import (
    AdoptionObservation,
    DiskMove,
    file_identity,
    plan_adoption,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.revert_plan import (
    LEGACY_RECORD,
    legacy_record,
)


LIBVIRT_REMEMBERED_OWNER = 'trusted.libvirt.security.dac'  # libvirt's remember_owner: "+uid:+gid"


def resting_owner(fd: int) -> Tuple[int, int]:
    """(uid, gid) a disk has while its guest is shut off: while it runs, libvirt's DAC driver has chowned it
    to the qemu user and remembers the owner it restores afterwards (remember_owner); else its own."""
    info = os.fstat(fd)
    try:
        remembered = os.getxattr(fd, LIBVIRT_REMEMBERED_OWNER).decode('ascii').strip()
        uid, gid = (int(part.lstrip('+')) for part in remembered.split(':'))
        return uid, gid
    except (OSError, ValueError):
        return info.st_uid, info.st_gid


def _take_resting_owner(path, legacy_fd):
    """Give a live copy's destination the legacy file's resting owner and mode before libvirt labels it for
    the guest: libvirt remembers that owner and gives it back when the guest stops (the volume libvirt made
    is root's, 0600, which the nova user could not read)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fchown(fd, *resting_owner(legacy_fd))
        os.fchmod(fd, os.fstat(legacy_fd).st_mode & 0o7777)
    finally:
        os.close(fd)


def _same_inode(path, info):
    """Whether the name ``path`` (not followed) is the file ``info`` describes."""
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        return False
    return (found.st_dev, found.st_ino) == (info.st_dev, info.st_ino)


class Adopter(InstanceWorkflow):
    """Adoption into a file pool (dir, fs, netfs), complete in one run."""

    def __init__(self, conn: Any, instances_path: str, disks_pool: Any, cache_pool: str, disk_type: str,
                 state_dir: str, nova_conf: nova_layout.NovaConf, check_mode: bool, running: str = 'skip',
                 live_timeout: int = 3600) -> None:
        super().__init__(conn, instances_path, state_dir, nova_conf, check_mode)
        self.pool = disks_pool  # an Endpoint of a file pool
        self.pool_dir = disks_pool.target
        self.cache_pool = cache_pool
        self.disk_type = disk_type
        self.running = running
        self.live_timeout = live_timeout

    @staticmethod
    def nova_settings() -> None:
        """None: into a file pool Nova's configuration stays as it is (its paths work through the links)."""
        return None

    def allow_running(self) -> bool:
        return self.running == 'live'

    # -- observe, plan ------------------------------------------------------

    def observe(self, instance_uuid: str, files: nova_layout.InstanceFiles, loaded: Dict[str, Any],
                disks: List[nova_layout.LegacyDisk]) -> Any:
        document, live = loaded['document'], loaded['live']
        in_pool = self._pool_moves(instance_uuid, files, document)
        if not disks and not in_pool:
            if any(self._in_pool(disk) for disk in document.disks()):
                return {'result': 'already_adopted'}
            elsewhere = self._adopted_elsewhere(instance_uuid, document)
            if elsewhere:
                return {'result': 'skipped', 'reason': "its disks are already pool volumes elsewhere (%s), not in "
                                                       "the disks pool '%s'" % (', '.join(elsewhere), self.pool.name)}
            return {'result': 'skipped', 'reason': 'no legacy disk in %s' % files.path}
        moves = [DiskMove(instance_uuid, legacy, self.pool.target, self.cache_pool) for legacy in disks]
        same_fs = os.fstat(files.fd).st_dev == limits.device_of(self.pool.target)  # check mode: not made yet
        for move in moves:
            if move.legacy.moved:
                move.method = (move.ours() or {}).get('method')
                continue
            if os.path.lexists(move.dest) and not self._resumable(move):
                return {'result': 'skipped', 'reason': "the disks pool already has a volume '%s' with other data"
                                                       % move.volume}
            move.method = LIVE_COPY if live else LINK if same_fs else COPY
        for move in moves + in_pool:
            self._observe_disk(move, files)
        return AdoptionObservation(instance_uuid, document, live, moves + in_pool,
                                   nova_layout.read_disk_info(files.path, files.fd), loaded['domain'], files)

    def _observe_disk(self, move, files):
        legacy = move.legacy
        move.dest_exists = os.path.lexists(move.dest)
        move.record = move.ours()
        move.linked = self._linked(move, files)
        if move.in_pool or legacy.moved:
            return  # the data is in the pool; what is left is what finishes it
        move.same_inode = _same_inode(move.dest, legacy.stat)
        if move.method == LINK and not move.same_inode:
            move.record = move.ours(legacy.fd)  # what the link brings along
        if move.method == COPY and move.record and not move.record.get('adopting'):
            move.fresh_copy = move.record.get('copied_from') == file_identity(os.fstat(legacy.fd))

    def plan(self, observed: AdoptionObservation) -> InstancePlan:
        return plan_adoption(observed, self.pool.name, self.disk_type, self)

    def before_apply(self, observed: AdoptionObservation, plan: InstancePlan) -> None:
        """Keep the legacy layout in the journal (root's) while it is still wholly legacy - no disk moved, no
        pool path in disk.info or the domain: what a revert (state: reverted) brings back."""
        if any(move.in_pool or move.legacy.moved for move in observed.moves) \
                or any(os.path.dirname(path) == self.pool.target for path in observed.disk_info) \
                or any(self._in_pool(disk) for disk in observed.document.disks()):
            return  # a run under way kept it before its first step
        content, mode = nova_layout.read_disk_info_bytes(observed.files.fd)
        disks = [{'name': move.legacy.name, 'target': move.legacy.target, 'legacy_path': move.legacy.legacy_path,
                  'format': move.legacy.format, 'volume': move.volume, 'dest': move.dest} for move in observed.moves]
        self.journal.keep(observed.instance_uuid, LEGACY_RECORD,
                          legacy_record(observed.files.path, self.pool.name, self.pool.target, disks,
                                        observed.document, content, mode))

    def require_space(self, observed: AdoptionObservation, plan: InstancePlan) -> None:
        """Refuse the whole instance, before anything is registered, when its copies do not fit."""
        moves = [move for move in observed.moves if not move.in_pool]
        needed = 0
        for move in moves:
            if move.legacy.moved or move.method == LINK:
                continue  # a hard link: no data moves
            need = limits.thin_file_need(move.legacy.fd, move.legacy.stat.st_size)  # a copy of the data extents
            if move.dest_exists:  # a killed run's copy, rewritten in place
                need -= limits.allocated_bytes(move.dest) or 0
            needed += max(need, 0)
        self.check_space(needed, limits.free_in_directory(self.pool.target),
                         "pool '%s' (%s)" % (self.pool.name, self.pool.target),
                         'copying instance %s (%d disks)' % (observed.instance_uuid, len(moves)))

    @staticmethod
    def _linked(move, files):
        """Whether the legacy name already is our link to the pool volume."""
        found = files.lstat(move.legacy.name)
        return found is not None and stat.S_ISLNK(found.st_mode) and files.readlink(move.legacy.name) == move.dest

    def _pool_moves(self, instance_uuid, files, document):
        """Disks the domain already uses from the pool as ``{uuid}_{name}`` volumes this collection made.

        A recorded backing goes back into the domain only as what the volume's own header and ``_base`` show:
        the record is root's, but a base is re-checked where it is used (raises Skip)."""
        moves = []
        for disk in document.disks():
            volume = os.path.basename(disk.source_file or '') or (disk.source_volume or (None, ''))[1]
            if not (self._in_pool(disk) and volume.startswith(instance_uuid + '_')):
                continue
            name = volume[len(instance_uuid) + 1:]
            legacy = nova_layout.LegacyDisk(name, disk.target, os.path.join(files.path, name), disk.driver_format,
                                            moved=True)
            move = DiskMove(instance_uuid, legacy, self.pool.target, self.cache_pool, in_pool=True)
            record = move.ours()
            if record is None:
                continue
            self._check_recorded_backing(move, record.get('backing') or {}, files)
            move.method = record.get('method')
            moves.append(move)
        return moves

    @staticmethod
    def _check_recorded_backing(move, backing, files):
        legacy = move.legacy
        if not backing:
            return
        if legacy.format != 'qcow2':
            raise nova_layout.Skip('the record of %s names a backing file, but the volume is %s'
                                   % (move.dest, legacy.format))
        fd = os.open(move.dest, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            _size, header_backing, header_format = read_qcow2_overlay(move.dest, fd=fd)
        finally:
            os.close(fd)
        path, backing_format = backing.get('path'), backing.get('format')
        if header_backing != path or (header_format or backing_format) != backing_format \
                or backing_format not in ('raw', 'qcow2'):
            raise nova_layout.Skip('the record of %s names backing %s (%s), its header %s (%s); refusing both'
                                   % (move.dest, path, backing_format, header_backing, header_format))
        try:
            os.close(files.open_base(path)[0])  # a regular file of _base, no link
        except nova_layout.Skip as exc:
            raise nova_layout.Skip('%s backs onto %s' % (move.dest, exc))
        legacy.backing, legacy.backing_format = path, backing_format

    @staticmethod
    def _adopted_elsewhere(instance_uuid, document):
        """Where the domain's ``{uuid}_{name}`` disks are, when they are not in this run's pool."""
        found = []
        for disk in document.disks():
            if disk.source_volume and disk.source_volume[1].startswith(instance_uuid + '_'):
                found.append("pool '%s'" % disk.source_volume[0])
            elif disk.source_file and os.path.basename(disk.source_file).startswith(instance_uuid + '_'):
                found.append(os.path.dirname(disk.source_file))
        return sorted(set(found))

    def _in_pool(self, disk):
        if disk.source_volume:
            return disk.source_volume[0] == self.pool.name
        return bool(disk.source_file) and os.path.dirname(disk.source_file) == self.pool.target

    def _resumable(self, move):
        """A destination that exists is ours when it holds the legacy file's inode, our record, or is the
        placeholder the run under way registered and nothing wrote since (an old run's journal never vouches:
        the operator may have rolled it back and reused the name)."""
        if _same_inode(move.dest, move.legacy.stat) or move.ours() is not None:
            return True
        if self.journal.under_way(move.instance_uuid, 'register', disk=move.legacy.name) is None:
            return False
        return empty_placeholder(move.dest, max(move.legacy.stat.st_size, 1))

    # -- the steps (only through the descriptors legacy_disks opened: a name the nova user swaps meanwhile is
    # never used) ------------------------------------------------------------

    def register(self, move: DiskMove) -> None:
        """An empty placeholder volume, so the pool lists it without a refresh."""
        self.pool.pool.createXML(VolumeDefinition(move.volume, max(move.legacy.stat.st_size, 1), 'raw').to_xml(), 0)

    def link(self, move: DiskMove) -> None:
        try:
            link_atomically(move.legacy.fd, move.dest)  # the inode checked, whatever its name points at now
        except FileNotFoundError:  # its last name is gone (linkat cannot revive an unlinked inode)
            self._gone(move)

    def _copying(self, move, work):
        """``work()``, its OSError in an operator's words."""
        legacy = move.legacy
        try:
            work()
        except OSError as exc:  # the plan's undo (discard_copy) removes the copy
            raise StoragePoolsError('disks_pool: copying %s into %s failed: %s; the partial copy was removed, %s '
                                    'is as it was' % (legacy.legacy_path, move.dest, exc.strerror,
                                                      legacy.legacy_path)) from exc

    def copy(self, move: DiskMove) -> None:
        legacy = move.legacy

        def work():
            info = move.copied_stat = os.fstat(legacy.fd)
            metadata.write_file_metadata(move.dest, move.make_record(info.st_size, adopting=True, source_stat=info))
            self.progress.begin('copy', legacy.name, info.st_size)
            data_copy.copy_file(legacy.fd, move.dest, allow_reflink=False, progress=self.progress.advance)
            os.chown(move.dest, info.st_uid, info.st_gid)
            os.chmod(move.dest, info.st_mode & 0o7777)
        self._copying(move, work)

    def verify(self, move: DiskMove) -> None:
        """Byte compare, then the record that says which legacy file (size, mtime) the copy is of."""
        legacy = move.legacy

        def work():
            info = move.copied_stat
            self.progress.begin('verify', legacy.name, info.st_size)
            if not data_copy.same_bytes(legacy.fd, move.dest, progress=self.progress.advance):
                raise StoragePoolsError('verify: the copy of %s differs from its source; the source is kept'
                                        % legacy.legacy_path)
            record = move.make_record(info.st_size)
            record['copied_from'] = file_identity(info)
            metadata.write_file_metadata(move.dest, record)
        self._copying(move, work)

    def discard_copy(self, move: DiskMove) -> None:
        """Remove the (partial or stale) copy in ``move.dest``: only the legacy file holds the data, and a
        full pool should get its space back."""
        if not libvirt_domain.remove_volume(self.pool, move.volume, quiet=True) and os.path.lexists(move.dest):
            os.unlink(move.dest)  # a pool refresh drops the name

    def _gone(self, move):
        """The legacy file lost its last name while we held it open (deleted, or replaced by another file):
        what this run made for it goes, nothing is adopted."""
        libvirt_domain.remove_volume(self.pool, move.volume)
        raise StoragePoolsError('%s was deleted or replaced while it was being adopted; nothing of it was '
                                'adopted. Rerun to look at what is there now' % move.legacy.legacy_path)

    def register_live(self, move: DiskMove, domain: Any) -> None:
        """The placeholder of a block copy: the legacy disk's format and backing, its resting owner."""
        legacy = move.legacy
        libvirt_domain.cancel_block_job(domain, legacy.target)  # a killed run's copy: start over
        size = move.live_size = virtual_size(legacy.legacy_path, legacy.format, fd=legacy.fd)
        libvirt_domain.remove_volume(self.pool, move.volume)  # a killed run's copy: start over
        self.pool.pool.createXML(VolumeDefinition(move.volume, size, legacy.format, backing_path=legacy.backing,
                                                  backing_format=legacy.backing_format).to_xml(), 0)
        metadata.write_file_metadata(move.dest, move.make_record(size, adopting=True, source_stat=legacy.stat))
        _take_resting_owner(move.dest, legacy.fd)

    def block_copy(self, move: DiskMove, domain: Any) -> None:
        """blockcopy into the placeholder (shallow onto the same base for overlays) and pivot."""
        legacy = move.legacy
        target = DomainDocument.disk_source_xml(move.dest, legacy.format)
        failure = libvirt_domain.block_copy(domain, legacy.target, target, bool(legacy.backing), self.live_timeout)
        if failure is not None:
            raise StoragePoolsError('running: the live copy of %s did not finish in %d s; it was cancelled, the '
                                    'guest still runs on the legacy file' % (legacy.legacy_path, self.live_timeout),
                                    libvirt_error=failure)
        metadata.write_file_metadata(move.dest, move.make_record(move.live_size))

    def record(self, move: DiskMove) -> None:
        metadata.write_file_metadata(move.dest, move.make_record(virtual_size(move.dest, move.legacy.format)))

    def rebase(self, move: DiskMove) -> None:
        set_backing_format(move.dest, move.legacy.backing, move.legacy.backing_format, option='disks_pool')
        move.legacy.needs_backing_format = False

    def swap(self, move: DiskMove, domain: Any, files: nova_layout.InstanceFiles) -> None:
        """The legacy name becomes an absolute symlink to the volume (renamed over it: atomic)."""
        legacy = move.legacy
        if move.method == COPY and not move.in_pool:
            if os.fstat(legacy.fd).st_nlink == 0:
                self._gone(move)
            # the swap on the other filesystem unlinks the legacy file: the copy's name must be on disk
            # first (one filesystem's journal orders its own renames, two filesystems do not)
            flush(os.path.dirname(move.dest))
            if libvirt_domain.is_active(domain):
                # the guest now writes into the legacy file, so the copy is stale: swapping it in would lose
                # those writes. It goes (a rerun copies afresh once the domain is shut off, rather than
                # trusting a size and mtime check that cannot see every write), the legacy file stays.
                self.discard_copy(move)
                raise StoragePoolsError('running: the domain was started while %s was being copied into the '
                                        'pool (by Nova?); it keeps running on its legacy file, the copy was '
                                        'removed. Shut it off and rerun' % legacy.legacy_path)
        symlink_atomically(move.dest, legacy.legacy_path, dir_fd=files.fd)

    def write_disk_info(self, files: nova_layout.InstanceFiles, wanted: Dict[str, str]) -> None:
        """disk.info keeps its legacy keys and gains the pool paths, same formats (so Nova never probes)."""
        path = os.path.join(files.path, nova_layout.DISK_INFO)
        write_atomically(path, json.dumps(wanted).encode('utf-8'), mode=0o644, owner_like=path, dir_fd=files.fd)

    def define(self, after: DomainDocument) -> None:
        libvirt_domain.define(self.conn, after.to_xml())
