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

from ansible_collections.storagepools.libvirt.plugins.module_utils._core import names
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._images import qemu_img
from ansible_collections.storagepools.libvirt.plugins.module_utils._images.copy import (
    CHUNK,
    data_extents,
    open_for_reading,
)

try:
    import rados
    import rbd
    HAS_RBD = True
except ImportError:
    rados = rbd = None
    HAS_RBD = False

META_KEY = 'user.storagepools.libvirt'  # image-meta: any holder of the pool's cephx key can write it
BASE_SNAPSHOT = 'storagepools-base'
DEFAULT_MON_PORT = 6789


class RbdPool:
    """The Ceph pool behind a libvirt rbd pool, opened with librbd."""

    def __init__(self, pool_xml_root, keyring, connect_timeout=10, op_timeout=120):
        if not HAS_RBD:
            raise StoragePoolsError('pool: an rbd pool needs the Ceph Python bindings on the managed host '
                                    '(Debian/Ubuntu: python3-rados python3-rbd)')
        self.ceph_pool = pool_xml_root.findtext('source/name')
        auth = pool_xml_root.find('source/auth')
        self.user = auth.get('username') if auth is not None else 'admin'
        self.keyring = keyring or '/etc/ceph/ceph.client.%s.keyring' % self.user
        self.mon_host = ','.join('%s:%s' % (host.get('name'), host.get('port') or DEFAULT_MON_PORT)
                                 for host in pool_xml_root.findall('source/host'))
        self.timeout = connect_timeout
        self.op_timeout = op_timeout  # one OSD or monitor operation (an 8 MiB write at most)
        self.cluster = None
        self.ioctx = None

    def open(self):
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

    def close(self):
        if self.ioctx is not None:
            self.ioctx.close()
            self.cluster.shutdown()
            self.ioctx = self.cluster = None

    def list(self):
        return rbd.RBD().list(self.open().ioctx)

    def max_avail(self, option):
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

    def exists(self, name):
        return name in self.list()

    def read_metadata(self, name):
        with rbd.Image(self.open().ioctx, name, read_only=True) as image:
            try:
                return json.loads(image.metadata_get(META_KEY))
            except KeyError:
                return None

    def write_metadata(self, name, record):
        with rbd.Image(self.open().ioctx, name) as image:
            image.metadata_set(META_KEY, json.dumps(record, sort_keys=True, separators=(',', ':')))

    def size(self, name):
        with rbd.Image(self.open().ioctx, name, read_only=True) as image:
            return image.size()

    def has_data(self, name):
        """Whether any object of image ``name`` was ever written (its parent's data not counted)."""
        extents = []
        with rbd.Image(self.open().ioctx, name, read_only=True) as image:
            image.diff_iterate(0, image.size(), None, lambda _offset, _length, exists: extents.append(exists),
                               include_parent=False, whole_object=True)
        return any(extents)

    def resize(self, name, size):
        with rbd.Image(self.open().ioctx, name) as image:
            image.resize(size)

    def create(self, name, size):
        rbd.RBD().create(self.open().ioctx, name, size, old_format=False, features=rbd.RBD_FEATURE_LAYERING)

    def remove(self, name):
        rbd.RBD().remove(self.open().ioctx, name)

    def write_raw_file(self, name, path):
        """Write the data extents of the raw file ``path`` (or an open descriptor) into image ``name``; skip
        zero chunks."""
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
            image.flush()

    def reader(self, name):
        """A read-only file-like view of image ``name`` (seek/read), for image_inspect: (reader, size)."""
        image = rbd.Image(self.open().ioctx, name, read_only=True)
        return _ImageReader(image), image.size()

    def qemu_target(self, name):
        """qemu's rbd filename for image ``name`` (the key stays in the keyring file), every part escaped."""
        return names.rbd_filename(self.ceph_pool, name, [('id', self.user), ('keyring', self.keyring),
                                                         ('mon_host', self.mon_host.replace(',', ';'))])

    def ensure_protected_snapshot(self, name):
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

    def snapshot_protected(self, name):
        with rbd.Image(self.open().ioctx, name, read_only=True) as image:
            snaps = [snap['name'] for snap in image.list_snaps()]
            return BASE_SNAPSHOT in snaps and image.is_protected_snap(BASE_SNAPSHOT)

    def remove_snapshot(self, name):
        with rbd.Image(self.open().ioctx, name) as image:
            if image.is_protected_snap(BASE_SNAPSHOT):
                image.unprotect_snap(BASE_SNAPSHOT)
            image.remove_snap(BASE_SNAPSHOT)

    def clone(self, parent, child, size):
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


def convert_into_rbd(rbd_pool, name, source, source_format, option, local_file=True, size=0, pass_fds=()):
    """Write an image into the new rbd image ``name`` of ``rbd_pool``: a raw local file through librbd (its
    data extents, zero chunks skipped), anything else (another format, another pool's image) through qemu's
    rbd driver with both formats explicit; the key stays in the keyring file. ``size``: the bytes it moves
    (the raw size), for the command's timeout."""
    if source_format == 'raw' and local_file:
        rbd_pool.write_raw_file(name, source)
    else:
        qemu_img.convert(source, source_format, rbd_pool.qemu_target(name), 'raw', option, size=size,
                         pass_fds=pass_fds)
