# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Planning one ``virt_volume_clone`` task: a volume made from a volume or an image file.

The source's format is a recorded fact (metadata.py) or declared by the
task, never probed; file sources pass image_inspect before anything opens
them, and every tool is then told the format explicitly. How the bytes move
is chosen per case (docs/volumes.md):

- raw to raw on this host: a reflink where the filesystem shares extents,
  else a sparse copy of the data extents (data_copy);
- a format conversion from a volume: libvirt's createXMLFrom on the
  destination pool (the inspected source agrees with libvirt's view of it);
- a format conversion from an image file: ``qemu-img convert -f -O``;
- cow on a file pool: a qcow2 overlay whose backingStore has an explicit
  format.
"""

from __future__ import annotations

import functools
import os
import subprocess

from ansible_collections.storagepools.libvirt.plugins.module_utils import (
    data_copy,
    image_inspect,
    lvm,
    metadata,
    rbd_volume,
    xml_tree,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils.connection import (
    error_code,
    error_text,
    libvirt,
    lookup_pool,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils.plan import Plan
from ansible_collections.storagepools.libvirt.plugins.module_utils.pool_plan import is_local_uri
from ansible_collections.storagepools.libvirt.plugins.module_utils.volume_xml import VolumeDefinition

FILE_POOLS = metadata.FILE_POOL_TYPES


def run_tool(argv, option):
    """Run a storage tool (never with a secret in ``argv``); StoragePoolsError naming ``option``."""
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise StoragePoolsError('%s: %s failed' % (option, ' '.join(argv[:2])),
                                libvirt_error=(proc.stderr or proc.stdout).strip())
    return proc.stdout


def convert_into_lv(source_path, source_format, source_size, lv_path, option):
    """Write an image into a new LV: qemu-img writes zeroes where the source has none, and the LV's tail
    beyond the source is zeroed, so no stale data of the volume group shows through."""
    run_tool(['qemu-img', 'convert', '-n', '-f', source_format, '-O', 'raw', source_path, lv_path], option=option)
    lvm.zero_range(lv_path, source_size, lvm.device_size(lv_path))
    data_copy.flush(lv_path)


def set_backing_format(path, backing, backing_format, option):
    """Write the backing format into a qcow2 overlay's header (``qemu-img rebase -u``: the header only,
    the base stays where it is), so nothing ever probes the base."""
    run_tool(['qemu-img', 'rebase', '-u', '-f', 'qcow2', '-b', backing, '-F', backing_format, path], option=option)
    data_copy.flush(path)


def _explain_write(exc):
    full = isinstance(exc, OSError) and exc.errno == 28  # ENOSPC, from our own copy
    full = full or 'No space left on device' in (getattr(exc, 'libvirt_error', None) or '')  # from qemu-img
    if full:
        return ('pool', 'The destination pool ran out of space; the partial volume was removed')
    return None


class Endpoint:
    """One side of a clone: a pool (object, type, target) and maybe a volume in it."""

    def __init__(self, conn, pool_name, option):
        self.pool = lookup_pool(conn, pool_name)
        if self.pool is None:
            raise StoragePoolsError("%s: libvirt has no pool named '%s'" % (option, pool_name))
        if not self.pool.isActive():
            raise StoragePoolsError("%s: pool '%s' is not active; start it first (virt_pool_ensure)"
                                    % (option, pool_name))
        self.name = pool_name
        self.definition = xml_tree.parse(self.pool.XMLDesc(0), 'pool')
        self.type = self.definition.get('type')
        self.target = xml_tree.child_text(self.definition, 'target/path')

    def volume(self, name):
        try:
            return self.pool.storageVolLookupByName(name)
        except libvirt.libvirtError as exc:
            if error_code(exc) == libvirt.VIR_ERR_NO_STORAGE_VOL:
                return None
            raise StoragePoolsError("name: looking up volume '%s' failed" % name, libvirt_error=error_text(exc))


class VolumeCloner:
    def __init__(self, conn, uri, pool, name, ceph_keyring=None, rbd_pool=None):
        """``rbd_pool``: an open RbdPool of the destination to reuse (bulk callers connect to Ceph once)."""
        self.conn = conn
        self.local = is_local_uri(uri)
        self.dest = Endpoint(conn, pool, 'pool')
        self.name = name
        self.plan = Plan()
        self.method = None
        self.record = None
        self.wanted = None
        self.volume = None
        self.source_path = None
        self.source_format = None
        self.source_volume = None
        self._made_snapshot = False
        self.source_rbd = None  # name of a source image in the destination's Ceph pool
        self.source_lv = None  # (vg, lv) of a source volume in a logical pool
        self.source_ceph = None  # the RbdPool of a source image in another rbd pool
        self.ceph_keyring = ceph_keyring
        self.source_info = None
        self.rbd = None
        self.vg = None  # the volume group of a logical destination
        self._owns_rbd = rbd_pool is None
        if self.dest.type == 'rbd':
            self.rbd = rbd_pool or rbd_volume.RbdPool(self.dest.definition, ceph_keyring)
        elif self.dest.type == 'logical':
            self.vg = xml_tree.child_text(self.dest.definition, 'source/name')
        elif self.dest.type not in FILE_POOLS:
            raise StoragePoolsError("pool: '%s' is a %s pool; this version clones into dir, fs, netfs, logical "
                                    "and rbd pools" % (pool, self.dest.type))
        if not self.local:
            raise StoragePoolsError('uri: cloning reads and writes the volume files on the libvirt host; '
                                    'run the task on that host with a local uri (qemu:///system)')

    # -- the source ---------------------------------------------------------

    def resolve_source(self, source):
        """Find the source, its format (recorded or declared) and inspect its bytes."""
        declared = source.get('format')
        if source.get('path'):
            self.source_path = source['path']
            if not os.path.isabs(self.source_path):
                raise StoragePoolsError('source.path: %r must be an absolute path' % self.source_path)
            if not os.path.isfile(self.source_path):
                raise StoragePoolsError('source.path: %s is not an existing file' % self.source_path)
            identity = {'path': self.source_path}
        else:
            origin = Endpoint(self.conn, source['pool'], 'source.pool')
            self.source_volume = origin.volume(source['volume'])
            if self.source_volume is None:
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
            self.source_path = self.source_volume.path()
            if origin.type == 'logical':
                self.source_lv = (xml_tree.child_text(origin.definition, 'source/name'), source['volume'])
                recorded = lvm.read_record(*self.source_lv)
            else:
                recorded = metadata.read_file_metadata(self.source_path)
            if recorded and declared and recorded.get('format') != declared:
                raise StoragePoolsError('source.format: %s is recorded as %s, the task declares %s'
                                        % (self.source_path, recorded.get('format'), declared))
            declared = declared or (recorded or {}).get('format')
        if not declared:
            raise StoragePoolsError('source.format: %s has no recorded format; declare it (raw, qcow2)'
                                    % self.source_path)
        info = image_inspect.inspect(self.source_path, declared)
        self.source_format = declared
        return identity, info

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
            info = image_inspect.inspect_handle(reader, size, '%s/%s' % (self.source_ceph.ceph_pool, name), 'raw')
        finally:
            reader.close()
        self.source_path = self.source_ceph.qemu_target(name)  # for qemu-img only, never opened as a file
        self.source_volume = None  # libvirt cannot create from an rbd volume into another pool
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
        if self.rbd is not None:
            if dest_format not in (None, 'raw'):
                raise StoragePoolsError('format: volumes of an rbd pool are raw images')
            if (mode == 'cow') != (self.source_rbd is not None):
                raise StoragePoolsError('source: on an rbd pool, mode cow clones an image of the same pool, '
                                        'mode copy imports an image file or a file-pool volume')
            dest_format = 'raw'
        elif self.vg is not None:
            if dest_format not in (None, 'raw'):
                raise StoragePoolsError('format: volumes of a logical pool are raw block devices')
            if mode == 'cow' and self.source_lv is None:
                raise StoragePoolsError('source: on a logical pool, mode cow snapshots a volume of the same '
                                        'volume group')
            dest_format = 'raw'
        elif dest_format is None:
            dest_format = 'qcow2' if mode == 'cow' else self.source_format
        if dest_format not in ('raw', 'qcow2'):
            raise StoragePoolsError('format: %r is not a volume format this collection writes (raw, qcow2)'
                                    % dest_format)
        if mode == 'cow' and self.rbd is None and self.vg is None and dest_format != 'qcow2':
            raise StoragePoolsError('format: a copy-on-write volume on a file pool is a qcow2 overlay; '
                                    'give format: qcow2 or mode: copy')
        if capacity is not None and capacity < info.virtual_size:
            raise StoragePoolsError('capacity: %d bytes is smaller than the source (%d bytes); volumes only '
                                    'grow' % (capacity, info.virtual_size))
        capacity = capacity or info.virtual_size
        backing = None
        if mode == 'cow':
            backing = dict(identity, format=self.source_format)
            backing.pop('image_id', None)
            if self.rbd is not None:
                backing['snapshot'] = rbd_volume.BASE_SNAPSHOT
            else:
                backing['path'] = self.source_path
        if self.vg is not None:
            capacity = lvm.whole_extents(self.vg, capacity)
        # a logical volume is thick: with an allocation below its capacity libvirt would make an LVM
        # "sparse" volume, a snapshot of the zero target that breaks once its COW space is full
        self.wanted = VolumeDefinition(self.name, capacity, dest_format,
                                       allocation=capacity if self.vg is not None else 0,
                                       backing_path=backing.get('path') if backing else None,
                                       backing_format=self.source_format if backing else None)
        self.record = metadata.make_record(dest_format, capacity, identity, backing=backing)

        if self.rbd is not None:
            if self.rbd.exists(self.name):
                self._plan_existing(self.dest.volume(self.name), self.rbd.read_metadata(self.name), capacity)
            else:
                self._plan_new_rbd(mode, verify)
            return self.plan
        existing = self.dest.volume(self.name)
        dest_path = os.path.join(self.dest.target, self.name)
        if self.vg is not None and existing is not None:
            self._plan_existing(existing, lvm.read_record(self.vg, self.name), capacity)
            return self.plan
        if existing is not None or os.path.lexists(dest_path):
            recorded = metadata.read_file_metadata(dest_path) if os.path.exists(dest_path) else None
            self._plan_existing(existing, recorded, capacity)
            return self.plan
        self._plan_new(mode, dest_format, verify)
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

    def _plan_new(self, mode, dest_format, verify):
        create_undo = dict(undo=self._delete, explain=_explain_write)
        if self.vg is not None:
            self._plan_new_lv(mode, create_undo)
        elif mode == 'cow':
            self.method = 'qcow2-overlay'
            self.plan.add('create', "create qcow2 overlay '%s' on %s (backing format %s)"
                          % (self.name, self.source_path, self.source_format), self._create, option='source',
                          **create_undo)
        elif dest_format == 'raw' and self.source_format == 'raw' and self.source_ceph is None:
            self.method = 'sparse-copy'  # or reflink, whichever the filesystem allows
            self.plan.add('create', "create volume '%s'" % self.name, self._create, option='pool',
                          **create_undo)
            self.plan.add('copy', "copy %s into '%s' (reflink or sparse copy)" % (self.source_path, self.name),
                          self._copy_raw, option='pool', explain=_explain_write)
        elif self.source_volume is not None:
            self.method = 'createXMLFrom'
            self.plan.add('create_from', "create '%s' (%s) from volume %s (%s) with libvirt"
                          % (self.name, dest_format, self.source_path, self.source_format),
                          self._create_from, option='pool', **create_undo)
        else:
            self.method = 'qemu-img-convert'
            self.plan.add('create', "create volume '%s' (%s)" % (self.name, dest_format), self._create,
                          option='pool', **create_undo)
            self.plan.add('convert', "convert %s (%s) into '%s' (%s)" % (
                self.source_path, self.source_format, self.name, dest_format), self._convert,
                option='pool', explain=_explain_write)
        if verify and mode == 'copy':
            self.plan.add('verify', "compare '%s' with its source" % self.name, self._verify, option='verify')
        self.plan.add('record', "record the metadata of '%s'" % self.name, self._write_record, option='metadata')
        self.record['method'] = self.method

    def _plan_new_lv(self, mode, create_undo):
        """A logical volume: an LVM snapshot of a volume of the same VG, or a new LV written with qemu-img
        convert (which writes zeroes where the source has none) and its tail zeroed."""
        if mode == 'cow':
            self.method = 'lvm-snapshot'
            self.plan.add('create', "create LVM snapshot '%s' of %s" % (self.name, self.source_path), self._create,
                          option='source', **create_undo)
            return
        self.method = 'qemu-img-convert'
        self.plan.add('create', "create logical volume '%s' (%d bytes)" % (self.name, self.wanted.capacity),
                      self._create, option='pool', **create_undo)
        detail = "convert %s (%s) into '%s' (raw)" % (self.source_path, self.source_format, self.name)
        self.plan.add('convert', detail, self._convert_into_lv, option='pool', explain=_explain_write)

    def _plan_new_rbd(self, mode, verify):
        undo = dict(undo=functools.partial(self.rbd.remove, self.name), explain=_explain_write)
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
                explain=_explain_write)
            if verify:
                self.plan.add('verify', "compare '%s' with its source" % self.name, self._verify, option='verify')
        self.record['method'] = self.method
        self.plan.add('record', "record the metadata of '%s'" % self.name, self._write_record, option='metadata')
        self.plan.add('refresh', "refresh pool '%s' so libvirt lists '%s'" % (self.dest.name, self.name),
                      self._refresh, option='pool')

    # -- the writes ---------------------------------------------------------

    def _create(self):
        self.volume = self.dest.pool.createXML(self.wanted.to_xml(), 0)

    def _create_from(self):
        self.volume = self.dest.pool.createXMLFrom(self.wanted.to_xml(), self.source_volume, 0)
        data_copy.flush(self.volume.path())

    def _delete(self):
        """Undo of a create: only the volume this run made."""
        self.volume.delete(0)
        self.volume = None

    def _copy_raw(self):
        self.method = data_copy.copy_file(self.source_path, self.volume.path())
        self.record['method'] = self.method

    def _convert(self):
        # the volume libvirt just made is empty and has no backing file: --target-is-zero leaves the
        # source's holes unallocated, as a plain `qemu-img convert` does, instead of writing zero clusters
        run_tool(['qemu-img', 'convert', '-n', '--target-is-zero', '-f', self.source_format, '-O',
                  self.wanted.format, self.source_path, self.volume.path()], option='pool')
        data_copy.flush(self.volume.path())

    def _convert_into_lv(self):
        convert_into_lv(self.source_path, self.source_format, self.source_info.virtual_size, self.volume.path(),
                        option='pool')

    def _verify(self):
        if self.rbd is not None:  # through qemu's rbd driver; the key stays in the keyring file
            target = self.rbd.qemu_target(self.name)
        else:
            target = self.volume.path()
        if self.source_format == self.wanted.format == 'raw' and all(
                other is None for other in (self.rbd, self.vg, self.source_ceph)):
            same = data_copy.same_bytes(self.source_path, target)
        else:
            same = subprocess.run(['qemu-img', 'compare', '-q', '-f', self.source_format, '-F', self.wanted.format,
                                   self.source_path, target], check=False).returncode == 0
        if not same:
            raise StoragePoolsError("verify: volume '%s' differs from its source after the copy" % self.name)

    def _resize(self, capacity):
        if self.rbd is not None:
            self.rbd.resize(self.name, capacity)
        else:
            self.volume.resize(capacity, 0)

    def _write_record(self):
        if self.rbd is not None:
            self.rbd.write_metadata(self.name, self.record)
        elif self.vg is not None:
            lvm.write_record(self.vg, self.name, self.record)
        else:
            metadata.write_file_metadata(self.volume.path(), self.record)

    def _protect_parent(self):
        self._made_snapshot = self.rbd.ensure_protected_snapshot(self.source_rbd)

    def _unmake_snapshot(self):
        if self._made_snapshot:
            self.rbd.remove_snapshot(self.source_rbd)

    def _rbd_clone(self):
        self.rbd.clone(self.source_rbd, self.name, self.wanted.capacity)

    def _rbd_import(self):
        if self.source_format == 'raw' and self.source_ceph is None:
            self.rbd.write_raw_file(self.name, self.source_path)
        else:
            run_tool(['qemu-img', 'convert', '-n', '-f', self.source_format, '-O', 'raw', self.source_path,
                      self.rbd.qemu_target(self.name)], option='pool')

    def _refresh(self):
        self.dest.pool.refresh(0)
        self.volume = self.dest.volume(self.name)

    # -- results ------------------------------------------------------------

    def close(self):
        for ceph in (self.rbd if self._owns_rbd else None, self.source_ceph):
            if ceph is not None:
                ceph.close()

    def result_volume(self):
        definition = self.wanted
        if self.volume is not None:
            path = self.volume.path()
        elif self.rbd is not None:
            path = '%s/%s' % (self.rbd.ceph_pool, self.name)
        else:
            path = os.path.join(self.dest.target, self.name)
        backing = None
        if definition.backing_format:
            backing = {'path': definition.backing_path, 'format': definition.backing_format}
            if self.rbd is not None:
                backing['path'] = '%s/%s@%s' % (self.rbd.ceph_pool, self.source_rbd, rbd_volume.BASE_SNAPSHOT)
        return {'name': self.name, 'pool': self.dest.name, 'path': path, 'format': definition.format,
                'capacity': self.record['virtual_size'], 'backing': backing}
