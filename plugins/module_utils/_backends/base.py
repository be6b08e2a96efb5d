# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One storage backend interface: what every kind of pool does to its volumes.

A backend is the storage behind one active libvirt pool (an ``Endpoint``):
files of a dir, fs or netfs pool (file.py), LVs of a logical pool
(logical.py), images of an rbd pool (rbd.py). The workflows of _converge
(clone a volume, import the image cache, cut a host over) plan their steps
and call these methods; they never ask which backend it is. ``backend_for``
picks the class by pool type: a new backend is one new file and one line in
``BACKENDS``.

The methods a host cutover calls (``nova_settings``, ``volume_name``,
``disk_name``, ``moves``, ``untouched``, ``space_freed``, ``write`` and
``space_needed`` of a legacy disk) are here too: a backend is the cutover's
target as it is.
"""

from __future__ import annotations

import abc
import functools
import os
from typing import TYPE_CHECKING

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import naming, space as limits
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.progress import NO_PROGRESS
from ansible_collections.storagepools.libvirt.plugins.module_utils._images.qemu_img import pinned_image, virtual_size
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.volume import VolumeDefinition

if TYPE_CHECKING:  # annotations only: nothing more is imported at run time
    from collections.abc import Callable, Iterable
    from typing import Any

    from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.pool import Endpoint


# Each backend is imported where it is picked, by a plain import statement: AnsiballZ ships only the modules
# it finds imported in the source (never one named at run time), and a pool task loads only its own backend.
def _file_backend():
    from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.file import FileBackend
    return FileBackend


def _logical_backend():
    from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.logical import LogicalBackend
    return LogicalBackend


def _rbd_backend():
    from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.rbd import RbdBackend
    return RbdBackend


BACKENDS = {
    'dir': _file_backend,
    'fs': _file_backend,
    'netfs': _file_backend,
    'logical': _logical_backend,
    'rbd': _rbd_backend,
}


def backend_class(pool_type: str) -> type[StorageBackend] | None:
    """The StorageBackend subclass for libvirt pools of ``pool_type``, or None when there is none."""
    found = BACKENDS.get(pool_type)
    return None if found is None else found()


def backend_for(endpoint: Endpoint, option: str = 'pool', ceph_keyring: str | None = None,
                **kwargs: Any) -> StorageBackend:
    """The backend of the active pool ``endpoint`` (an Endpoint); StoragePoolsError naming ``option`` for a
    pool type this collection writes no volumes of. ``kwargs`` go to the backend (rbd: ``rbd_pool``)."""
    cls = backend_class(endpoint.type)
    if cls is None:
        raise StoragePoolsError("%s: '%s' is a %s pool; this version writes volumes of %s pools"
                                % (option, endpoint.name, endpoint.type, ', '.join(sorted(BACKENDS))))
    return cls(endpoint, option, ceph_keyring, **kwargs)


class ImageData:
    """An image a backend writes from: how qemu-img reads it and, for a raw file here, how we read it.

    ``filename``: what qemu-img opens (``/proc/self/fd/N``, a ``json:`` filename of our descriptors, an LV's
    device, qemu's rbd filename); ``pass_fds``: the descriptors it needs; ``local``: a descriptor or path of a
    file or device this process reads itself (sparse copies, librbd imports, space needs), None for an image
    of another Ceph pool; ``label``: how steps and messages name it."""

    def __init__(self, filename: str, image_format: str, size: int, pass_fds: Iterable[int] = (),
                 local: int | str | None = None,
                 label: str | None = None) -> None:
        self.filename = filename
        self.format = image_format
        self.virtual_size = size
        self.pass_fds = tuple(pass_fds)
        self.local = local
        self.label = label or filename


def legacy_source(legacy: Any) -> tuple[str, tuple[int, ...]]:
    """(qemu filename, descriptors) of a legacy disk as the guest sees it: an overlay with its base."""
    backing = (legacy.backing_fd, legacy.backing_format) if legacy.backing else None
    return pinned_image(legacy.fd, legacy.format, backing)


def legacy_image(legacy: Any) -> ImageData:
    """A legacy Nova disk (its descriptors open, _nova/layout.LegacyDisk) as the image a cutover writes: an
    overlay flattened with its base, formats explicit; a raw file is read directly."""
    filename, fds = legacy_source(legacy)
    local = legacy.fd if legacy.format == 'raw' and not legacy.backing else None
    return ImageData(filename, legacy.format, virtual_size(legacy.legacy_path, legacy.format, fd=legacy.fd),
                     pass_fds=fds, local=local, label=legacy.legacy_path)


class StorageBackend(abc.ABC):
    """The volumes of one active libvirt pool (``endpoint``), as one kind of storage keeps them.

    ``option`` names the task option that chose the pool (messages say it); ``kind`` names a volume in
    words; ``method`` is how a cutover writes a legacy disk here (its records say it)."""

    kind = 'volume'
    method = None
    stream_converts = False  # a stream of another format may go into a temporary volume here and be converted

    def __init__(self, endpoint: Endpoint, option: str = 'pool', ceph_keyring: str | None = None) -> None:
        self.endpoint = endpoint
        self.option = option
        self.ceph_keyring = ceph_keyring

    # -- names --------------------------------------------------------------

    @property
    def pool_name(self) -> str:
        return self.endpoint.name

    @abc.abstractmethod
    def names(self) -> set:
        """The names of the pool's volumes, as the storage itself lists them (not libvirt's last refresh)."""

    def exists(self, name: str) -> bool:
        return name in self.names()

    def volume(self, name: str) -> Any:
        """libvirt's volume ``name``, or None when libvirt does not list it."""
        return self.endpoint.volume(name)

    @abc.abstractmethod
    def location(self, name: str) -> str:
        """Where volume ``name`` is: its path, or ``<ceph pool>/<image>``."""

    def existing(self, name: str) -> tuple[Any, dict | None] | None:
        """None when ``name`` is free, else (libvirt's volume or None, the record or None)."""
        if not self.exists(name):
            return None
        return self.volume(name), self.read_record(name)

    @staticmethod
    def volume_name(instance_uuid: str, disk_name: str) -> str:
        """The name Nova gives an instance's disk on this backend."""
        return naming.volume_name(instance_uuid, disk_name)

    @staticmethod
    def disk_name(suffix: str) -> str:
        """The disk name in a volume name after ``<uuid>_`` (volume_name's inverse)."""
        return suffix

    @staticmethod
    def moves(_legacy: Any) -> bool:
        """Whether a cutover writes this legacy disk onto the backend (Nova keeps some as files)."""
        return True

    def nova_settings(self) -> dict:
        """The nova.conf values under which Nova writes its disks onto this backend."""
        raise StoragePoolsError("%s: Nova's %s pools need no cutover" % (self.option, self.endpoint.type))

    # -- records ------------------------------------------------------------

    @abc.abstractmethod
    def read_record(self, name: str) -> dict | None:
        """The record kept with volume ``name``'s data, or None."""

    @abc.abstractmethod
    def write_record(self, name: str, record: dict) -> None:
        """Replace the record of volume ``name``."""

    def records_readable(self, local: bool) -> bool:
        """Whether records can be read (``local``: the task runs on the libvirt host)."""
        return local

    # -- sizes --------------------------------------------------------------

    def whole(self, capacity: int) -> int:
        """The capacity the backend really gives a volume asked for ``capacity`` bytes."""
        return capacity

    def allocation(self, _capacity: int) -> int:
        """The allocation of a new volume's definition: 0, sparse (libvirt does not preallocate)."""
        return 0

    def max_virtual_size(self) -> int | None:
        """The most a volume can hold, for image inspection; None: its absolute ceiling."""
        return None

    @abc.abstractmethod
    def size(self, name: str) -> int:
        """The size a guest sees of volume ``name``."""

    def grow(self, name: str, capacity: int) -> None:
        self.volume(name).resize(capacity, 0)

    def untouched(self, _name: str, _size: int) -> bool:
        """Whether volume ``name`` is provably as ``create(name, size)`` left it (no data written)."""
        return False

    # -- making and writing volumes -------------------------------------------

    def clone_format(self, mode: str, volume_format: str | None, source: Any) -> str:
        """The format of a volume made in ``mode`` (copy, cow) from ``source`` when the task asks for
        ``volume_format`` (None: the default); refuse what the backend cannot make."""
        if volume_format not in (None, 'raw'):
            raise StoragePoolsError('format: volumes of a %s pool are raw' % self.endpoint.type)
        return 'raw'

    def backing_location(self, source: Any) -> dict:
        """Where a cow volume's parent is, for its record and volume definition."""
        return {'path': source.path}

    def backing_path(self, source: Any, definition: VolumeDefinition) -> str:
        """How a cow volume's result names its parent."""
        return definition.backing_path

    def define(self, definition: VolumeDefinition) -> Any:
        """libvirt makes the volume ``definition`` describes; the new libvirt volume."""
        return self.endpoint.create_volume(definition.to_xml())

    def create(self, name: str, size: int) -> int:
        """Make an empty raw volume of ``size`` bytes (a cutover's); the size it really has."""
        size = self.whole(size)
        self.define(VolumeDefinition(name, size, 'raw', allocation=self.allocation(size)))
        return size

    def remove(self, name: str) -> None:
        self.endpoint.delete_volume(name)

    @abc.abstractmethod
    def write_image(self, name: str, image: ImageData, volume_format: str = 'raw',
                    progress: Callable[[int], object] | None = None) -> str:
        """Write ``image`` into the existing empty volume ``name`` (of ``volume_format``); how (the method).
        ``progress(bytes)``: how far the write is, of ``image.virtual_size`` (_core/progress.py)."""

    def open_for_stream(self, name: str) -> int:
        """A descriptor (the caller's to close) for writing the bytes of the existing volume ``name`` here."""
        raise StoragePoolsError('%s: %s volumes cannot be written from a stream' % (self.option, self.endpoint.type))

    def write(self, name: str, legacy: Any, progress: Callable[[int], object] | None = None) -> None:
        """A cutover's write of a legacy disk into the new volume ``name``."""
        self.write_image(name, legacy_image(legacy), progress=progress)

    def copy_steps(self, name: str, image: ImageData, definition: VolumeDefinition,
                   written: Callable[[str], object], progress: Any = NO_PROGRESS) -> tuple:
        """(method, [Plan.add keyword arguments]) of a full copy of ``image`` into the new volume ``name``:
        the volume is made, then the data is written. ``written(method)`` is called with how it was written;
        ``progress``: the run's reporter (_core/progress.py)."""
        method = self.copy_method(image, definition.format)
        create = dict(action='create', detail=self.create_detail(name, definition, method),
                      do=functools.partial(self.define, definition), undo=functools.partial(self.remove, name),
                      option=self.option)
        action, detail = self.write_detail(name, image, definition.format, method)

        def write():
            progress.begin(action, disk='%s/%s' % (self.pool_name, name), bytes_total=image.virtual_size)
            written(self.write_image(name, image, definition.format, progress=progress.advance))
        write = dict(action=action, detail=detail, option=self.option, do=write)
        return method, [create, write]

    def create_detail(self, name: str, definition: VolumeDefinition, _method: str) -> str:
        return "create %s '%s'" % (self.kind, name)

    def write_detail(self, name: str, image: ImageData, volume_format: str, _method: str) -> tuple:
        """(action, detail) of the step that writes ``image`` into ``name``."""
        return 'convert', "convert %s (%s) into '%s' (%s)" % (image.label, image.format, name, volume_format)

    def copy_method(self, image: ImageData, volume_format: str) -> str:
        """How write_image writes ``image`` (as planned; a raw file copy may turn out a reflink)."""
        return 'qemu-img-convert'

    def cow_steps(self, name: str, source: Any, definition: VolumeDefinition) -> tuple:
        """(method, [Plan.add keyword arguments]) of a copy-on-write volume ``name`` on ``source``."""
        raise StoragePoolsError('mode: a %s pool makes no copy-on-write volumes' % self.endpoint.type)

    def listing_steps(self, name: str) -> list:
        """Steps after a new volume is written so that libvirt lists it (none: libvirt made it)."""
        return []

    def parent_steps(self, _name: str, _planned: bool, option: str | None = None) -> list:
        """Steps that make volume ``name`` a parent of copy-on-write clones (``planned``: it is being written
        in this plan; ``option``: what a failure names, else the backend's); none where any volume is one."""
        return []

    # -- space --------------------------------------------------------------

    @abc.abstractmethod
    def space_for(self, image: ImageData, capacity: int, volume_format: str = 'raw', cow: bool = False) -> int:
        """The bytes a new volume of ``capacity`` written from ``image`` takes here (_backends/space.py)."""

    def space_needed(self, legacy: Any) -> int:
        """The bytes a cutover's import of a legacy disk takes."""
        image = legacy_image(legacy)
        return self.space_for(image, image.virtual_size)

    @abc.abstractmethod
    def space_available(self) -> int:
        """The bytes new volumes may still take."""

    def space_freed(self, _name: str) -> int:
        """The bytes removing a killed import's volume ``name`` frees (0: unknown, count nothing)."""
        return 0

    @abc.abstractmethod
    def where(self) -> str:
        """Where new volumes go, in words (space messages say it)."""

    def space_where(self) -> str:
        """where(), naming the libvirt pool too (a task names the pool, not what is behind it)."""
        return "%s of pool '%s'" % (self.where(), self.pool_name)

    def require_space(self, needed: int, what: str) -> None:
        """Refuse, before anything is written, a new volume (``what``) of ``needed`` bytes that does not fit."""
        limits.require_space(needed, self.space_available(), self.space_where(), self.option, what)

    # -- what a domain and qemu-img open ---------------------------------------

    def qemu_target(self, name: str) -> str:
        """What qemu-img opens for volume ``name`` (raw)."""
        return self.location(name)

    def compares_as_files(self) -> bool:
        """Whether a raw volume can be compared byte for byte as a file here (else qemu-img compare)."""
        return False

    @abc.abstractmethod
    def point(self, disk: Any, name: str) -> None:
        """Make domain disk ``disk`` (_xml/domain.py) use volume ``name``."""

    @abc.abstractmethod
    def domain_volume(self, disk: Any, instance_uuid: str) -> str | None:
        """The name of the volume of this backend that domain disk ``disk`` uses for ``instance_uuid``."""

    @staticmethod
    def _instance_volume_at(path, directory: str, instance_uuid: str):
        """The ``<uuid>_*`` volume name of ``path`` (a disk's source) when it is in ``directory``, else None."""
        prefix = os.path.join(directory, instance_uuid + '_')
        return os.path.basename(path) if path and path.startswith(prefix) else None

    def close(self) -> None:
        """Let go of what the backend opened (a Ceph connection)."""

    # -- quarantine: reclaimed volumes kept restorable in O(1) until purged (nova_storage_prune) ----------------
    # A step is (journal step name, detail, do); each one is safe to run again after a kill, and a rerun
    # re-observes the pool, so whatever a killed run left converges.

    def observe_volumes(self) -> tuple[dict, dict, dict, dict]:
        """(locations, sizes, records, unusable) of the pool's volumes, quarantined ones not among them:
        {name: path or ``<ceph pool>/<image>``}, {name: bytes it takes}, {name: record}, {name: why it is never
        touched}."""
        locations, sizes, records = {}, {}, {}
        for name in sorted(self.names()):
            locations[name] = self.location(name)
            sizes[name] = self.size(name)
            records[name] = self.read_record(name)
        return locations, sizes, records, {}

    def clone_children(self, _name: str) -> list:
        """The clones that depend on volume ``name`` where the storage links them (rbd), else none."""
        return []

    def snapshot_origins(self) -> dict:
        """{snapshot volume: its origin volume} where the storage links them (LVM), else none."""
        return {}

    def capacity_and_used(self) -> tuple[int, int]:
        """(capacity, bytes used) of the pool, as libvirt counts them after a refresh."""
        self.endpoint.refresh()
        _state, capacity, allocation, _available = self.endpoint.pool.info()
        return capacity, allocation

    def quarantined(self) -> list:
        """[(name, expires_at, bytes)] of the volumes this collection quarantined in the pool."""
        return []

    def quarantined_records(self) -> dict:
        """{name: record} of the volumes in quarantine (a restore brings back what their records name)."""
        return {}

    def marked_volumes(self) -> set:
        """Volumes in the pool that still carry a quarantine mark (left by a killed run)."""
        return set()

    def _no_quarantine(self):
        return StoragePoolsError('%s: %s pools keep no quarantine in this version' % (self.option, self.endpoint.type))

    def quarantine_steps(self, name: str, expires_at: float) -> list:
        """Steps that move volume ``name`` into quarantine until ``expires_at`` (out of libvirt's list)."""
        raise self._no_quarantine()

    def purge_steps(self, name: str) -> list:
        """Steps that delete the quarantined volume ``name``."""
        raise self._no_quarantine()

    def restore_steps(self, name: str) -> list:
        """Steps that bring the quarantined volume ``name`` back (name, record, data), listed by libvirt."""
        raise self._no_quarantine()
