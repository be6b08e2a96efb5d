# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""rbd images where libvirt has no primitive: import, clone, recorded metadata.

libvirt cannot upload into an rbd pool nor create an rbd volume from a
volume of another pool, and it clones only inside one Ceph pool. So images
are written with librbd (python3-rbd) with the same guarantees as file
copies: only data extents are written (sparse stays sparse), a clone's
parent snapshot is created and protected where missing, and what a failed
run made is removed. The Ceph client connects with the pool's own monitors
and user, and the user's key from a keyring file on the managed host (never
on a command line). Metadata lives in the image's own image-meta.

Every librados/librbd call is bounded: the client gives up connecting after
``client_mount_timeout``, on a monitor command after ``rados_mon_op_timeout``
and on an OSD operation (a dead OSD, a pool without quorum) after
``rados_osd_op_timeout``, so a broken cluster ends in an error, not a hung task.
"""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import space as limits
from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.base import StorageBackend
from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.naming import BASE_SNAPSHOT
from ansible_collections.storagepools.libvirt.plugins.module_utils._core import names
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._images import qemu_img
from ansible_collections.storagepools.libvirt.plugins.module_utils._images.copy import (
    CHUNK,
    data_extents,
    open_for_reading,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.connection import libvirt
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.listing import or_fail

if TYPE_CHECKING:  # annotations only: nothing more is imported at run time
    from collections.abc import Callable
    from typing import Any

    from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.base import ImageData
    from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.pool import Endpoint
    from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.volume import VolumeDefinition

try:
    import rados
    import rbd
    HAS_RBD = True
except ImportError:
    rados = rbd = None
    HAS_RBD = False

META_KEY = 'user.storagepools.libvirt'  # image-meta: any holder of the pool's cephx key can write it
DEFAULT_MON_PORT = 6789


class RbdPool:
    """The Ceph pool behind a libvirt rbd pool, opened with librbd."""

    def __init__(self, definition: Any, keyring: str | None, connect_timeout: int = 10,
                 op_timeout: int = 120) -> None:
        if not HAS_RBD:
            raise StoragePoolsError('pool: an rbd pool needs the Ceph Python bindings on the managed host '
                                    '(Debian/Ubuntu: python3-rados python3-rbd)')
        source = definition.source
        self.ceph_pool = source.name
        self.user = source.auth.username if source.auth is not None and source.auth.username else 'admin'
        self.keyring = keyring or '/etc/ceph/ceph.client.%s.keyring' % self.user
        self.mon_host = ','.join('%s:%s' % (host.name, host.port or DEFAULT_MON_PORT) for host in source.hosts)
        self.timeout = connect_timeout
        self.op_timeout = op_timeout  # one OSD or monitor operation (an 8 MiB write at most)
        self.cluster = None
        self.ioctx = None

    def open(self) -> RbdPool:
        if self.ioctx is not None:
            return self
        try:
            conf = {'mon_host': self.mon_host, 'keyring': self.keyring, 'client_mount_timeout': str(self.timeout),
                    'rados_mon_op_timeout': str(self.op_timeout), 'rados_osd_op_timeout': str(self.op_timeout)}
            cluster = rados.Rados(rados_id=self.user, conf=conf)
            cluster.connect(timeout=self.timeout)
        except rados.Error as exc:
            raise StoragePoolsError("ceph_keyring: cannot connect to Ceph (mons %s) as client.%s with the keyring "
                                    "%s; check that the file exists on the managed host and holds that user's key"
                                    % (self.mon_host, self.user, self.keyring), libvirt_error=str(exc))
        try:
            self.ioctx = cluster.open_ioctx(self.ceph_pool)
        except rados.Error as exc:
            cluster.shutdown()
            raise StoragePoolsError("pool: cannot open Ceph pool '%s'" % self.ceph_pool, libvirt_error=str(exc))
        self.cluster = cluster
        return self

    def close(self) -> None:
        if self.ioctx is not None:
            self.ioctx.close()
            self.cluster.shutdown()
            self.ioctx = self.cluster = None

    def list(self) -> list:
        return rbd.RBD().list(self.open().ioctx)

    def max_avail(self, option: str) -> int:
        """The bytes the Ceph pool can still take (``ceph df``'s max_avail: replication and the fullest OSD
        already counted); StoragePoolsError naming ``option`` when the monitors do not say."""
        command = json.dumps({'prefix': 'df', 'format': 'json'})
        try:
            # bounded by rados_mon_op_timeout (open): the binding ignores its own timeout argument
            ret, out, err = self.open().cluster.mon_command(command, b'')
        except rados.Error as exc:
            raise StoragePoolsError("%s: asking the Ceph monitors (%s) for the free space of pool '%s' failed"
                                    % (option, self.mon_host, self.ceph_pool), libvirt_error=str(exc)) from exc
        if ret != 0:
            raise StoragePoolsError("%s: the Ceph monitors (%s) refused 'df' to client.%s (its caps need "
                                    "'mon profile rbd' or 'allow r'), so the free space of pool '%s' is unknown"
                                    % (option, self.mon_host, self.user, self.ceph_pool), libvirt_error=err)
        for pool in json.loads(out).get('pools', []):
            if pool.get('name') == self.ceph_pool:
                return int(pool['stats']['max_avail'])
        raise StoragePoolsError("%s: 'ceph df' does not list pool '%s'" % (option, self.ceph_pool))

    def exists(self, name: str) -> bool:
        return name in self.list()

    def read_metadata(self, name: str) -> dict | None:
        with rbd.Image(self.open().ioctx, name, read_only=True) as image:
            try:
                return json.loads(image.metadata_get(META_KEY))
            except KeyError:
                return None

    def write_metadata(self, name: str, record: dict) -> None:
        with rbd.Image(self.open().ioctx, name) as image:
            image.metadata_set(META_KEY, json.dumps(record, sort_keys=True, separators=(',', ':')))

    def size(self, name: str) -> int:
        with rbd.Image(self.open().ioctx, name, read_only=True) as image:
            return image.size()

    def has_data(self, name: str) -> bool:
        """Whether any object of image ``name`` was ever written (its parent's data not counted)."""
        extents = []
        with rbd.Image(self.open().ioctx, name, read_only=True) as image:
            image.diff_iterate(0, image.size(), None, lambda _offset, _length, exists: extents.append(exists),
                               include_parent=False, whole_object=True)
        return any(extents)

    def resize(self, name: str, size: int) -> None:
        with rbd.Image(self.open().ioctx, name) as image:
            image.resize(size)

    def create(self, name: str, size: int) -> None:
        rbd.RBD().create(self.open().ioctx, name, size, old_format=False, features=rbd.RBD_FEATURE_LAYERING)

    def remove(self, name: str) -> None:
        rbd.RBD().remove(self.open().ioctx, name)

    def write_raw_file(self, name: str, path: int | str, progress: Callable[[int], object] | None = None) -> None:
        """Write the data extents of the raw file ``path`` (or an open descriptor) into image ``name``; skip
        zero chunks. ``progress(offset)``: as data_copy.copy_file's."""
        zero = bytes(CHUNK)
        with open_for_reading(path) as source, rbd.Image(self.open().ioctx, name) as image:
            size = image.size()
            for start, end in data_extents(source.fileno(), size):
                offset = start
                while offset < end:
                    data = os.pread(source.fileno(), min(CHUNK, end - offset), offset)
                    if data != zero[:len(data)]:
                        image.write(data, offset)
                    offset += len(data)
                    if progress is not None:
                        progress(offset)
            image.flush()

    def reader(self, name: str) -> tuple:
        """A read-only file-like view of image ``name`` (seek/read), for image_inspect: (reader, size)."""
        image = rbd.Image(self.open().ioctx, name, read_only=True)
        return _ImageReader(image), image.size()

    def qemu_target(self, name: str) -> str:
        """qemu's rbd filename for image ``name`` (the key stays in the keyring file), every part escaped."""
        return names.rbd_filename(self.ceph_pool, name, [('id', self.user), ('keyring', self.keyring),
                                                         ('mon_host', self.mon_host.replace(',', ';'))])

    def ensure_protected_snapshot(self, name: str) -> bool:
        """Make and protect the parent snapshot clones need; True when this call made it."""
        with rbd.Image(self.open().ioctx, name) as image:
            snaps = [snap['name'] for snap in image.list_snaps()]
            made = False
            if BASE_SNAPSHOT not in snaps:
                image.create_snap(BASE_SNAPSHOT)
                made = True
            if not image.is_protected_snap(BASE_SNAPSHOT):
                image.protect_snap(BASE_SNAPSHOT)
            return made

    def snapshot_protected(self, name: str) -> bool:
        with rbd.Image(self.open().ioctx, name, read_only=True) as image:
            snaps = [snap['name'] for snap in image.list_snaps()]
            return BASE_SNAPSHOT in snaps and image.is_protected_snap(BASE_SNAPSHOT)

    def remove_snapshot(self, name: str) -> None:
        with rbd.Image(self.open().ioctx, name) as image:
            if image.is_protected_snap(BASE_SNAPSHOT):
                image.unprotect_snap(BASE_SNAPSHOT)
            image.remove_snap(BASE_SNAPSHOT)

    def children(self, name: str) -> list:
        """``pool/image`` of every clone of snapshot BASE_SNAPSHOT of image ``name`` (trashed clones too)."""
        try:
            with rbd.Image(self.open().ioctx, name, snapshot=BASE_SNAPSHOT, read_only=True) as image:
                return sorted('%s/%s' % (child['pool'], child['image']) for child in image.list_children2())
        except rbd.ImageNotFound:  # no such snapshot (or image): no clone
            return []

    def unprotect_childless(self, name: str) -> None:
        """Unprotect every protected snapshot of image ``name``; refused while any snapshot has a clone."""
        with rbd.Image(self.open().ioctx, name) as image:
            for snap in list(image.list_snaps()):
                image.set_snap(snap['name'])
                children = list(image.list_children2())
                image.set_snap(None)
                if children:
                    raise StoragePoolsError("pool: snapshot %s of rbd image '%s' has clones (%s); it is not removed"
                                            % (snap['name'], name, ', '.join(sorted(
                                                '%s/%s' % (c['pool'], c['image']) for c in children))))
                if image.is_protected_snap(snap['name']):
                    image.unprotect_snap(snap['name'])

    def clone(self, parent: str, child: str, size: int) -> None:
        ioctx = self.open().ioctx
        rbd.RBD().clone(ioctx, parent, BASE_SNAPSHOT, ioctx, child, features=rbd.RBD_FEATURE_LAYERING)
        with rbd.Image(ioctx, child) as image:
            if image.size() < size:
                image.resize(size)


class _ImageReader:
    """seek/read/close over an open rbd.Image."""

    def __init__(self, image):
        self.image = image
        self.offset = 0

    def seek(self, offset, whence=0):
        self.offset = offset if whence == 0 else self.image.size() + offset if whence == 2 else self.offset + offset

    def read(self, length):
        data = self.image.read(self.offset, max(0, min(length, self.image.size() - self.offset)))
        self.offset += len(data)
        return data

    def close(self):
        self.image.close()


# -- quarantine: the Ceph trash, with the expiry as the trash's deferment and our mark in the image-meta ------
QUARANTINE_KEY = META_KEY + '.quarantine'


def _trash_entries(pool: RbdPool) -> list:
    """[(id, name, expires_at, bytes)] of the images in the trash that this collection quarantined (our mark
    in their image-meta; another tool's trash entries are never touched)."""
    found = []
    ioctx = pool.open().ioctx
    for entry in rbd.RBD().trash_list(ioctx):
        try:
            with rbd.Image(ioctx, image_id=entry['id'], read_only=True) as image:
                mark = json.loads(image.metadata_get(QUARANTINE_KEY))
                found.append((entry['id'], entry['name'], float(mark['expires_at']), image.size()))
        except (KeyError, ValueError, TypeError, rbd.Error):
            continue
    return found


class RbdBackend(StorageBackend):
    """Raw images of the Ceph pool behind a libvirt rbd pool: imports written with librbd (or qemu's rbd
    driver), copy-on-write volumes as clones of a protected snapshot, records in image-meta; libvirt lists
    new images after a pool refresh. Domains reach them as network disks with the pool's Ceph auth.

    ``rbd_pool``: an open RbdPool of this pool to reuse (bulk callers connect to Ceph once); else one is
    opened when first needed and closed by close()."""

    kind = 'rbd image'
    method = 'rbd-import'

    def __init__(self, endpoint: Endpoint, option: str = 'pool', ceph_keyring: str | None = None,
                 rbd_pool: RbdPool | None = None) -> None:
        super().__init__(endpoint, option, ceph_keyring)
        self._rbd = rbd_pool
        self._owns_rbd = rbd_pool is None
        self.ceph_pool = endpoint.definition.source.name
        self._names = None
        self._auth = None

    @property
    def rbd(self) -> RbdPool:
        if self._rbd is None:
            self._rbd = RbdPool(self.endpoint.definition, self.ceph_keyring)
        return self._rbd

    def _user_and_secret(self):
        """(cephx user, libvirt secret uuid) of the pool's <auth>, which Nova's rbd disks name."""
        if self._auth is None:
            auth = self.endpoint.definition.source.auth
            if auth is None or not (auth.secret_uuid or auth.secret_usage):
                raise StoragePoolsError("%s: rbd pool '%s' has no <auth>; Nova's rbd disks need a cephx user and "
                                        "a libvirt secret (rbd_pool_secret, virt_pool_ensure source.auth)"
                                        % (self.option, self.pool_name))
            uuid = auth.secret_uuid
            if not uuid:
                found = or_fail("%s: the secret of rbd pool '%s' (usage %s) cannot be found"
                                % (self.option, self.pool_name, auth.secret_usage),
                                self.endpoint.conn.secretLookupByUsage, libvirt.VIR_SECRET_USAGE_TYPE_CEPH,
                                auth.secret_usage)
                uuid = found.UUIDString()
            self._auth = (auth.username, uuid)
        return self._auth

    def nova_settings(self) -> dict:
        user, secret_uuid = self._user_and_secret()
        return {'libvirt': {'images_type': 'rbd', 'images_rbd_pool': self.ceph_pool,
                            'rbd_user': user, 'rbd_secret_uuid': secret_uuid},
                'DEFAULT': {'force_raw_images': 'True'}}

    @staticmethod
    def moves(_legacy: Any) -> bool:
        return True  # Nova's rbd backend imports even the config drive

    def location(self, name: str) -> str:
        return '%s/%s' % (self.ceph_pool, name)

    def names(self) -> set:
        if self._names is None:
            self._names = set(self.rbd.list())
        return self._names

    def read_record(self, name: str) -> dict | None:
        return self.rbd.read_metadata(name)

    def write_record(self, name: str, record: dict) -> None:
        self.rbd.write_metadata(name, record)

    def records_readable(self, local: bool) -> bool:
        return bool(self.ceph_keyring)  # image-meta is read with the pool user's key, from anywhere

    def size(self, name: str) -> int:
        return self.rbd.size(name)

    def grow(self, name: str, capacity: int) -> None:
        self.rbd.resize(name, capacity)

    def untouched(self, name: str, size: int) -> bool:
        """Whether image ``name`` is still as ``create(name, size)`` made it: that size, no data written."""
        return self.rbd.size(name) == size and not self.rbd.has_data(name)

    def clone_format(self, mode: str, volume_format: str | None, source: Any) -> str:
        if volume_format not in (None, 'raw'):
            raise StoragePoolsError('format: volumes of an rbd pool are raw images')
        if (mode == 'cow') != (source.rbd is not None):
            raise StoragePoolsError('source: on an rbd pool, mode cow clones an image of the same pool, '
                                    'mode copy imports an image file or a file-pool volume')
        return 'raw'

    def backing_location(self, source: Any) -> dict:
        return {'snapshot': BASE_SNAPSHOT}

    def backing_path(self, source: Any, definition: VolumeDefinition) -> str:
        return '%s@%s' % (self.location(source.rbd), BASE_SNAPSHOT)

    def define(self, definition: VolumeDefinition) -> None:
        self.rbd.create(definition.name, definition.capacity)
        self.names().add(definition.name)

    def remove(self, name: str) -> None:
        self.rbd.remove(name)
        self.names().discard(name)

    def copy_method(self, image: ImageData, volume_format: str) -> str:
        return 'rbd-import'

    def write_detail(self, name: str, image: ImageData, volume_format: str, method: str) -> tuple:
        return 'import', "import %s (%s) into rbd image '%s'" % (image.label, image.format, name)

    def write_image(self, name: str, image: ImageData, volume_format: str = 'raw',
                    progress: Callable[[int], object] | None = None) -> str:
        """A raw file here through librbd (its data extents, zero chunks skipped), anything else (another
        format, another pool's image) through qemu's rbd driver with both formats explicit; the key stays in
        the keyring file."""
        if image.format == 'raw' and image.local is not None:
            self.rbd.write_raw_file(name, image.local, progress)
        else:
            qemu_img.convert(image.filename, image.format, self.rbd.qemu_target(name), 'raw', self.option,
                             size=image.virtual_size, pass_fds=image.pass_fds, progress=progress)
        return 'rbd-import'

    def cow_steps(self, name: str, source: Any, definition: VolumeDefinition) -> tuple:
        made = []

        def protect():
            if self.rbd.ensure_protected_snapshot(source.rbd):
                made.append(source.rbd)

        def unprotect():
            if made:
                self.rbd.remove_snapshot(source.rbd)

        def clone():
            self.rbd.clone(source.rbd, name, definition.capacity)
            self.names().add(name)

        snapshot = dict(action='snapshot', do=protect,
                        detail="protect snapshot %s of '%s' for clones" % (BASE_SNAPSHOT, source.rbd), undo=unprotect,
                        option='source')
        make = dict(action='clone', detail="clone '%s' from %s@%s" % (name, source.rbd, BASE_SNAPSHOT), do=clone,
                    undo=lambda: self.remove(name), option=self.option)
        return 'rbd-clone', [snapshot, make]

    def listing_steps(self, name: str) -> list:
        return [dict(action='refresh', detail="refresh pool '%s' so libvirt lists '%s'" % (self.pool_name, name),
                     do=self.endpoint.refresh, option=self.option)]

    def parent_steps(self, name: str, planned: bool, option: str | None = None) -> list:
        if not planned and self.rbd.snapshot_protected(name):
            return []
        return [dict(action='snapshot', detail="protect snapshot %s of '%s' for clones" % (BASE_SNAPSHOT, name),
                     do=lambda: self.rbd.ensure_protected_snapshot(name), option=option or self.option)]

    def space_for(self, image: ImageData, capacity: int, volume_format: str = 'raw', cow: bool = False) -> int:
        return 0 if cow else limits.rbd_need(image.virtual_size)  # a clone shares its parent

    def space_available(self) -> int:
        return self.rbd.max_avail(option=self.option)

    def where(self) -> str:
        return "Ceph pool '%s'" % self.ceph_pool

    def qemu_target(self, name: str) -> str:
        return self.rbd.qemu_target(name)  # qemu's rbd driver; the key stays in the keyring file

    def point(self, disk: Any, name: str) -> None:
        user, secret_uuid = self._user_and_secret()
        hosts = [(host.name, host.port) for host in self.endpoint.definition.source.hosts]
        disk.point_at_rbd(self.location(name), hosts, user, secret_uuid)

    def domain_volume(self, disk: Any, instance_uuid: str) -> str | None:
        prefix = '%s/%s_' % (self.ceph_pool, instance_uuid)
        image = disk.rbd_image or ''
        return image.split('/', 1)[1] if image.startswith(prefix) else None

    def close(self) -> None:
        if self._owns_rbd and self._rbd is not None:
            self._rbd.close()

    # -- quarantine: librbd's trash_move / trash_restore / trash_remove -------------------------------------
    # A base's protected snapshot (the parent of clones) is unprotected before its image goes into the trash,
    # only while it has no clone (a trashed clone counts), and protected again on restore; the mark records
    # which snapshots were protected. A purge removes the image's snapshots, then the image.

    def _trash_id(self, name):
        for image_id, trashed, _expires, _size in _trash_entries(self.rbd):
            if trashed == name:
                return image_id
        return None

    def quarantined(self) -> list:
        return [(name, expires, size) for _id, name, expires, size in _trash_entries(self.rbd)]

    def quarantine_steps(self, name: str, expires_at: float) -> list:
        def mark():
            if name in self.rbd.list():
                with rbd.Image(self.rbd.open().ioctx, name) as image:
                    try:
                        previous = json.loads(image.metadata_get(QUARANTINE_KEY))
                    except (KeyError, ValueError):
                        previous = {}
                    protected = set(previous.get('protected', ())) | set(
                        snap['name'] for snap in image.list_snaps() if image.is_protected_snap(snap['name']))
                    image.metadata_set(QUARANTINE_KEY, json.dumps({'volume': name, 'expires_at': expires_at,
                                                                   'protected': sorted(protected)}))

        def trash():
            if name in self.rbd.list():
                self.rbd.unprotect_childless(name)
                delay = max(0, int(expires_at - time.time()))
                rbd.RBD().trash_move(self.rbd.open().ioctx, name, delay)
            self.names().discard(name)

        return [('mark', "mark rbd image '%s' as quarantined (with its expiry)" % name, mark),
                ('quarantine', "move rbd image '%s' into the trash of Ceph pool '%s' (its snapshots unprotected)"
                 % (name, self.ceph_pool), trash),
                ('unlist', "refresh pool '%s' so libvirt stops listing '%s'" % (self.pool_name, name),
                 self.endpoint.refresh)]

    def purge_steps(self, name: str) -> list:
        def purge():
            image_id = self._trash_id(name)
            if image_id is not None:  # our own expiry decides: force past the trash's deferment
                ioctx = self.rbd.open().ioctx
                with rbd.Image(ioctx, image_id=image_id) as image:
                    for snap in list(image.list_snaps()):
                        if image.is_protected_snap(snap['name']):
                            image.unprotect_snap(snap['name'])  # librbd refuses while a clone uses it
                        image.remove_snap(snap['name'])
                rbd.RBD().trash_remove(ioctx, image_id, force=True)

        return [('purge', "delete rbd image '%s' (and its snapshots) from the trash" % name, purge)]

    def restore_steps(self, name: str) -> list:
        def restore():
            image_id = self._trash_id(name)
            if image_id is not None:
                if name in self.rbd.list():
                    raise StoragePoolsError("restore: Ceph pool '%s' holds another image '%s'; it stays in the "
                                            "trash" % (self.ceph_pool, name))
                rbd.RBD().trash_restore(self.rbd.open().ioctx, image_id, name)
            self.names().add(name)

        def unmark():
            with rbd.Image(self.rbd.open().ioctx, name) as image:
                try:
                    mark = json.loads(image.metadata_get(QUARANTINE_KEY))
                except (KeyError, ValueError):
                    return
                snaps = set(snap['name'] for snap in image.list_snaps())
                for snap in mark.get('protected', ()) if isinstance(mark, dict) else ():
                    if snap in snaps and not image.is_protected_snap(snap):
                        image.protect_snap(snap)
                image.metadata_remove(QUARANTINE_KEY)

        return [('restore', "restore rbd image '%s' from the trash" % name, restore),
                ('unmark', "protect the snapshots of rbd image '%s' again and drop its quarantine mark" % name,
                 unmark),
                ('register', "refresh pool '%s' so libvirt lists '%s' again" % (self.pool_name, name),
                 self.endpoint.refresh)]

    def clone_children(self, name: str) -> list:
        """The clones of image ``name``'s snapshot BASE_SNAPSHOT (``pool/image``; a trashed clone too)."""
        return self.rbd.children(name)
