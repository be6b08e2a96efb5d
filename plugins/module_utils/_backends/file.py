# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""File pools (dir, fs, netfs): volumes are files, records are an extended attribute of each file.

The record is one JSON object in the ``trusted.storagepools.libvirt``
extended attribute of the volume file: libvirt lists every file of a dir
pool as a volume, so a sidecar file would itself show up as one. The
``trusted.`` namespace is written only by root (CAP_SYS_ADMIN): the file's
owner (nova, or libvirt-qemu while a guest runs) can write its data and its
``user.`` attributes, never the record that decides what goes into a domain
or what gets deleted.

Records are read and written without following a symlink: a name the nova
user swapped for a link gets no record and yields none.

Copies into a file pool write only data: raw to raw a reflink or a sparse
copy of the data extents; anything else ``qemu-img convert -n -f -O`` into
the volume libvirt made (never libvirt's createXMLFrom, which reads the
source as the format libvirt probed); a copy-on-write volume is a qcow2
overlay whose backingStore has an explicit format.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from typing import TYPE_CHECKING

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import space as limits
from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.base import StorageBackend
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.atomic_file import flush
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._images import copy as data_copy, qemu_img
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.volume import VolumeDefinition

if TYPE_CHECKING:  # annotations only: nothing more is imported at run time
    from collections.abc import Callable
    from typing import Any

    from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.base import ImageData

XATTR_NAME = 'trusted.storagepools.libvirt'
FILE_POOL_TYPES = ('dir', 'fs', 'netfs')


def _no_follow(path):
    """Keyword arguments for an xattr call on ``path``: a name is never followed (a descriptor is what it is)."""
    return {} if isinstance(path, int) else {'follow_symlinks': False}


class MetadataError(ValueError):
    """A record that exists but cannot be read as metadata."""


def read_file_metadata(path: int | str, name: str | None = None) -> dict | None:
    """The record of the volume file at ``path``, or None when it has none.

    ``path`` may be an open descriptor of the file (then ``name`` is what messages call it)."""
    name = name or path
    try:
        raw = os.getxattr(path, XATTR_NAME, **_no_follow(path))
    except OSError as exc:
        if exc.errno in (errno.ENODATA, errno.ENOTSUP, errno.ENOENT):
            return None
        raise
    try:
        record = json.loads(raw.decode('utf-8'))
    except ValueError as exc:
        raise MetadataError('%s: the %s attribute is not JSON: %s' % (name, XATTR_NAME, exc))
    if not isinstance(record, dict):
        raise MetadataError('%s: the %s attribute is not a JSON object' % (name, XATTR_NAME))
    return record


def write_file_metadata(path: int | str, record: dict) -> None:
    """Record ``record`` on the volume file at ``path`` (or an open descriptor), replacing any earlier one."""
    os.setxattr(path, XATTR_NAME, json.dumps(record, sort_keys=True, separators=(',', ':')).encode('utf-8'),
                **_no_follow(path))


class FileBackend(StorageBackend):
    """Files in the target directory of a dir, fs or netfs pool; records in their xattr."""

    stream_converts = True

    @property
    def target(self) -> str:
        return self.endpoint.target

    def names(self) -> set:
        return set(os.listdir(self.target))

    def location(self, name: str) -> str:
        return os.path.join(self.target, name)

    def existing(self, name: str) -> tuple[Any, dict | None] | None:
        volume = self.volume(name)
        path = self.location(name)
        if volume is None and not os.path.lexists(path):
            return None
        return volume, read_file_metadata(path) if os.path.exists(path) else None

    def read_record(self, name: str) -> dict | None:
        return read_file_metadata(self.location(name))

    def write_record(self, name: str, record: dict) -> None:
        write_file_metadata(self.location(name), record)

    def size(self, name: str) -> int:
        return os.lstat(self.location(name)).st_size

    def clone_format(self, mode: str, volume_format: str | None, source: Any) -> str:
        if volume_format is None:
            volume_format = 'qcow2' if mode == 'cow' else source.format
        if mode == 'cow' and volume_format != 'qcow2':
            raise StoragePoolsError('format: a copy-on-write volume on a file pool is a qcow2 overlay; '
                                    'give format: qcow2 or mode: copy')
        return volume_format

    def copy_method(self, image: ImageData, volume_format: str) -> str:
        if volume_format == 'raw' and image.format == 'raw' and image.local is not None:
            return 'sparse-copy'  # or reflink, whichever the filesystem allows
        return 'qemu-img-convert'

    def create_detail(self, name: str, definition: VolumeDefinition, method: str) -> str:
        if method == 'sparse-copy':
            return "create volume '%s'" % name
        return "create volume '%s' (%s)" % (name, definition.format)

    def write_detail(self, name: str, image: ImageData, volume_format: str, method: str) -> tuple:
        if method == 'sparse-copy':
            return 'copy', "copy %s into '%s' (reflink or sparse copy)" % (image.label, name)
        return super().write_detail(name, image, volume_format, method)

    def write_image(self, name: str, image: ImageData, volume_format: str = 'raw',
                    progress: Callable[[int], object] | None = None) -> str:
        path = self.location(name)
        if self.copy_method(image, volume_format) == 'sparse-copy':
            return data_copy.copy_file(image.local, path, progress=progress)
        # the volume libvirt just made is empty and has no backing file: --target-is-zero leaves the
        # source's holes unallocated, as a plain `qemu-img convert` does, instead of writing zero clusters
        qemu_img.convert(image.filename, image.format, path, volume_format, self.option, size=image.virtual_size,
                         pass_fds=image.pass_fds, target_is_zero=True, progress=progress)
        flush(path)
        return 'qemu-img-convert'

    def open_for_stream(self, name: str) -> int:
        directory = self._target_fd()
        try:
            return _open_file(name, directory, os.O_WRONLY)[0]
        finally:
            os.close(directory)

    def cow_steps(self, name: str, source: Any, definition: VolumeDefinition) -> tuple:
        create = dict(action='create', detail="create qcow2 overlay '%s' on %s (backing format %s)"
                      % (name, source.path, source.format), do=lambda: self.define(definition),
                      undo=lambda: self.remove(name), option='source')
        return 'qcow2-overlay', [create]

    def space_for(self, image: ImageData, capacity: int, volume_format: str = 'raw', cow: bool = False) -> int:
        if cow:
            return 0  # a qcow2 header
        return limits.thin_file_need(image.local, image.virtual_size, new_qcow2=volume_format == 'qcow2')

    def space_available(self) -> int:
        return limits.free_in_directory(self.target)

    def where(self) -> str:
        return "pool '%s' (%s)" % (self.pool_name, self.target)

    def space_where(self) -> str:
        return self.where()

    def compares_as_files(self) -> bool:
        return True

    def point(self, disk: Any, name: str) -> None:
        disk.point_at_file(self.location(name))

    def domain_volume(self, disk: Any, instance_uuid: str) -> str | None:
        return self._instance_volume_at(disk.source_file, self.target, instance_uuid)

    def capacity_and_used(self) -> tuple[int, int]:
        """(capacity, bytes used) of the target's filesystem (statvfs: no refresh, which probes every file)."""
        found = os.statvfs(self.target)
        return found.f_blocks * found.f_frsize, (found.f_blocks - found.f_bfree) * found.f_frsize

    # -- quarantine: a root-only directory on the pool's filesystem, outside its target ------------------------
    # libvirt lists every file in a dir pool's target (dotfiles too), so quarantined files live beside it, not
    # in it. A rename keeps the inode: data, owner, mode and the record xattr move with the file (O(1)).

    quarantine_directory = None  # the caller's choice; else quarantine_default()

    def quarantine_default(self) -> str:
        target = os.path.normpath(self.target)
        return os.path.join(os.path.dirname(target), '.%s.quarantine' % os.path.basename(target))

    @property
    def quarantine_path(self) -> str:
        return self.quarantine_directory or self.quarantine_default()

    def _open_directory(self, path, create=False):
        """A descriptor of the directory ``path``, never through a symlink."""
        if create:
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                pass
        try:
            return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise StoragePoolsError('quarantine_dir: %s is a symlink or not a directory; it must be a '
                                        'directory only root uses' % path)
            raise

    def _quarantine_fd(self, create=False):
        """The quarantine directory (made 0700 when ``create``), checked: root's alone, not inside the pool's
        target, on the target's filesystem; None when it does not exist and is not made."""
        path = self.quarantine_path
        target = os.path.realpath(self.target)
        real = os.path.realpath(path)
        if real == target or real.startswith(target.rstrip('/') + '/'):
            raise StoragePoolsError('quarantine_dir: %s is inside the target of pool %s, where libvirt would list '
                                    'every quarantined file as a volume; choose a directory beside it'
                                    % (path, self.pool_name))
        try:
            fd = self._open_directory(path, create)
        except FileNotFoundError:
            return None
        info = os.fstat(fd)
        problem = None
        if info.st_uid != os.geteuid() or info.st_mode & 0o077:
            problem = 'owned by uid %d, mode %04o; it must be root\'s, 0700' % (info.st_uid, info.st_mode & 0o7777)
        elif info.st_dev != os.stat(self.target).st_dev:
            problem = 'on another filesystem than %s, so a volume cannot be renamed into it' % self.target
        if problem:
            os.close(fd)
            raise StoragePoolsError('quarantine_dir: %s is %s' % (path, problem))
        return fd

    def _target_fd(self):
        return os.open(self.target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # the operator's own path

    def observe_volumes(self) -> tuple[dict, dict, dict, dict]:
        locations, sizes, records, unusable = {}, {}, {}, {}
        waiting = set(name for name, _expires, _size in self.quarantined())
        for name in sorted(self.names()):
            path = self.location(name)
            info = os.lstat(path)
            locations[name] = path
            sizes[name] = info.st_blocks * 512
            if stat.S_ISLNK(info.st_mode):
                unusable[name] = 'a symlink in the pool (never followed)'
            elif not stat.S_ISREG(info.st_mode):
                unusable[name] = 'not a regular file'
            elif name in waiting and empty_placeholder(path):
                del locations[name]  # a killed restore's placeholder: the restore renames over it
                continue
            else:
                records[name] = read_file_metadata(path)
        return locations, sizes, records, unusable

    def marked_volumes(self) -> set:
        marked = set()
        for name in self.names():
            try:
                if QUARANTINE_XATTR in os.listxattr(self.location(name), follow_symlinks=False):
                    marked.add(name)
            except OSError:
                continue
        return marked

    def quarantined(self) -> list:
        fd = self._quarantine_fd()
        if fd is None:
            return []
        found = []
        try:
            for name in sorted(os.listdir(fd)):
                entry = _quarantine_marker(name, fd)
                if entry is not None:
                    found.append((name, entry[0], entry[1]))
        finally:
            os.close(fd)
        return found

    def quarantined_records(self) -> dict:
        try:
            fd = self._quarantine_fd()
        except StoragePoolsError:
            return {}  # not a quarantine of ours (a symlink, not root's): nothing in it is
        if fd is None:
            return {}
        found = {}
        try:
            for name in sorted(os.listdir(fd)):
                try:
                    record_fd, _info = _open_file(name, fd)
                except (OSError, StoragePoolsError):
                    continue
                try:
                    found[name] = read_file_metadata(record_fd, name)
                except MetadataError:
                    found[name] = None
                finally:
                    os.close(record_fd)
        finally:
            os.close(fd)
        return found

    def _in_directories(self, work, create=False):
        """``work(target fd, quarantine fd)``, both closed afterwards."""
        target_fd = self._target_fd()
        quarantine_fd = None
        try:
            quarantine_fd = self._quarantine_fd(create)
            return work(target_fd, quarantine_fd)
        finally:
            os.close(target_fd)
            if quarantine_fd is not None:
                os.close(quarantine_fd)

    def quarantine_steps(self, name: str, expires_at: float) -> list:
        def mark(target_fd, _quarantine_fd):
            if not _lexists(name, target_fd):
                return  # moved already (a killed run)
            fd, _info = _open_file(name, target_fd)
            try:
                os.setxattr(fd, QUARANTINE_XATTR, json.dumps({'pool': self.pool_name, 'volume': name,
                                                              'expires_at': expires_at}).encode('utf-8'))
            finally:
                os.close(fd)

        def move(target_fd, quarantine_fd):
            if _lexists(name, quarantine_fd):
                if not _lexists(name, target_fd):
                    return  # moved already (a killed run)
                raise StoragePoolsError("%s: %s already holds a quarantined '%s'; restore it or let it expire"
                                        % (self.option, self.quarantine_path, name))
            os.rename(name, name, src_dir_fd=target_fd, dst_dir_fd=quarantine_fd)
            os.fsync(quarantine_fd)
            os.fsync(target_fd)

        return [('mark', "mark '%s' as quarantined (with its expiry)" % name,
                 lambda: self._in_directories(mark)),
                ('quarantine', "move '%s' into %s" % (name, self.quarantine_path),
                 lambda: self._in_directories(move, create=True)),
                ('unlist', "pool '%s' stops listing '%s'" % (self.pool_name, name), lambda: self._unlist(name))]

    def _unlist(self, name):
        """libvirt forgets a volume whose file is gone (its delete ignores the missing file; no refresh, which
        would probe every guest disk of the pool)."""
        if not os.path.lexists(self.location(name)):
            self.endpoint.delete_listed_volume(name)

    def purge_steps(self, name: str) -> list:
        def purge(_target_fd, quarantine_fd):
            if quarantine_fd is not None and _lexists(name, quarantine_fd):
                os.unlink(name, dir_fd=quarantine_fd)
                os.fsync(quarantine_fd)

        return [('purge', "delete quarantined '%s' from %s" % (name, self.quarantine_path),
                 lambda: self._in_directories(purge))]

    def restore_steps(self, name: str) -> list:
        def register():
            if self.volume(name) is None and not os.path.lexists(self.location(name)):
                size = self._in_directories(lambda _t, quarantine_fd: os.lstat(name, dir_fd=quarantine_fd).st_size)
                self.define(VolumeDefinition(name, max(size, 1), 'raw'))  # listed without a refresh

        def restore(target_fd, quarantine_fd):
            if quarantine_fd is None or not _lexists(name, quarantine_fd):
                return  # restored already (a killed run)
            size = os.lstat(name, dir_fd=quarantine_fd).st_size
            if _lexists(name, target_fd) and not empty_placeholder(self.location(name), max(size, 1)):
                raise StoragePoolsError("restore: pool '%s' holds another '%s'; it stays in quarantine"
                                        % (self.pool_name, name))
            os.rename(name, name, src_dir_fd=quarantine_fd, dst_dir_fd=target_fd)
            os.fsync(target_fd)
            os.fsync(quarantine_fd)

        def unmark(target_fd, _quarantine_fd):
            fd, _info = _open_file(name, target_fd)
            try:
                os.removexattr(fd, QUARANTINE_XATTR)
            except OSError as exc:
                if exc.errno != errno.ENODATA:
                    raise
            finally:
                os.close(fd)

        return [('register', "libvirt lists '%s' in pool '%s' again" % (name, self.pool_name), register),
                ('restore', "move '%s' from %s back into pool '%s'" % (name, self.quarantine_path, self.pool_name),
                 lambda: self._in_directories(restore)),
                ('unmark', "drop the quarantine mark of '%s'" % name, lambda: self._in_directories(unmark))]


QUARANTINE_XATTR = XATTR_NAME + '.quarantine'  # {pool, volume, expires_at}: written only by root


def _lexists(name, dir_fd):
    try:
        os.lstat(name, dir_fd=dir_fd)
        return True
    except FileNotFoundError:
        return False


def _open_file(name, dir_fd, mode=os.O_RDONLY):
    """(descriptor, stat) of the regular file ``name`` in ``dir_fd``, never through a symlink."""
    fd = os.open(name, mode | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise StoragePoolsError('%s is not a regular file' % name)
    return fd, info


def _quarantine_marker(name, dir_fd):
    """(expires_at, bytes) of the quarantined file ``name``, or None when it carries no mark of ours."""
    try:
        fd, info = _open_file(name, dir_fd)
    except (OSError, StoragePoolsError):
        return None
    try:
        mark = json.loads(os.getxattr(fd, QUARANTINE_XATTR).decode('utf-8'))
        return float(mark['expires_at']), info.st_blocks * 512
    except (OSError, ValueError, KeyError, TypeError):
        return None
    finally:
        os.close(fd)


def empty_placeholder(path: str, size: int | None = None) -> bool:
    """Whether ``path`` is still an empty placeholder libvirt made (for a disk of ``size`` bytes when given):
    a regular file (never followed) of that size or empty, without a single data extent and without a record
    of ours."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or (size is not None and info.st_size not in (0, size)):
            return False
        if any(True for _extent in data_copy.data_extents(fd, info.st_size)):
            return False
        return not any('storagepools' in name for name in os.listxattr(fd))
    finally:
        os.close(fd)
