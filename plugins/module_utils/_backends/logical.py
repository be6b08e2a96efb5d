# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Logical (LVM) pools where libvirt has no primitive: recorded metadata in LV tags, zeroing.

libvirt creates, snapshots, resizes and deletes the LVs of a logical pool;
this module keeps the record of each LV this collection made in the LV's
own tags, so it lives with the data (and survives a pool refresh). LVM tags
allow letters, digits and ``_+.-/=!:#&``, so the JSON record is stored
base64-encoded, split over numbered tags ``storagepools.libvirt.<n>=<part>``
to stay well under LVM's tag length limit. Tags are replaced in one
``lvchange`` (one metadata commit).

Volumes are thick raw LVs libvirt makes: a copy is written with
``qemu-img convert`` (zeroes where the source has none), a copy-on-write
volume is an LVM snapshot of an LV of the same volume group.

A new LV holds whatever the disk had there before, so every byte of it that
the copy does not write is zeroed (BLKZEROOUT): a guest never sees stale data
of another LV.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import stat
import struct
from typing import TYPE_CHECKING

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import naming
from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.base import StorageBackend
from ansible_collections.storagepools.libvirt.plugins.module_utils._core import command
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.atomic_file import flush
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._images import qemu_img

if TYPE_CHECKING:  # annotations only: nothing more is imported at run time
    from collections.abc import Callable
    from typing import Any

    from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.base import ImageData
    from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.pool import Endpoint
    from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.volume import VolumeDefinition

TAG_PREFIX = 'storagepools.libvirt.'
TAG_PART = 400  # characters of base64 per tag
BLKZEROOUT = 0x127F  # _IO(0x12, 127)
BLKGETSIZE64 = 0x80081272


def _lvm(argv, option):
    proc = command.run(['lvm'] + argv, option)  # metadata only: the floor timeout (a hung PV ends in an error)
    if proc.returncode != 0:
        raise StoragePoolsError('%s: lvm %s failed' % (option, argv[0]), libvirt_error=proc.stderr.strip())
    return proc.stdout


def encode_record(record: dict) -> list:
    """The LVM tags that hold ``record``."""
    text = base64.b64encode(json.dumps(record, sort_keys=True, separators=(',', ':')).encode('utf-8')).decode()
    parts = [text[start:start + TAG_PART] for start in range(0, len(text), TAG_PART)] or ['']
    return ['%s%d=%s' % (TAG_PREFIX, index, part) for index, part in enumerate(parts)]


def decode_record(tags: list) -> dict | None:
    """The record held in ``tags`` (a list of LV tags), or None when there is none."""
    parts = {}
    for tag in tags:
        if tag.startswith(TAG_PREFIX) and '=' in tag:
            index, part = tag[len(TAG_PREFIX):].split('=', 1)
            if index.isdigit():
                parts[int(index)] = part
    if not parts:
        return None
    try:
        record = json.loads(base64.b64decode(''.join(parts[index] for index in sorted(parts))).decode('utf-8'))
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def lv_tags(vg: str) -> dict:
    """{LV name: [tags]} of every LV in ``vg`` (one lvs call)."""
    out = _lvm(['lvs', '--noheadings', '--separator', '|', '-o', 'lv_name,lv_tags', vg], 'pool')
    tags = {}
    for line in out.splitlines():
        if '|' in line:
            name, joined = line.strip().split('|', 1)
            tags[name] = [tag for tag in joined.split(',') if tag]
    return tags


def read_records(vg: str) -> dict:
    """{LV name: record or None} of every LV in ``vg``."""
    return dict((name, decode_record(tags)) for name, tags in lv_tags(vg).items())


def read_record(vg: str, lv: str) -> dict | None:
    return read_records(vg).get(lv)


def write_record(vg: str, lv: str, record: dict) -> None:
    """Replace the record of ``vg/lv`` (one lvchange: the old tags go, the new ones come)."""
    old = [tag for tag in lv_tags(vg).get(lv, []) if tag.startswith(TAG_PREFIX)]
    argv = ['lvchange']
    for tag in old:
        argv += ['--deltag', tag]
    for tag in encode_record(record):
        argv += ['--addtag', tag]
    _lvm(argv + ['%s/%s' % (vg, lv)], 'metadata')


def vg_extent_size(vg: str) -> int:
    """The extent size of ``vg`` in bytes: LVs are whole extents."""
    return int(_lvm(['vgs', '--noheadings', '--units', 'b', '--nosuffix', '-o', 'vg_extent_size', vg], 'pool').strip())


def vg_free(vg: str) -> int:
    """The bytes ``vg`` has free for new LVs."""
    return int(_lvm(['vgs', '--noheadings', '--units', 'b', '--nosuffix', '-o', 'vg_free', vg], 'pool').strip())


def whole_extents(vg: str, size: int) -> int:
    """``size`` rounded up to whole extents of ``vg``: the size LVM makes, so a record can say what the LV is."""
    extent = vg_extent_size(vg)
    return -(-size // extent) * extent


def zero_range(path: str, start: int, end: int) -> None:
    """Zero bytes [start, end) of the block device ``path``."""
    if end <= start:
        return
    fd = os.open(path, os.O_WRONLY)
    try:
        fcntl.ioctl(fd, BLKZEROOUT, struct.pack('QQ', start, end - start))
    finally:
        os.close(fd)


def device_size(path: str) -> int:
    fd = os.open(path, os.O_RDONLY)
    try:
        return struct.unpack('Q', fcntl.ioctl(fd, BLKGETSIZE64, b'\0' * 8))[0]
    finally:
        os.close(fd)


def convert_into_lv(source_path: str, source_format: str, source_size: int, lv_path: str, option: str,
                    pass_fds: tuple[int, ...] = (), progress: Callable[[int], object] | None = None) -> None:
    """Write an image into a new LV: qemu-img writes zeroes where the source has none, and the LV's tail
    beyond the source is zeroed, so no stale data of the volume group shows through."""
    qemu_img.convert(source_path, source_format, lv_path, 'raw', option, size=source_size, pass_fds=pass_fds,
                     progress=progress)
    zero_range(lv_path, source_size, device_size(lv_path))
    flush(lv_path)


# -- quarantine: the LV renamed with a prefix (it stays in the volume group) and tagged with the expiry --------
# Tested only in the Molecule lvm guest (LVs need device-mapper, which this host's kernel lacks).
QUARANTINE_PREFIX = 'storagepools-quarantine.'
EXPIRY_TAG = 'storagepools.quarantine.expires_at='


def lv_sizes(vg: str) -> dict:
    """{LV name: bytes} of every LV in ``vg`` (one lvs call)."""
    out = _lvm(['lvs', '--noheadings', '--units', 'b', '--nosuffix', '--separator', '|', '-o', 'lv_name,lv_size',
                vg], 'pool')
    return dict((line.strip().split('|')[0], int(line.strip().split('|')[1])) for line in out.splitlines()
                if '|' in line)


def parse_origins(report: str) -> dict:
    """{snapshot LV: its origin LV} from ``lvs --noheadings --separator '|' -o lv_name,origin`` (an LV that is
    no snapshot has an empty origin)."""
    origins = {}
    for line in report.splitlines():
        if '|' in line:
            name, origin = (part.strip() for part in line.split('|', 1))
            if name and origin:
                origins[name] = origin
    return origins


def snapshot_origins(vg: str) -> dict:
    """{snapshot LV: origin LV} of ``vg`` (one lvs call)."""
    return parse_origins(_lvm(['lvs', '--noheadings', '--separator', '|', '-o', 'lv_name,origin', vg], 'pool'))


class LogicalBackend(StorageBackend):
    """Thick raw LVs of the volume group behind a libvirt logical pool; records in LV tags."""

    kind = 'logical volume'
    method = 'lvm-import'

    def __init__(self, endpoint: Endpoint, option: str = 'pool', ceph_keyring: str | None = None) -> None:
        super().__init__(endpoint, option, ceph_keyring)
        self.vg = endpoint.definition.source.name
        self.dev_dir = endpoint.target or '/dev/%s' % self.vg
        self._records = None

    def nova_settings(self) -> dict:
        return {'libvirt': {'images_type': 'lvm', 'images_volume_group': self.vg}}

    @staticmethod
    def volume_name(instance_uuid: str, disk_name: str) -> str:
        return naming.volume_name(instance_uuid, disk_name.replace('_', '__'))  # Nova's Lvm naming

    @staticmethod
    def disk_name(suffix: str) -> str:
        return suffix.replace('__', '_')

    @staticmethod
    def moves(legacy: Any) -> bool:
        return legacy.name != 'disk.config'  # Nova's lvm backend keeps the config drive a raw file

    def location(self, name: str) -> str:
        return os.path.join(self.dev_dir, name)

    def _all(self):
        if self._records is None:  # every LV and its tags in one lvs call
            self._records = read_records(self.vg)
        return self._records

    def names(self) -> set:
        return set(self._all())

    def existing(self, name: str) -> tuple[Any, dict | None] | None:
        volume = self.volume(name)
        if volume is not None:
            return volume, self.read_record(name)
        if os.path.lexists(self.location(name)):
            return None, None  # an LV libvirt has not listed yet: taken all the same
        return None

    def read_record(self, name: str) -> dict | None:
        return self._all().get(name)

    def write_record(self, name: str, record: dict) -> None:
        write_record(self.vg, name, record)
        if self._records is not None:
            self._records[name] = record

    def whole(self, capacity: int) -> int:
        return whole_extents(self.vg, capacity)

    def allocation(self, capacity: int) -> int:
        # a logical volume is thick: with an allocation below its capacity libvirt would make an LVM
        # "sparse" volume, a snapshot of the zero target that breaks once its COW space is full
        return capacity

    def max_virtual_size(self) -> int | None:
        return self.endpoint.capacity()  # a thick LV never outgrows its volume group (the pool's capacity)

    def size(self, name: str) -> int:
        return device_size(self.location(name))

    def clone_format(self, mode: str, volume_format: str | None, source: Any) -> str:
        if volume_format not in (None, 'raw'):
            raise StoragePoolsError('format: volumes of a logical pool are raw block devices')
        if mode == 'cow' and source.lv is None:
            raise StoragePoolsError('source: on a logical pool, mode cow snapshots a volume of the same '
                                    'volume group')
        return 'raw'

    def create(self, name: str, size: int) -> int:
        size = super().create(name, size)
        self._all()[name] = None
        return size

    def remove(self, name: str) -> None:
        super().remove(name)
        self._all().pop(name, None)

    def create_detail(self, name: str, definition: VolumeDefinition, method: str) -> str:
        return "create logical volume '%s' (%d bytes)" % (name, definition.capacity)

    def write_image(self, name: str, image: ImageData, volume_format: str = 'raw',
                    progress: Callable[[int], object] | None = None) -> str:
        convert_into_lv(image.filename, image.format, image.virtual_size, self.location(name), self.option,
                        pass_fds=image.pass_fds, progress=progress)
        return 'qemu-img-convert'

    def open_for_stream(self, name: str) -> int:
        fd = os.open(self.location(name), os.O_WRONLY | os.O_CLOEXEC)
        if not stat.S_ISBLK(os.fstat(fd).st_mode):
            os.close(fd)
            raise StoragePoolsError("%s: %s is not the block device of an LV" % (self.option, self.location(name)))
        return fd

    def cow_steps(self, name: str, source: Any, definition: VolumeDefinition) -> tuple:
        create = dict(action='create', detail="create LVM snapshot '%s' of %s" % (name, source.path),
                      do=lambda: self.define(definition), undo=lambda: self.remove(name), option='source')
        return 'lvm-snapshot', [create]

    def space_for(self, image: ImageData, capacity: int, volume_format: str = 'raw', cow: bool = False) -> int:
        return self.whole(capacity)  # thick, and a snapshot gets the origin's size of COW space (allocation)

    def space_available(self) -> int:
        return vg_free(self.vg)

    def space_freed(self, name: str) -> int:
        return self.size(name)  # a killed import's LV, removed before the import is redone

    def where(self) -> str:
        return "volume group '%s'" % self.vg

    def point(self, disk: Any, name: str) -> None:
        disk.point_at_block(self.location(name))

    def domain_volume(self, disk: Any, instance_uuid: str) -> str | None:
        return self._instance_volume_at(disk.source_block, self.dev_dir, instance_uuid)

    # -- quarantine: lvrename, lvchange tags, lvremove; the pool refreshed so libvirt's list follows (a logical
    # pool's refresh runs lvs, it reads no volume's bytes) --------------------------------------------------

    def observe_volumes(self) -> tuple[dict, dict, dict, dict]:
        """Quarantined LVs are not volumes; sizes from one lvs call."""
        sizes = lv_sizes(self.vg)
        names = sorted(name for name in self.names() if not name.startswith(QUARANTINE_PREFIX))
        return (dict((name, self.location(name)) for name in names), dict((name, sizes.get(name, 0)) for name in names),
                dict((name, self.read_record(name)) for name in names), {})

    def quarantined(self) -> list:
        sizes = lv_sizes(self.vg)
        found = []
        for name, tags in sorted(lv_tags(self.vg).items()):
            expiry = [tag[len(EXPIRY_TAG):] for tag in tags if tag.startswith(EXPIRY_TAG)]
            if name.startswith(QUARANTINE_PREFIX) and expiry and expiry[0].isdigit():
                found.append((name[len(QUARANTINE_PREFIX):], float(expiry[0]), sizes.get(name, 0)))
        return found

    def quarantined_records(self) -> dict:
        return dict((name[len(QUARANTINE_PREFIX):], record) for name, record in self._all().items()
                    if name.startswith(QUARANTINE_PREFIX))

    def marked_volumes(self) -> set:
        return set(name for name, tags in lv_tags(self.vg).items()
                   if not name.startswith(QUARANTINE_PREFIX) and any(tag.startswith(EXPIRY_TAG) for tag in tags))

    def snapshot_origins(self) -> dict:
        return snapshot_origins(self.vg)

    def _rename(self, old, new):
        if old in lv_tags(self.vg):
            _lvm(['lvrename', self.vg, old, new], self.option)
        self._records = None

    def quarantine_steps(self, name: str, expires_at: float) -> list:
        hidden = QUARANTINE_PREFIX + name

        def mark():
            tags = lv_tags(self.vg).get(name)
            if tags is not None:
                argv = ['lvchange'] + sum((['--deltag', tag] for tag in tags if tag.startswith(EXPIRY_TAG)), [])
                _lvm(argv + ['--addtag', '%s%d' % (EXPIRY_TAG, expires_at), '%s/%s' % (self.vg, name)], 'metadata')

        def move():
            users = sorted(lv for lv, origin in snapshot_origins(self.vg).items() if origin == name)
            if users:  # checked again as it is renamed: an LVM snapshot made since the plan keeps it
                raise StoragePoolsError("%s: LV '%s' is the origin of the LVM snapshots %s; it is not removed"
                                        % (self.option, name, ', '.join(users)))
            self._rename(name, hidden)

        return [('mark', "tag LV '%s' with its quarantine expiry" % name, mark),
                ('quarantine', "rename LV '%s' to '%s'" % (name, hidden), move),
                ('unlist', "refresh pool '%s'" % self.pool_name, self.endpoint.refresh)]

    def purge_steps(self, name: str) -> list:
        hidden = QUARANTINE_PREFIX + name

        def purge():
            if hidden in lv_tags(self.vg):
                _lvm(['lvremove', '-f', '%s/%s' % (self.vg, hidden)], self.option)

        return [('purge', "remove LV '%s'" % hidden, purge),
                ('unlist', "refresh pool '%s'" % self.pool_name, self.endpoint.refresh)]

    def restore_steps(self, name: str) -> list:
        hidden = QUARANTINE_PREFIX + name

        def unmark():
            tags = [tag for tag in lv_tags(self.vg).get(name, []) if tag.startswith(EXPIRY_TAG)]
            if tags:
                _lvm(['lvchange'] + sum((['--deltag', tag] for tag in tags), []) + ['%s/%s' % (self.vg, name)],
                     'metadata')

        return [('restore', "rename LV '%s' back to '%s'" % (hidden, name), lambda: self._rename(hidden, name)),
                ('unmark', "drop the quarantine tag of LV '%s'" % name, unmark),
                ('register', "refresh pool '%s'" % self.pool_name, self.endpoint.refresh)]
