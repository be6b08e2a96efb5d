# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Adopting a shut-off Nova instance's legacy disks into a file pool (docs/adoption.md).

Per disk, in this order, each step journalled first and each resumable from
what the filesystem shows, so at no moment is the data without a name at
its legacy path:

- register: libvirt creates an empty placeholder volume ``{uuid}_{name}`` in
  the disks pool, so the pool lists the volume without a refresh (libvirt's
  refresh probes files and would follow a guest-written qcow2 header);
- same filesystem: ``link`` the legacy file to a temporary name in the pool
  and rename it over the placeholder (O(1), the data now has both names);
  other filesystem: ``copy`` the data extents into the placeholder, fsync,
  ``verify`` by byte compare;
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
import time

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import (
    records as metadata,
    space as limits,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.atomic_file import (
    flush,
    link_atomically,
    symlink_atomically,
    write_atomically,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.journal import Journal
from ansible_collections.storagepools.libvirt.plugins.module_utils._images import copy as data_copy
from ansible_collections.storagepools.libvirt.plugins.module_utils._images.inspect import read_qcow2_overlay
from ansible_collections.storagepools.libvirt.plugins.module_utils._images.qemu_img import (
    set_backing_format,
    virtual_size,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.connection import (
    error_code,
    error_text,
    libvirt,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._nova import layout as nova_layout
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml import tree as xml_tree
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.domain import DomainDocument
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.volume import VolumeDefinition


def empty_placeholder(path, size):
    """Whether ``path`` is still the placeholder registered for a disk of ``size`` bytes: a regular file
    (never followed) of that size or empty, without a single data extent and without a record of ours."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size not in (0, size):
            return False
        if any(True for _extent in data_copy.data_extents(fd, info.st_size)):
            return False
        return not any('storagepools' in name for name in os.listxattr(fd))
    finally:
        os.close(fd)


LIBVIRT_REMEMBERED_OWNER = 'trusted.libvirt.security.dac'  # libvirt's remember_owner: "+uid:+gid"


def resting_owner(fd):
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


def with_legacy_disks(instances_path, instance_uuid, document, nova_conf, pool_dir, result, work):
    """``work(files, disks)`` on the instance's directory and legacy disks, each opened once (nova_layout);
    ``result`` as skipped where they cannot be; everything opened is closed afterwards."""
    try:
        files = nova_layout.InstanceFiles(instances_path, instance_uuid)
    except nova_layout.Skip as exc:
        return dict(result, result='skipped', reason=str(exc))
    with files:
        try:
            disks = nova_layout.legacy_disks(instance_uuid, files, document, nova_conf, pool_dir)
        except nova_layout.Skip as exc:
            return dict(result, result='skipped', reason=str(exc))
        try:
            return work(files, disks)
        finally:
            nova_layout.close_disks(disks)


def load_domain(conn, instance_uuid, allow_running):
    """{domain, document (its inactive XML, secure), xml, live}, or {result: skipped, reason}."""
    try:
        domain = conn.lookupByUUIDString(instance_uuid)
    except libvirt.libvirtError as exc:
        if error_code(exc) != libvirt.VIR_ERR_NO_DOMAIN:
            raise StoragePoolsError('uri: looking up domain %s failed' % instance_uuid, libvirt_error=error_text(exc))
        return {'result': 'skipped', 'reason': 'libvirt has no domain with this uuid'}
    live = bool(domain.isActive())
    if live and not allow_running:
        return {'result': 'skipped', 'reason': 'the domain is running (running: skip)'}
    xml = domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
    return {'domain': domain, 'document': DomainDocument(xml), 'xml': xml, 'live': live}


def _same_inode(path, info):
    """Whether the name ``path`` (not followed) is the file ``info`` describes."""
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        return False
    return (found.st_dev, found.st_ino) == (info.st_dev, info.st_ino)


class DiskMove:
    """One legacy disk and where it goes."""

    def __init__(self, instance_uuid, legacy, pool_dir, cache_pool):
        self.legacy = legacy
        self.volume = '%s_%s' % (instance_uuid, legacy.name)
        self.dest = os.path.join(pool_dir, self.volume)
        self.instance_uuid = instance_uuid
        self.cache_pool = cache_pool
        self.method = None

    def record(self, size, adopting=False, source_stat=None):
        backing = None
        if self.legacy.backing:
            backing = {'pool': self.cache_pool, 'volume': os.path.basename(self.legacy.backing),
                       'path': self.legacy.backing, 'format': self.legacy.backing_format}
        source = {'path': self.legacy.legacy_path, 'instance_uuid': self.instance_uuid}
        record = metadata.make_record(self.legacy.format, size, source, backing=backing,
                                      method=self.method)
        if adopting:
            record['adopting'] = {'size': source_stat.st_size, 'mtime_ns': source_stat.st_mtime_ns}
        return record

    def ours(self):
        """The record on ``dest`` when this adoption made it (else None)."""
        try:
            record = metadata.read_file_metadata(self.dest)
        except (OSError, metadata.MetadataError):
            return None
        if record and record.get('source', {}).get('path') == self.legacy.legacy_path:
            return record
        return None

    def describe(self):
        return {'name': self.legacy.name, 'from': self.legacy.legacy_path, 'to': self.dest,
                'method': self.method, 'format': self.legacy.format}


class Adopter:
    def __init__(self, conn, instances_path, disks_pool, cache_pool, disk_type, state_dir, nova_conf,
                 check_mode, running='skip', live_timeout=3600):
        self.conn = conn
        self.instances_path = os.path.normpath(instances_path)
        self.pool = disks_pool  # an Endpoint of a file pool
        self.cache_pool = cache_pool
        self.disk_type = disk_type
        self.nova_conf = nova_conf
        self.check_mode = check_mode
        self.running = running
        self.live_timeout = live_timeout
        self.journal = Journal(state_dir, readonly=check_mode)

    @staticmethod
    def nova_settings():
        """None: into a file pool Nova's configuration stays as it is (its paths work through the links)."""
        return None

    def close(self):
        pass

    # -- one instance -------------------------------------------------------

    def adopt(self, instance_uuid):
        """The result dict for one instance; never raises for the instance's own problems."""
        result = {'result': None, 'reason': None, 'disks': [], 'domain_diff': None}
        loaded = load_domain(self.conn, instance_uuid, allow_running=self.running == 'live')
        if 'result' in loaded:
            return dict(result, **loaded)
        return with_legacy_disks(self.instances_path, instance_uuid, loaded['document'], self.nova_conf,
                                 self.pool.target, result,
                                 lambda files, disks: self._adopt(instance_uuid, files, loaded, disks, result))

    def _adopt(self, instance_uuid, files, loaded, disks, result):
        directory = files.path
        domain, document, before_xml, live = loaded['domain'], loaded['document'], loaded['xml'], loaded['live']
        try:
            in_pool = self._pool_moves(instance_uuid, files, document)
        except nova_layout.Skip as exc:
            return dict(result, result='skipped', reason=str(exc))
        if not disks and not in_pool:
            if any(self._in_pool(disk) for disk in document.disks()):
                return dict(result, result='already_adopted')
            elsewhere = self._adopted_elsewhere(instance_uuid, document)
            if elsewhere:
                return dict(result, result='skipped', reason="its disks are already pool volumes elsewhere (%s), not "
                                                             "in the disks pool '%s'" % (', '.join(elsewhere),
                                                                                         self.pool.name))
            return dict(result, result='skipped', reason='no legacy disk in %s' % directory)

        moves = [DiskMove(instance_uuid, legacy, self.pool.target, self.cache_pool) for legacy in disks]
        same_fs = os.fstat(files.fd).st_dev == os.stat(self.pool.target).st_dev
        for move in moves:
            if move.legacy.moved:
                move.method = (move.ours() or {}).get('method')
                continue
            if os.path.lexists(move.dest) and not self._resumable(move):
                reason = "the disks pool already has a volume '%s' with other data" % move.volume
                return dict(result, result='skipped', reason=reason)
            move.method = 'live-copy' if live else 'rename' if same_fs else 'copy'
        every = moves + in_pool
        after = document.copy()
        for move in every:
            disk = after.disk(move.legacy.target)
            if self.disk_type == 'volume':
                disk.point_at_volume(self.pool.name, move.volume)
            else:
                disk.point_at_file(move.dest)
            if move.legacy.backing:
                disk.set_backing_store(move.legacy.backing, move.legacy.backing_format)
        after_xml = after.to_xml()
        domain_changes = after_xml != document.to_xml()
        unfinished = [move for move in in_pool if self._unfinished(move, files)]
        if not moves and not unfinished and not domain_changes:
            return dict(result, result='already_adopted')
        result['disks'] = [move.describe() for move in moves + unfinished]
        result['domain_diff'] = xml_tree.unified_diff(before_xml, after_xml, 'domain (before)', 'domain (after)')
        self._require_space(instance_uuid, moves)
        if self.check_mode:
            return dict(result, result='adopted')
        for move in moves:
            if live:
                self._move_disk_live(move, domain, files)
            else:
                self._move_disk(move, same_fs, files, domain)
        for move in in_pool:  # a live copy pivoted (the domain uses the pool), then a run stopped
            self._finish_disk(move, files)
        self._update_disk_info(files, every)
        if domain_changes:
            self.journal.step(instance_uuid, 'domain')
            self.conn.defineXML(after_xml)
        self.journal.finish(instance_uuid, 'adopted')
        return dict(result, result='adopted')

    @staticmethod
    def _linked(move, files):
        """Whether the legacy name already is our link to the pool volume."""
        found = files.lstat(move.legacy.name)
        return found is not None and stat.S_ISLNK(found.st_mode) and files.readlink(move.legacy.name) == move.dest

    def _unfinished(self, move, files):
        """A disk already in the pool whose legacy link or disk.info entry is still missing."""
        if not self._linked(move, files):
            return True
        return move.dest not in nova_layout.read_disk_info(files.path, files.fd)

    def _pool_moves(self, instance_uuid, files, document):
        """Disks the domain already uses from the pool as ``{uuid}_{name}`` volumes this collection made.

        A recorded backing goes back into the domain only as what the volume's own header and ``_base`` show:
        the record is root's, but a base is re-checked where it is used (raises Skip)."""
        directory = files.path
        moves = []
        for disk in document.disks():
            volume = os.path.basename(disk.source_file or '') or (disk.source_volume or (None, ''))[1]
            if not (self._in_pool(disk) and volume.startswith(instance_uuid + '_')):
                continue
            name = volume[len(instance_uuid) + 1:]
            legacy = nova_layout.LegacyDisk(name, disk.target, os.path.join(directory, name), disk.driver_format,
                                            moved=True)
            move = DiskMove(instance_uuid, legacy, self.pool.target, self.cache_pool)
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

    def _require_space(self, instance_uuid, moves):
        """Refuse the whole instance, before anything is registered, when its copies do not fit."""
        needed = 0
        for move in moves:
            if move.legacy.moved or move.method == 'rename':
                continue  # a hard link: no data moves
            need = limits.thin_file_need(move.legacy.fd, move.legacy.stat.st_size)  # a copy of the data extents
            if os.path.lexists(move.dest):  # a killed run's copy, rewritten in place
                need -= limits.allocated_bytes(move.dest) or 0
            needed += max(need, 0)
        limits.require_space(needed, limits.free_in_directory(self.pool.target),
                             "pool '%s' (%s)" % (self.pool.name, self.pool.target), 'disks_pool',
                             'copying instance %s (%d disks)' % (instance_uuid, len(moves)))

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

    # -- one disk -----------------------------------------------------------

    def _move_disk(self, move, same_fs, files, domain):
        """Only through the descriptor legacy_disks opened: a name the nova user swaps meanwhile is never used."""
        key, legacy = move.instance_uuid, move.legacy
        if legacy.moved:
            self._finish_disk(move, files, domain)
            return
        if not os.path.lexists(move.dest):
            self.journal.step(key, 'register', disk=legacy.name)
            size = legacy.stat.st_size
            self.pool.pool.createXML(VolumeDefinition(move.volume, max(size, 1), 'raw').to_xml(), 0)
        if same_fs:
            if not _same_inode(move.dest, legacy.stat):
                self.journal.step(key, 'link', disk=legacy.name)
                try:
                    link_atomically(legacy.fd, move.dest)  # the inode checked, whatever its name points at now
                except FileNotFoundError:  # its last name is gone (linkat cannot revive an unlinked inode)
                    self._gone(move)
        else:
            info = os.fstat(legacy.fd)
            record = move.ours()
            done = (record and not record.get('adopting'))
            fresh = done and record.get('copied_from') == {'size': info.st_size, 'mtime_ns': info.st_mtime_ns}
            if not fresh:
                self.journal.step(key, 'copy', disk=legacy.name)
                try:
                    metadata.write_file_metadata(move.dest, move.record(info.st_size, adopting=True,
                                                                        source_stat=info))
                    data_copy.copy_file(legacy.fd, move.dest, allow_reflink=False)
                    os.chown(move.dest, info.st_uid, info.st_gid)
                    os.chmod(move.dest, info.st_mode & 0o7777)
                    self.journal.step(key, 'verify', disk=legacy.name)
                    if not data_copy.same_bytes(legacy.fd, move.dest):
                        raise StoragePoolsError('verify: the copy of %s differs from its source; the source is '
                                                'kept' % legacy.legacy_path)
                except OSError as exc:
                    self._discard_copy(move)
                    raise StoragePoolsError('disks_pool: copying %s into %s failed: %s; the partial copy was '
                                            'removed, %s is as it was' % (legacy.legacy_path, move.dest,
                                                                          exc.strerror, legacy.legacy_path)
                                            ) from exc
                except Exception:
                    self._discard_copy(move)
                    raise
                record = move.record(info.st_size)
                record['copied_from'] = {'size': info.st_size, 'mtime_ns': info.st_mtime_ns}
                metadata.write_file_metadata(move.dest, record)
            if os.fstat(legacy.fd).st_nlink == 0:
                self._gone(move)
            # the swap on the other filesystem unlinks the legacy file: the copy's name must be on disk
            # first (one filesystem's journal orders its own renames, two filesystems do not)
            flush(os.path.dirname(move.dest))
        self._finish_disk(move, files, domain)

    def _discard_copy(self, move):
        """Remove the (partial or stale) copy in ``move.dest``: only the legacy file holds the data, and a
        full pool should get its space back."""
        try:
            volume = self.pool.volume(move.volume)
            if volume is not None:
                volume.delete(0)  # libvirt's list of the pool stays right
                return
        except (libvirt.libvirtError, StoragePoolsError):
            pass  # the file goes all the same; a pool refresh drops the name
        if os.path.lexists(move.dest):
            os.unlink(move.dest)

    def _gone(self, move):
        """The legacy file lost its last name while we held it open (deleted, or replaced by another file):
        what this run made for it goes, nothing is adopted."""
        volume = self.pool.volume(move.volume)
        if volume is not None:
            volume.delete(0)
        raise StoragePoolsError('%s was deleted or replaced while it was being adopted; nothing of it was '
                                'adopted. Rerun to look at what is there now' % move.legacy.legacy_path)

    def _move_disk_live(self, move, domain, files):
        """blockcopy into the placeholder (shallow onto the same base for overlays) and pivot."""
        key, legacy = move.instance_uuid, move.legacy
        if legacy.moved:
            self._finish_disk(move, files)
            return
        if domain.blockJobInfo(legacy.target, 0):  # a killed run's copy: start over
            domain.blockJobAbort(legacy.target, 0)
        self.journal.step(key, 'register', disk=legacy.name)
        size = virtual_size(legacy.legacy_path, legacy.format, fd=legacy.fd)
        existing = self.pool.volume(move.volume)
        if existing is not None:
            existing.delete(0)
        self.pool.pool.createXML(VolumeDefinition(move.volume, size, legacy.format,
                                                  backing_path=legacy.backing,
                                                  backing_format=legacy.backing_format).to_xml(), 0)
        metadata.write_file_metadata(move.dest, move.record(size, adopting=True, source_stat=legacy.stat))
        _take_resting_owner(move.dest, legacy.fd)
        self.journal.step(key, 'blockcopy', disk=legacy.name)
        flags = libvirt.VIR_DOMAIN_BLOCK_COPY_REUSE_EXT | libvirt.VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB
        if legacy.backing:
            flags |= libvirt.VIR_DOMAIN_BLOCK_COPY_SHALLOW
        target = DomainDocument.disk_source_xml(move.dest, legacy.format)
        domain.blockCopy(legacy.target, target, {}, flags)
        deadline = time.monotonic() + self.live_timeout
        while True:
            try:
                domain.blockJobAbort(legacy.target, libvirt.VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT)
                break
            except libvirt.libvirtError as exc:
                if time.monotonic() > deadline:
                    domain.blockJobAbort(legacy.target, 0)
                    raise StoragePoolsError('running: the live copy of %s did not finish in %d s; it was '
                                            'cancelled, the guest still runs on the legacy file'
                                            % (legacy.legacy_path, self.live_timeout),
                                            libvirt_error=error_text(exc))
                time.sleep(0.05)
        metadata.write_file_metadata(move.dest, move.record(size))
        self._finish_disk(move, files)

    def _finish_disk(self, move, files, domain=None):
        key, legacy = move.instance_uuid, move.legacy
        record = move.ours()
        if record is None or record.get('adopting'):
            self.journal.step(key, 'record', disk=legacy.name)
            record = move.record(virtual_size(move.dest, move.legacy.format))
            metadata.write_file_metadata(move.dest, record)
        if legacy.needs_backing_format:
            self.journal.step(key, 'rebase', disk=legacy.name)
            set_backing_format(move.dest, legacy.backing, legacy.backing_format, option='disks_pool')
            legacy.needs_backing_format = False
        if not self._linked(move, files):
            self.journal.step(key, 'swap', disk=legacy.name)
            if move.method == 'copy' and domain is not None and domain.isActive():
                # the guest now writes into the legacy file, so the copy is stale: swapping it in would lose
                # those writes. It goes (a rerun copies afresh once the domain is shut off, rather than
                # trusting a size and mtime check that cannot see every write), the legacy file stays.
                self._discard_copy(move)
                raise StoragePoolsError('running: the domain was started while %s was being copied into the '
                                        'pool (by Nova?); it keeps running on its legacy file, the copy was '
                                        'removed. Shut it off and rerun' % legacy.legacy_path)
            symlink_atomically(move.dest, legacy.legacy_path, dir_fd=files.fd)

    def _update_disk_info(self, files, moves):
        """disk.info keeps its legacy keys and gains the pool paths, same formats (so Nova never probes)."""
        path = os.path.join(files.path, nova_layout.DISK_INFO)
        info = nova_layout.read_disk_info(files.path, files.fd)
        wanted = dict(info)
        for move in moves:
            wanted.setdefault(move.legacy.legacy_path, move.legacy.format)
            wanted[move.dest] = move.legacy.format
        if wanted != info:
            self.journal.step(moves[0].instance_uuid, 'disk_info')
            write_atomically(path, json.dumps(wanted).encode('utf-8'), mode=0o644, owner_like=path,
                             dir_fd=files.fd)
