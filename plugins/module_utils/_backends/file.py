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
from typing import TYPE_CHECKING

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import space as limits
from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.base import StorageBackend
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.atomic_file import flush
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._images import copy as data_copy, qemu_img

if TYPE_CHECKING:  # annotations only: nothing more is imported at run time
    from typing import Any

    from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.base import ImageData
    from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.volume import VolumeDefinition

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

    def write_image(self, name: str, image: ImageData, volume_format: str = 'raw') -> str:
        path = self.location(name)
        if self.copy_method(image, volume_format) == 'sparse-copy':
            return data_copy.copy_file(image.local, path)
        # the volume libvirt just made is empty and has no backing file: --target-is-zero leaves the
        # source's holes unallocated, as a plain `qemu-img convert` does, instead of writing zero clusters
        qemu_img.convert(image.filename, image.format, path, volume_format, self.option, size=image.virtual_size,
                         pass_fds=image.pass_fds, target_is_zero=True)
        flush(path)
        return 'qemu-img-convert'

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
