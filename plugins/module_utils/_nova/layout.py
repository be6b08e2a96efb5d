# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A Nova compute host's legacy layout (docs/adoption.md): instances, their disks and formats.

Formats come from two authorities that must agree: Nova's ``disk.info``
and the domain's ``<driver type>``; nothing is probed. A qcow2 disk's
container header (written by qemu, not the guest) is read for its backing
file, which must be a file of ``<instances_path>/_base``; that base is
inspected as its declared format (a base with a backing file or data file
of its own is refused: the chain is overlay -> base, no deeper). A raw
disk's content is the guest's and is never read.

The nova user owns the instance directories and ``_base`` and may swap any
name there for a symlink at any moment. So each directory is opened once
without following a symlink, every file in it is opened once through that
descriptor (O_NOFOLLOW, a regular file or refused), and the caller then
works only through the descriptors it got (docs/security.md).
"""

from __future__ import annotations

import configparser
import errno
import json
import os
import re
import stat
import uuid as uuidlib
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import naming
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._images import inspect as image_inspect

DISK_INFO = 'disk.info'
BASE_DIR = '_base'
DISK_NAME_RE = re.compile(r'^disk(\.(local|swap|config|eph[0-9]+))?$')
# sha1(image id), resized copies <sha1>_<GiB>, swap_<MiB>, ephemeral_<GiB>_<hash>
BASE_NAME_RE = re.compile(r'^([0-9a-f]{40}(_[0-9]+)?|swap_[0-9]+|ephemeral_[0-9]+_[0-9a-f]+)$')
_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # NONBLOCK: a planted FIFO never hangs us


class Skip(Exception):
    """An instance this run leaves alone, with the reason an operator reads."""


def is_uuid(name: str) -> bool:
    try:
        return str(uuidlib.UUID(name)) == name.lower()
    except ValueError:
        return False


def list_instances(instances_path: str) -> List[str]:
    """Instance directories (named by uuid) under ``instances_path``."""
    try:
        names = sorted(os.listdir(instances_path))
    except OSError as exc:
        raise StoragePoolsError('instances_path: cannot list %s: %s' % (instances_path, exc.strerror))
    return [name for name in names if is_uuid(name) and os.path.isdir(os.path.join(instances_path, name))]


def open_regular_file(name: str, dir_fd: Optional[int], flags: int = 0) -> Tuple[int, os.stat_result]:
    """(descriptor, stat) of the regular file ``name`` in the directory ``dir_fd``, never through a symlink.

    Raises OSError (ELOOP for a symlink, EINVAL for anything but a regular file)."""
    fd = os.open(name, _FILE_FLAGS | flags, dir_fd=dir_fd)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, 'not a regular file')
    return fd, info


def why_not_opened(exc: OSError) -> str:
    """An operator's words for open_regular_file's OSError."""
    if exc.errno == errno.ELOOP:
        return 'is a symlink'
    if exc.errno == errno.EINVAL:
        return 'is not a regular file'
    return 'cannot be opened: %s' % exc.strerror


def open_directory(instances_path: str, name: str) -> int:
    """The directory ``name`` (an instance's, or ``_base``) of ``instances_path``, opened without following a
    symlink there (the nova user owns both); raises OSError (see why_directory_not_opened)."""
    top = os.open(instances_path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # the operator's own path
    try:
        return os.open(name, _DIRECTORY_FLAGS, dir_fd=top)
    finally:
        os.close(top)


def why_directory_not_opened(exc: OSError) -> str:
    """An operator's words for open_directory's OSError."""
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return 'is a symlink'
    return 'cannot be opened: %s' % exc.strerror


class InstanceFiles:
    """An instance directory and ``_base``, each opened once without following a symlink."""

    def __init__(self, instances_path: str, instance_uuid: str) -> None:
        self.path = os.path.join(instances_path, instance_uuid)
        self.base_path = os.path.join(instances_path, BASE_DIR)
        self.fd = self.base_fd = None
        try:
            self.fd = open_directory(instances_path, instance_uuid)
        except OSError as exc:
            raise Skip('%s %s, not an instance directory' % (self.path, why_directory_not_opened(exc)))
        try:
            self.base_fd = open_directory(instances_path, BASE_DIR)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                self.close()
                raise Skip('%s %s' % (self.base_path, why_directory_not_opened(exc)))

    def lstat(self, name: str) -> Optional[os.stat_result]:
        try:
            return os.lstat(name, dir_fd=self.fd)
        except FileNotFoundError:
            return None

    def readlink(self, name: str) -> str:
        return os.readlink(name, dir_fd=self.fd)

    def open_base(self, path: str) -> Tuple[int, os.stat_result]:
        """(descriptor, stat) of the base file ``path``: a regular file directly in ``_base``.

        Raises Skip saying "<path>, which ..."."""
        name = os.path.basename(path)
        if os.path.dirname(path) != self.base_path or not BASE_NAME_RE.match(name):
            raise Skip('%s, which is not a base of %s' % (path, self.base_path))
        if self.base_fd is None:
            raise Skip('%s, which is missing' % path)
        try:
            return open_regular_file(name, self.base_fd)
        except FileNotFoundError:
            raise Skip('%s, which is missing' % path)
        except OSError as exc:
            raise Skip('%s, which %s' % (path, why_not_opened(exc)))

    def open_checked_base(self, path: str, base_format: str) -> int:
        """A descriptor of the base file ``path`` (open_base), inspected as ``base_format``: a base is an image
        (hostile), it must be what the overlay says and stand alone. Raises Skip saying "<path>, which ..."."""
        fd, info = self.open_base(path)
        with os.fdopen(os.dup(fd), 'rb') as handle:
            try:
                image_inspect.inspect_handle(handle, info.st_size, path, base_format)
            except image_inspect.ImageRefused as exc:
                os.close(fd)
                raise Skip('%s, which is refused as a %s base: %s' % (path, base_format, exc.msg.split(': ', 1)[-1]))
        return fd

    def close(self) -> None:
        for fd in (self.fd, self.base_fd):
            if fd is not None:
                os.close(fd)
        self.fd = self.base_fd = None

    def __enter__(self) -> InstanceFiles:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def read_disk_info(directory: str, dir_fd: Optional[int] = None) -> Dict[str, str]:
    """Nova's disk.info of an instance directory: {path: format}; {} when there is none.

    ``dir_fd``: the directory opened by InstanceFiles (else it is opened here); disk.info itself is never
    read through a symlink."""
    try:
        own = None
        if dir_fd is None:
            dir_fd = own = os.open(directory, _DIRECTORY_FLAGS)
        try:
            fd, _info = open_regular_file(DISK_INFO, dir_fd)
        finally:
            if own is not None:
                os.close(own)
        with os.fdopen(fd, 'rb') as handle:
            content = handle.read(1 << 20).decode('utf-8')
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError:
        raise Skip('disk.info is not UTF-8 text')
    except OSError as exc:
        raise Skip('disk.info %s' % why_not_opened(exc))
    try:
        info = json.loads(content) if content.strip() else {}
    except ValueError:
        raise Skip('disk.info is not JSON; Nova would regenerate it by probing, refusing to guess')
    if not isinstance(info, dict):
        raise Skip('disk.info is not a JSON object')
    return info


def read_disk_info_bytes(dir_fd: int) -> Tuple[Optional[bytes], Optional[int]]:
    """(content, mode) of disk.info in the instance directory ``dir_fd`` exactly as it is (never through a
    symlink; at most 1 MiB), or (None, None) when there is none; raises Skip."""
    try:
        fd, info = open_regular_file(DISK_INFO, dir_fd)
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        raise Skip('disk.info %s' % why_not_opened(exc))
    with os.fdopen(fd, 'rb') as handle:
        return handle.read(1 << 20), stat.S_IMODE(info.st_mode)


class NovaConf:
    """The few nova.conf settings adoption depends on (missing file: Nova's defaults)."""

    MAX_SIZE = 4 * 1024 * 1024  # a nova.conf is a few hundred KiB at most; bounds the read

    def __init__(self, path: str) -> None:
        self.path = path
        parser = configparser.RawConfigParser(strict=False, interpolation=None)
        self.found = bool(path) and os.path.exists(path)
        if self.found:
            try:
                parser.read_string(self._read(path), source=path)
            except configparser.Error as exc:
                raise StoragePoolsError('nova_conf: %s cannot be parsed: %s' % (path, exc))
        self.parser = parser

    @classmethod
    def _read(cls, path):
        """The text of a regular file of bounded size (never blocks on a FIFO or reads a device)."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
        except OSError as exc:
            raise StoragePoolsError('nova_conf: cannot open %s: %s' % (path, exc.strerror))
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise StoragePoolsError('nova_conf: %s is not a regular file' % path)
            data = b''
            while len(data) <= cls.MAX_SIZE:
                chunk = os.read(fd, cls.MAX_SIZE + 1 - len(data))
                if not chunk:
                    break
                data += chunk
        except OSError as exc:
            raise StoragePoolsError('nova_conf: cannot read %s: %s' % (path, exc.strerror))
        finally:
            os.close(fd)
        if len(data) > cls.MAX_SIZE:
            raise StoragePoolsError('nova_conf: %s is larger than %d MiB; that is no nova.conf'
                                    % (path, cls.MAX_SIZE >> 20))
        try:
            return data.decode('utf-8')
        except UnicodeDecodeError as exc:
            line = data[:exc.start].count(b'\n') + 1
            raise StoragePoolsError('nova_conf: %s is not UTF-8 text (line %d, byte %d); Nova reads it as UTF-8'
                                    % (path, line, exc.start))

    def get(self, section: str, key: str, default: Optional[str] = None) -> Optional[str]:
        if self.parser.has_option(section, key):
            return self.parser.get(section, key).strip()
        return default

    @property
    def force_raw_images(self) -> bool:
        return self.get('DEFAULT', 'force_raw_images', 'true').lower() in ('1', 'true', 'yes', 'on')

    @property
    def remote_filesystem_transport(self) -> str:
        return self.get('libvirt', 'remote_filesystem_transport', 'ssh').lower()

    @property
    def instances_path(self) -> Optional[str]:
        """Nova's effective ``[DEFAULT] instances_path`` (default ``$state_path/instances``, oslo.config's
        ``$state_path``/``${state_path}`` substituted), normalised; None when it rests on ``state_path``'s own
        default (``$pybasedir``: where Nova's code is installed), which no file says."""
        value = self.get('DEFAULT', 'instances_path', '$state_path/instances')
        if '$' not in value:
            return os.path.normpath(value)
        state_path = self.get('DEFAULT', 'state_path')
        if state_path is None or '$' in state_path:
            return None
        value = value.replace('${state_path}', state_path).replace('$state_path', state_path)
        return None if '$' in value else os.path.normpath(value)

    def facts(self) -> Dict[str, Any]:
        """The settings the roles check and the preflight reports (nova_conf_info's return)."""
        return {'path': self.path, 'instances_path': self.instances_path,
                'images_type': self.get('libvirt', 'images_type', 'default'),
                'force_raw_images': self.force_raw_images,
                'remote_filesystem_transport': self.remote_filesystem_transport}

    def require_found(self) -> None:
        """Refuse a nova.conf that is not there (the checks that read it would silently use Nova's defaults)."""
        if not self.found:
            raise StoragePoolsError('nova_conf: %s does not exist on this host; give the nova.conf nova-compute '
                                    'reads (without it the checks that depend on it would silently use Nova\'s '
                                    'defaults)' % self.path)


class LegacyDisk:
    """One legacy disk, its data file open (``fd``, ``stat`` as opened) and, for an overlay, its base's."""

    def __init__(self, name: str, target: Optional[str], legacy_path: str, disk_format: Optional[str],
                 backing: Optional[str] = None, backing_format: Optional[str] = None,
                 needs_backing_format: bool = False, moved: bool = False, fd: Optional[int] = None,
                 info: Optional[os.stat_result] = None, backing_fd: Optional[int] = None) -> None:
        self.moved = moved  # a previous run already put the data in the pool (the path is our link)
        self.name = name
        self.target = target
        self.legacy_path = legacy_path
        self.format = disk_format
        self.backing = backing
        self.backing_format = backing_format
        self.needs_backing_format = needs_backing_format  # the header lacks it: rebase -u -F
        self.fd = fd
        self.stat = info
        self.backing_fd = backing_fd

    def allocated_bytes(self) -> Optional[int]:
        """The bytes the data file holds (its allocated blocks, as opened): what a copy or import reads."""
        return None if self.stat is None else self.stat.st_blocks * 512

    def close(self) -> None:
        for fd in (self.fd, self.backing_fd):
            if fd is not None:
                os.close(fd)
        self.fd = self.backing_fd = None


def close_disks(disks: List[LegacyDisk]) -> None:
    for disk in disks:
        disk.close()


def legacy_disks(instance_uuid: str, files: InstanceFiles, document: Any, nova_conf: NovaConf,
                 pool_dir: str) -> List[LegacyDisk]:
    """The instance's legacy file disks (in ``files``, an InstanceFiles), formats checked; raises Skip.

    Each disk comes with its data file open; the caller closes them (close_disks). A disk whose legacy path is
    already the link to its pool volume (a run that stopped before redefining the domain) is returned with
    ``moved`` and the pool volume open.
    """
    disks = []
    try:
        _legacy_disks(instance_uuid, files, document, nova_conf, pool_dir, disks)
    except BaseException:
        close_disks(disks)
        raise
    return disks


def _legacy_disks(instance_uuid, files, document, nova_conf, pool_dir, disks):
    directory = files.path
    disk_info = read_disk_info(directory, files.fd)
    for disk in document.disks():
        path = disk.source_file
        if not path or os.path.dirname(path) != directory:
            continue
        name = os.path.basename(path)
        if not DISK_NAME_RE.match(name):
            raise Skip('disk %s (%s) is not a Nova disk name this version adopts' % (name, disk.target))
        driver = disk.driver_format
        if driver is None:
            raise Skip('disk %s has no <driver type>; its format is not recorded anywhere' % name)
        recorded = disk_info.get(path)
        if recorded is None:
            raise Skip('disk.info has no entry for %s; its format would have to be probed' % path)
        if recorded != driver:
            raise Skip('disk %s: disk.info says %s, the domain\'s <driver type> says %s' % (name, recorded, driver))
        if driver not in ('raw', 'qcow2'):
            raise Skip('disk %s is %s; this version adopts raw and qcow2 disks' % (name, driver))
        found = files.lstat(name)
        if found is None:
            raise Skip('disk %s is missing' % path)
        moved = stat.S_ISLNK(found.st_mode)
        data_path = path
        try:
            if moved:  # only our own link to the pool volume (a directory only root writes) is followed
                data_path = files.readlink(name)
                if data_path != os.path.join(pool_dir, naming.volume_name(instance_uuid, name)):
                    raise Skip('disk %s is a symlink to %s, not to its pool volume' % (path, data_path))
                fd, info = open_regular_file(data_path, None)
            else:
                fd, info = open_regular_file(name, files.fd)
        except OSError as exc:
            raise Skip('disk %s %s' % (data_path, why_not_opened(exc)))
        legacy = LegacyDisk(name, disk.target, path, driver, moved=moved, fd=fd, info=info)
        disks.append(legacy)
        if driver == 'raw':  # guest data: never read, never refused for its content
            continue
        try:
            _size, backing, backing_format = image_inspect.read_qcow2_overlay(path, fd=fd)
        except image_inspect.ImageRefused as exc:
            raise Skip('disk %s is recorded as qcow2 but %s' % (name, exc.msg.split(': ', 1)[-1]))
        if not backing:
            continue
        backing = os.path.normpath(backing if os.path.isabs(backing) else os.path.join(directory, backing))
        if os.path.dirname(backing) != files.base_path:
            raise Skip('disk %s backs onto %s, outside %s' % (name, backing, files.base_path))
        if not backing_format:
            if not nova_conf.force_raw_images:
                raise Skip('disk %s: its header has no backing format and nova.conf sets '
                           'force_raw_images=False, so the base format is unknown' % name)
            backing_format, legacy.needs_backing_format = 'raw', True
        if backing_format not in ('raw', 'qcow2'):
            raise Skip('disk %s backs onto a %s base' % (name, backing_format))
        try:
            legacy.backing_fd = files.open_checked_base(backing, backing_format)
        except Skip as exc:
            raise Skip('disk %s backs onto %s' % (name, exc))
        legacy.backing, legacy.backing_format = backing, backing_format
