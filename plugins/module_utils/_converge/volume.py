# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Planning one ``virt_volume_clone`` task: a volume made from a volume or an image file.

The source's format is a recorded fact (_backends/records.py) or declared by the
task, never probed, and never libvirt's (it keeps the format its own probe
found at the last pool start or refresh, which a guest writing the file
steers). A file source is opened once and inspected through that descriptor
(image_inspect.OpenedImage); every tool then reads the same file through
``/proc/self/fd/N`` and is told the format explicitly.

``cloner_for`` picks the cloner of the destination's backend; how the bytes
move is chosen per case (docs/volumes.md):

- FileCloner (dir, fs, netfs): raw to raw a reflink or a sparse copy of the
  data extents (data_copy); a conversion ``qemu-img convert -n -f -O`` into
  the volume libvirt made (never libvirt's createXMLFrom, which reads the
  source as the format libvirt probed); cow a qcow2 overlay whose
  backingStore has an explicit format;
- LogicalCloner: thick LVs written with ``qemu-img convert``; cow an LVM
  snapshot;
- RbdCloner: librbd (or qemu's rbd driver) imports; cow a clone of a
  protected snapshot.

Whatever another process wrote is flushed before it is recorded.
"""

from __future__ import annotations

import functools
import os

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import (
    logical as lvm,
    rbd as rbd_volume,
    records as metadata,
    space as limits,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.logical import convert_into_lv
from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.rbd import convert_into_rbd
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.atomic_file import flush
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.plan import Plan
from ansible_collections.storagepools.libvirt.plugins.module_utils._images import (
    copy as data_copy,
    inspect as image_inspect,
    qemu_img,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.connection import is_local_uri
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.pool import Endpoint
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml import tree as xml_tree
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.volume import VolumeDefinition

FILE_POOLS = metadata.FILE_POOL_TYPES


def _explain_write(exc, where=None):
    full = isinstance(exc, OSError) and exc.errno == 28  # ENOSPC, from our own copy
    full = full or 'No space left on device' in (getattr(exc, 'libvirt_error', None) or '')  # from qemu-img
    if full:
        return ('pool', 'No space left on device at %s: the destination pool ran out of space (another writer '
                'used it after the space check?); the partial volume was removed' % (where or 'the destination'))
    return None


def cloner_for(conn, uri, pool, name, ceph_keyring=None, rbd_pool=None):
    """The cloner for destination ``pool``'s backend (file, logical or rbd pool).

    ``rbd_pool``: an open RbdPool of the destination to reuse (bulk callers connect to Ceph once)."""
    dest = Endpoint(conn, pool, 'pool')
    if dest.type in FILE_POOLS:
        return FileCloner(conn, uri, dest, name, ceph_keyring)
    if dest.type == 'logical':
        return LogicalCloner(conn, uri, dest, name, ceph_keyring)
    if dest.type == 'rbd':
        return RbdCloner(conn, uri, dest, name, ceph_keyring, rbd_pool)
    raise StoragePoolsError("pool: '%s' is a %s pool; this version clones into dir, fs, netfs, logical "
                            "and rbd pools" % (pool, dest.type))


class VolumeCloner:
    """One volume made from a source: what every destination shares (the source, the request, the plan).

    A subclass per destination backend says how volumes are found, made, written, recorded and grown."""

    rbd = None  # the RbdPool of an rbd destination (RbdCloner); callers ask it of any cloner

    def __init__(self, conn, uri, dest, name, ceph_keyring=None):
        if not is_local_uri(uri):
            raise StoragePoolsError('uri: cloning reads and writes the volume files on the libvirt host; '
                                    'run the task on that host with a local uri (qemu:///system)')
        self.conn = conn
        self.dest = dest
        self.name = name
        self.ceph_keyring = ceph_keyring
        self.plan = Plan()
        self.method = None
        self.record = None
        self.wanted = None
        self.volume = None
        self.source_path = None  # as the task and the record name it
        self.source_file = None  # a file source, open and inspected (image_inspect.OpenedImage)
        self.source_format = None
        self.source_info = None
        self.source_rbd = None  # name of a source image in the destination's Ceph pool
        self.source_lv = None  # (vg, lv) of a source volume in a logical pool
        self.source_ceph = None  # the RbdPool of a source image in another rbd pool

    # -- the source ---------------------------------------------------------

    def resolve_source(self, source):
        """Find the source, its format (recorded or declared) and inspect its bytes."""
        declared = source.get('format')
        if source.get('path'):
            self.source_path = source['path']
            if not os.path.isabs(self.source_path):
                raise StoragePoolsError('source.path: %r must be an absolute path' % self.source_path)
            identity = {'path': self.source_path}
            # ``opened``: a descriptor of that file a bulk caller already holds (nova_image_cache's base)
            self.source_file = image_inspect.OpenedImage(self.source_path, fd=source.get('opened'))
        else:
            origin = Endpoint(self.conn, source['pool'], 'source.pool')
            volume = origin.volume(source['volume'])
            if volume is None:
                raise StoragePoolsError("source.volume: pool '%s' has no volume '%s'"
                                        % (source['pool'], source['volume']))
            identity = {'pool': source['pool'], 'volume': source['volume']}
            if origin.type == 'rbd' and origin.name == self.dest.name:
                return identity, self._resolve_rbd_source(source['volume'], declared)
            if origin.type == 'rbd':
                return identity, self._resolve_remote_rbd_source(origin, source['volume'], declared)
            if origin.type not in FILE_POOLS + ('logical',):
                raise StoragePoolsError("source.pool: '%s' is a %s pool; this version clones from file and "
                                        "logical pools" % (source['pool'], origin.type))
            self.source_path = volume.path()
            if origin.type == 'logical':
                self.source_lv = (xml_tree.child_text(origin.definition, 'source/name'), source['volume'])
                recorded = lvm.read_record(*self.source_lv)
            else:  # the record of the very file opened (the path may be swapped afterwards)
                self.source_file = image_inspect.OpenedImage(self.source_path)
                recorded = metadata.read_file_metadata(self.source_file.fds[0], name=self.source_path)
            if recorded and declared and recorded.get('format') != declared:
                raise StoragePoolsError('source.format: %s is recorded as %s, the task declares %s'
                                        % (self.source_path, recorded.get('format'), declared))
            declared = declared or (recorded or {}).get('format')
        if not declared:
            raise StoragePoolsError('source.format: %s has no recorded format; declare it (raw, qcow2)'
                                    % self.source_path)
        self.source_format = declared
        if self.source_file is None:  # an LV: a root-owned device node, not a file anyone else can swap
            return identity, image_inspect.inspect(self.source_path, declared,
                                                   max_virtual_size=self._max_virtual_size())
        return identity, self.source_file.inspect(declared, max_virtual_size=self._max_virtual_size())

    @property
    def source_read(self):
        """(path, descriptors to pass) through which tools read the source: the inspected file's own
        descriptor for a file source."""
        if self.source_file is not None:
            return self.source_file.fd_path, self.source_file.fds
        return self.source_path, ()

    def _resolve_remote_rbd_source(self, origin, name, declared):
        """An image of another rbd pool: read through qemu's rbd driver as raw (header checked first)."""
        if declared not in (None, 'raw'):
            raise StoragePoolsError('source.format: rbd images are raw, not %s' % declared)
        self.source_ceph = rbd_volume.RbdPool(origin.definition, self.ceph_keyring)
        recorded = self.source_ceph.read_metadata(name)  # libvirt has already found the image
        if recorded is not None and recorded.get('format') not in (None, 'raw'):
            raise StoragePoolsError('source.volume: %s is recorded as %s; rbd images are raw' % (name, recorded['format']))
        reader, size = self.source_ceph.reader(name)
        try:
            info = image_inspect.inspect_handle(reader, size, '%s/%s' % (self.source_ceph.ceph_pool, name), 'raw',
                                                max_virtual_size=self._max_virtual_size())
        finally:
            reader.close()
        self.source_path = self.source_ceph.qemu_target(name)  # for qemu-img only, never opened as a file
        self.source_format = 'raw'
        return info

    def _resolve_rbd_source(self, name, declared):
        """An image of the destination's own Ceph pool (the parent of an rbd clone): always raw."""
        if declared not in (None, 'raw'):
            raise StoragePoolsError('source.format: rbd images are raw, not %s' % declared)
        self.source_rbd = name
        self.source_format = 'raw'
        size = self.rbd.size(name)
        return image_inspect.ImageInfo('raw', size, size)

    # -- planning -----------------------------------------------------------

    def plan_clone(self, source, mode, dest_format, capacity, extra_metadata, verify):
        identity, info = self.resolve_source(source)
        self.source_info = info
        if extra_metadata:
            identity.update(extra_metadata)
        dest_format = self._check_request(mode, dest_format)
        if dest_format not in ('raw', 'qcow2'):
            raise StoragePoolsError('format: %r is not a volume format this collection writes (raw, qcow2)'
                                    % dest_format)
        if capacity is not None and capacity < info.virtual_size:
            raise StoragePoolsError('capacity: %d bytes is smaller than the source (%d bytes); volumes only '
                                    'grow' % (capacity, info.virtual_size))
        capacity = self._whole(capacity or info.virtual_size)
        backing = None
        if mode == 'cow':
            backing = dict(identity, format=self.source_format)
            backing.pop('image_id', None)
            backing.update(self._backing_location())
        self.wanted = VolumeDefinition(self.name, capacity, dest_format, allocation=self._allocation(capacity),
                                       backing_path=backing.get('path') if backing else None,
                                       backing_format=self.source_format if backing else None)
        self.record = metadata.make_record(dest_format, capacity, identity, backing=backing)
        existing = self._existing()
        if existing is not None:
            self._plan_existing(*existing, capacity=capacity)
            return self.plan
        limits.require_space(self._space_needed(mode, dest_format), self._space_available(), self._space_where(),
                             'pool', "volume '%s'" % self.name)
        self._plan_writes(mode, dest_format, dict(undo=self._delete, explain=self._explain_write))
        if verify and mode == 'copy':
            self.plan.add('verify', "compare '%s' with its source" % self.name, self._verify, option='verify')
        self.record['method'] = self.method
        self.plan.add('record', "record the metadata of '%s'" % self.name, self._write_record, option='metadata')
        return self.plan

    def _plan_existing(self, existing, recorded, capacity):
        if existing is None or not metadata.same_volume(recorded, self.record):
            raise StoragePoolsError(
                "name: pool '%s' already has a volume '%s' that this task did not make (its recorded "
                "source or format differs); choose another name or remove it" % (self.dest.name, self.name))
        self.volume = existing
        self.method = recorded.get('method')
        self.record = recorded
        if capacity > recorded['virtual_size']:
            self.record = dict(recorded, virtual_size=capacity)
            self.plan.add('resize', "grow volume '%s' to %d bytes" % (self.name, capacity),
                          functools.partial(self._resize, capacity), option='capacity')
            self.plan.add('record', "record the metadata of '%s'" % self.name, self._write_record,
                          option='metadata')
        elif capacity < recorded['virtual_size']:
            raise StoragePoolsError('capacity: volume %s is %d bytes; volumes only grow'
                                    % (self.name, recorded['virtual_size']))

    # -- what each destination backend says ---------------------------------

    def _check_request(self, mode, dest_format):
        """The destination format for ``mode`` and the asked ``dest_format``; refuse what cannot be."""
        raise NotImplementedError

    def _whole(self, capacity):
        """The capacity the backend will really give a volume asked for ``capacity`` bytes."""
        return capacity

    def _allocation(self, capacity):
        return 0  # sparse: libvirt does not preallocate

    def _max_virtual_size(self):
        # the most a volume of the destination can hold, for image_inspect; None: its absolute ceiling. A
        # sparse file's limit is the filesystem's maximum file size, which the kernel enforces when the volume
        # is sized (glibc's PC_FILESIZEBITS is a guess by filesystem type: 32 bits on tmpfs, which holds more)
        return None

    def _backing_location(self):
        """Where a cow volume's backing is, for its record and volume XML."""
        return {'path': self.source_path}

    def _existing(self):
        """None when the destination name is free, else (libvirt volume or None, its record or None)."""
        raise NotImplementedError

    def _space_needed(self, mode, dest_format):
        """The bytes the new volume takes on the backend (the backend's rule, _backends/space.py)."""
        raise NotImplementedError

    def _space_available(self):
        raise NotImplementedError

    def _space_where(self):
        return "pool '%s'" % self.dest.name

    def _explain_write(self, exc):
        return _explain_write(exc, self._result_path())

    def _plan_writes(self, mode, dest_format, create_undo):
        """Add the steps that make the volume and write its data; set self.method."""
        raise NotImplementedError

    def _write_record(self):
        raise NotImplementedError

    def _verify_target(self):
        """The new volume as qemu-img opens it, and whether it can be compared byte for byte as a file."""
        return self.volume.path(), False

    def _resize(self, capacity):
        self.volume.resize(capacity, 0)

    def _result_path(self):
        return self.volume.path() if self.volume is not None else os.path.join(self.dest.target, self.name)

    # -- the writes ---------------------------------------------------------

    def _create(self):
        self.volume = self.dest.pool.createXML(self.wanted.to_xml(), 0)

    def _delete(self):
        """Undo of a create: only the volume this run made."""
        self.volume.delete(0)
        self.volume = None

    def _verify(self):
        target, as_files = self._verify_target()
        source, fds = self.source_read
        if as_files and self.source_format == self.wanted.format == 'raw' and self.source_ceph is None:
            same = data_copy.same_bytes(source, target)
        else:
            same = qemu_img.same_content(source, self.source_format, target, self.wanted.format, 'verify',
                                         size=self.source_info.virtual_size, pass_fds=fds)
        if not same:
            raise StoragePoolsError("verify: volume '%s' differs from its source after the copy" % self.name)

    # -- results ------------------------------------------------------------

    def close(self):
        if self.source_file is not None:
            self.source_file.close()
        if self.source_ceph is not None:
            self.source_ceph.close()

    def result_volume(self):
        definition = self.wanted
        backing = None
        if definition.backing_format:
            backing = {'path': definition.backing_path, 'format': definition.backing_format}
        return {'name': self.name, 'pool': self.dest.name, 'path': self._result_path(), 'format': definition.format,
                'capacity': self.record['virtual_size'], 'backing': backing}


class FileCloner(VolumeCloner):
    """Volumes of dir, fs and netfs pools: files, records in a ``user.`` xattr (_backends/records.py)."""

    def _check_request(self, mode, dest_format):
        if dest_format is None:
            dest_format = 'qcow2' if mode == 'cow' else self.source_format
        if mode == 'cow' and dest_format != 'qcow2':
            raise StoragePoolsError('format: a copy-on-write volume on a file pool is a qcow2 overlay; '
                                    'give format: qcow2 or mode: copy')
        return dest_format

    def _space_needed(self, mode, dest_format):
        if mode == 'cow':
            return 0  # a qcow2 header
        local = self.source_ceph is None  # an image of another rbd pool is no file here
        return limits.thin_file_need(self.source_path if local else None, self.source_info.virtual_size,
                                     new_qcow2=dest_format == 'qcow2')

    def _space_available(self):
        return limits.free_in_directory(self.dest.target)

    def _space_where(self):
        return "pool '%s' (%s)" % (self.dest.name, self.dest.target)

    def _existing(self):
        existing = self.dest.volume(self.name)
        dest_path = os.path.join(self.dest.target, self.name)
        if existing is None and not os.path.lexists(dest_path):
            return None
        return existing, metadata.read_file_metadata(dest_path) if os.path.exists(dest_path) else None

    def _plan_writes(self, mode, dest_format, create_undo):
        if mode == 'cow':
            self.method = 'qcow2-overlay'
            self.plan.add('create', "create qcow2 overlay '%s' on %s (backing format %s)"
                          % (self.name, self.source_path, self.source_format), self._create, option='source',
                          **create_undo)
        elif dest_format == 'raw' and self.source_format == 'raw' and self.source_ceph is None:
            self.method = 'sparse-copy'  # or reflink, whichever the filesystem allows
            self.plan.add('create', "create volume '%s'" % self.name, self._create, option='pool',
                          **create_undo)
            self.plan.add('copy', "copy %s into '%s' (reflink or sparse copy)" % (self.source_path, self.name),
                          self._copy_raw, option='pool', explain=self._explain_write)
        else:  # never libvirt's createXMLFrom: it would read the source as the format libvirt probed
            self.method = 'qemu-img-convert'
            self.plan.add('create', "create volume '%s' (%s)" % (self.name, dest_format), self._create,
                          option='pool', **create_undo)
            self.plan.add('convert', "convert %s (%s) into '%s' (%s)" % (
                self.source_path, self.source_format, self.name, dest_format), self._convert,
                option='pool', explain=self._explain_write)

    def _copy_raw(self):
        self.method = data_copy.copy_file(self.source_read[0], self.volume.path())
        self.record['method'] = self.method

    def _convert(self):
        # the volume libvirt just made is empty and has no backing file: --target-is-zero leaves the
        # source's holes unallocated, as a plain `qemu-img convert` does, instead of writing zero clusters
        source, fds = self.source_read
        qemu_img.convert(source, self.source_format, self.volume.path(), self.wanted.format, 'pool',
                         size=self.source_info.virtual_size, pass_fds=fds, target_is_zero=True)
        flush(self.volume.path())

    def _verify_target(self):
        return self.volume.path(), True

    def _write_record(self):
        metadata.write_file_metadata(self.volume.path(), self.record)


class LogicalCloner(VolumeCloner):
    """Thick raw LVs of a logical pool: copies written with qemu-img, cow as LVM snapshots, records in LV
    tags (_backends/logical.py)."""

    def __init__(self, conn, uri, dest, name, ceph_keyring=None):
        super().__init__(conn, uri, dest, name, ceph_keyring)
        self.vg = xml_tree.child_text(dest.definition, 'source/name')

    def _check_request(self, mode, dest_format):
        if dest_format not in (None, 'raw'):
            raise StoragePoolsError('format: volumes of a logical pool are raw block devices')
        if mode == 'cow' and self.source_lv is None:
            raise StoragePoolsError('source: on a logical pool, mode cow snapshots a volume of the same '
                                    'volume group')
        return 'raw'

    def _whole(self, capacity):
        return lvm.whole_extents(self.vg, capacity)

    def _allocation(self, capacity):
        # a logical volume is thick: with an allocation below its capacity libvirt would make an LVM
        # "sparse" volume, a snapshot of the zero target that breaks once its COW space is full
        return capacity

    def _max_virtual_size(self):
        return self.dest.pool.info()[1]  # a thick LV never outgrows its volume group (the pool's capacity)

    def _space_needed(self, mode, dest_format):
        return self.wanted.capacity  # thick, and a snapshot gets the origin's size of COW space (_allocation)

    def _space_available(self):
        return lvm.vg_free(self.vg)

    def _space_where(self):
        return "volume group '%s' of pool '%s'" % (self.vg, self.dest.name)

    def _existing(self):
        existing = self.dest.volume(self.name)
        if existing is not None:
            return existing, lvm.read_record(self.vg, self.name)
        if os.path.lexists(os.path.join(self.dest.target, self.name)):
            return None, None  # an LV libvirt has not listed yet: taken all the same
        return None

    def _plan_writes(self, mode, dest_format, create_undo):
        """An LVM snapshot of a volume of the same VG, or a new LV written with qemu-img convert (which
        writes zeroes where the source has none) and its tail zeroed."""
        if mode == 'cow':
            self.method = 'lvm-snapshot'
            self.plan.add('create', "create LVM snapshot '%s' of %s" % (self.name, self.source_path), self._create,
                          option='source', **create_undo)
            return
        self.method = 'qemu-img-convert'
        self.plan.add('create', "create logical volume '%s' (%d bytes)" % (self.name, self.wanted.capacity),
                      self._create, option='pool', **create_undo)
        detail = "convert %s (%s) into '%s' (raw)" % (self.source_path, self.source_format, self.name)
        self.plan.add('convert', detail, self._convert_into_lv, option='pool', explain=self._explain_write)

    def _convert_into_lv(self):
        source, fds = self.source_read
        convert_into_lv(source, self.source_format, self.source_info.virtual_size, self.volume.path(),
                        option='pool', pass_fds=fds)

    def _write_record(self):
        lvm.write_record(self.vg, self.name, self.record)


class RbdCloner(VolumeCloner):
    """Raw images of an rbd pool: imports written with librbd (or qemu's rbd driver), cow as clones of a
    protected snapshot, records in image-meta; libvirt lists them after a pool refresh."""

    def __init__(self, conn, uri, dest, name, ceph_keyring=None, rbd_pool=None):
        super().__init__(conn, uri, dest, name, ceph_keyring)
        self._owns_rbd = rbd_pool is None
        self.rbd = rbd_pool or rbd_volume.RbdPool(dest.definition, ceph_keyring)
        self._made_snapshot = False

    def _check_request(self, mode, dest_format):
        if dest_format not in (None, 'raw'):
            raise StoragePoolsError('format: volumes of an rbd pool are raw images')
        if (mode == 'cow') != (self.source_rbd is not None):
            raise StoragePoolsError('source: on an rbd pool, mode cow clones an image of the same pool, '
                                    'mode copy imports an image file or a file-pool volume')
        return 'raw'

    def _backing_location(self):
        return {'snapshot': rbd_volume.BASE_SNAPSHOT}

    def _space_needed(self, mode, dest_format):
        return 0 if mode == 'cow' else limits.rbd_need(self.source_info.virtual_size)  # a clone shares its parent

    def _space_available(self):
        return self.rbd.max_avail(option='pool')

    def _space_where(self):
        return "Ceph pool '%s' of pool '%s'" % (self.rbd.ceph_pool, self.dest.name)

    def _existing(self):
        if not self.rbd.exists(self.name):
            return None
        return self.dest.volume(self.name), self.rbd.read_metadata(self.name)

    def _plan_writes(self, mode, dest_format, create_undo):
        undo = dict(undo=functools.partial(self.rbd.remove, self.name), explain=self._explain_write)
        if mode == 'cow':
            self.method = 'rbd-clone'
            self.plan.add('snapshot', "protect snapshot %s of '%s' for clones" % (
                rbd_volume.BASE_SNAPSHOT, self.source_rbd), self._protect_parent, undo=self._unmake_snapshot,
                option='source')
            self.plan.add('clone', "clone '%s' from %s@%s" % (self.name, self.source_rbd, rbd_volume.BASE_SNAPSHOT),
                          self._rbd_clone, option='pool', **undo)
        else:
            self.method = 'rbd-import'
            self.plan.add('create', "create rbd image '%s'" % self.name, functools.partial(
                self.rbd.create, self.name, self.wanted.capacity), option='pool', **undo)
            self.plan.add('import', "import %s (%s) into rbd image '%s'" % (
                self.source_path, self.source_format, self.name), self._rbd_import, option='pool',
                explain=self._explain_write)

    def plan_clone(self, source, mode, dest_format, capacity, extra_metadata, verify):
        plan = super().plan_clone(source, mode, dest_format, capacity, extra_metadata, verify)
        if self.volume is None:  # a new image: libvirt lists it after a refresh
            plan.add('refresh', "refresh pool '%s' so libvirt lists '%s'" % (self.dest.name, self.name),
                     self._refresh, option='pool')
        return plan

    def _protect_parent(self):
        self._made_snapshot = self.rbd.ensure_protected_snapshot(self.source_rbd)

    def _unmake_snapshot(self):
        if self._made_snapshot:
            self.rbd.remove_snapshot(self.source_rbd)

    def _rbd_clone(self):
        self.rbd.clone(self.source_rbd, self.name, self.wanted.capacity)

    def _rbd_import(self):
        source, fds = self.source_read
        convert_into_rbd(self.rbd, self.name, source, self.source_format, option='pool',
                         local_file=self.source_ceph is None, size=self.source_info.virtual_size, pass_fds=fds)

    def _refresh(self):
        self.dest.pool.refresh(0)
        self.volume = self.dest.volume(self.name)

    def _verify_target(self):
        return self.rbd.qemu_target(self.name), False  # qemu's rbd driver; the key stays in the keyring file

    def _resize(self, capacity):
        self.rbd.resize(self.name, capacity)

    def _write_record(self):
        self.rbd.write_metadata(self.name, self.record)

    def _result_path(self):
        return self.volume.path() if self.volume is not None else '%s/%s' % (self.rbd.ceph_pool, self.name)

    def result_volume(self):
        result = super().result_volume()
        if result['backing']:
            result['backing']['path'] = '%s/%s@%s' % (self.rbd.ceph_pool, self.source_rbd, rbd_volume.BASE_SNAPSHOT)
        return result

    def close(self):
        super().close()
        if self._owns_rbd:
            self.rbd.close()
