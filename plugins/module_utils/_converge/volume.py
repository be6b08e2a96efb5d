# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Planning one ``virt_volume_clone`` task: a volume made from a volume or an image file.

The source's format is a recorded fact (_backends/records.py) or declared by the
task, never probed, and never libvirt's (it keeps the format its own probe
found at the last pool start or refresh, which a guest writing the file
steers). A file source is opened once and inspected through that descriptor
(_images/inspect.OpenedImage); every tool then reads the same file through
``/proc/self/fd/N`` and is told the format explicitly.

This is the workflow only: resolve the source, check the request, recognise
a volume an earlier run made (idempotence), check the space, plan the steps,
verify, record, report. How the destination's volumes are found, made,
written, recorded and grown is its backend's (_backends: file, logical,
rbd); how the bytes move is chosen per case there (docs/volumes.md).

Whatever another process wrote is flushed before it is recorded.
"""

from __future__ import annotations

import json
import os

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import records as metadata
from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.base import (
    ImageData,
    StorageBackend,
    backend_class,
    backend_for,
)
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


def cloner_for(conn, uri: str, pool: str, name: str, ceph_keyring: str | None = None,
               backend: StorageBackend | None = None) -> VolumeCloner:
    """The cloner of volume ``name`` into ``pool``.

    ``backend``: the destination's backend to reuse (bulk callers connect to Ceph once; they close it)."""
    owns = backend is None
    if owns:
        dest = Endpoint(conn, pool, 'pool')
        if backend_class(dest.type) is None:
            raise StoragePoolsError("pool: '%s' is a %s pool; this version clones into dir, fs, netfs, logical "
                                    "and rbd pools" % (pool, dest.type))
        backend = backend_for(dest, 'pool', ceph_keyring)
    return VolumeCloner(conn, uri, backend, name, ceph_keyring, owns_backend=owns)


class Source:
    """The source of a clone, resolved: where it is, its format (recorded or declared), its bytes inspected.

    One of: an image file or a file-pool volume (``file``, open and inspected), an LV (``lv``: (vg, lv)), an
    image of the destination's own Ceph pool (``rbd``: its name), an image of another rbd pool (``ceph``: that
    pool's backend). ``path`` names it as the task and the record do; ``identity`` is what the record says."""

    def __init__(self) -> None:
        self.path = self.identity = self.format = self.info = None
        self.file = self.rbd = self.lv = self.ceph = None  # which kind of source it is (one of them is set)

    @classmethod
    def resolve(cls, conn, spec: dict, dest: StorageBackend, ceph_keyring=None) -> Source:
        """Find the source ``spec`` (the task's source option) names, its format, and inspect its bytes."""
        source = cls()
        try:
            source._resolve(conn, spec, dest, ceph_keyring)
        except Exception:
            source.close()
            raise
        return source

    def _resolve(self, conn, spec, dest, ceph_keyring):
        declared = spec.get('format')
        max_virtual_size = dest.max_virtual_size()
        if spec.get('path'):
            self.path = spec['path']
            if not os.path.isabs(self.path):
                raise StoragePoolsError('source.path: %r must be an absolute path' % self.path)
            self.identity = {'path': self.path}
            # ``opened``: a descriptor of that file a bulk caller already holds (nova_image_cache's base)
            self.file = image_inspect.OpenedImage(self.path, fd=spec.get('opened'))
        else:
            origin = Endpoint(conn, spec['pool'], 'source.pool')
            volume = origin.volume(spec['volume'])
            if volume is None:
                raise StoragePoolsError("source.volume: pool '%s' has no volume '%s'" % (spec['pool'], spec['volume']))
            self.identity = {'pool': spec['pool'], 'volume': spec['volume']}
            if origin.type == 'rbd' and origin.name == dest.pool_name:
                self._resolve_rbd(dest, spec['volume'], declared)
                return
            if origin.type == 'rbd':
                self._resolve_remote_rbd(backend_for(origin, 'source.pool', ceph_keyring), spec['volume'], declared,
                                         max_virtual_size)
                return
            if origin.type not in FILE_POOLS + ('logical',):
                raise StoragePoolsError("source.pool: '%s' is a %s pool; this version clones from file and "
                                        "logical pools" % (spec['pool'], origin.type))
            self.path = volume.path()
            if origin.type == 'logical':
                origin_backend = backend_for(origin, 'source.pool')
                self.lv = (origin_backend.vg, spec['volume'])
                recorded = origin_backend.read_record(spec['volume'])
            else:  # the record of the very file opened (the path may be swapped afterwards)
                self.file = image_inspect.OpenedImage(self.path)
                recorded = metadata.read_file_metadata(self.file.fds[0], name=self.path)
            if recorded and declared and recorded.get('format') != declared:
                raise StoragePoolsError('source.format: %s is recorded as %s, the task declares %s'
                                        % (self.path, recorded.get('format'), declared))
            declared = declared or (recorded or {}).get('format')
        if not declared:
            raise StoragePoolsError('source.format: %s has no recorded format; declare it (raw, qcow2)' % self.path)
        self.format = declared
        if self.file is None:  # an LV: a root-owned device node, not a file anyone else can swap
            self.info = image_inspect.inspect(self.path, declared, max_virtual_size=max_virtual_size)
        else:
            self.info = self.file.inspect(declared, max_virtual_size=max_virtual_size)

    def _resolve_remote_rbd(self, origin, name, declared, max_virtual_size):
        """An image of another rbd pool: read through qemu's rbd driver as raw (header checked first)."""
        if declared not in (None, 'raw'):
            raise StoragePoolsError('source.format: rbd images are raw, not %s' % declared)
        self.ceph = origin
        recorded = origin.read_record(name)  # libvirt has already found the image
        if recorded is not None and recorded.get('format') not in (None, 'raw'):
            raise StoragePoolsError('source.volume: %s is recorded as %s; rbd images are raw'
                                    % (name, recorded['format']))
        reader, size = origin.rbd.reader(name)
        try:
            self.info = image_inspect.inspect_handle(reader, size, origin.location(name), 'raw',
                                                     max_virtual_size=max_virtual_size)
        finally:
            reader.close()
        self.path = origin.qemu_target(name)  # for qemu-img only, never opened as a file
        self.format = 'raw'

    def _resolve_rbd(self, dest, name, declared):
        """An image of the destination's own Ceph pool (the parent of an rbd clone): always raw."""
        if declared not in (None, 'raw'):
            raise StoragePoolsError('source.format: rbd images are raw, not %s' % declared)
        self.rbd = name
        self.path = None
        self.format = 'raw'
        size = dest.size(name)
        self.info = image_inspect.ImageInfo('raw', size, size)

    def image(self) -> ImageData:
        """The source as a backend writes from it: the inspected file through its own descriptor."""
        if self.file is not None:
            return ImageData(self.file.fd_path, self.format, self.info.virtual_size, self.file.fds,
                             local=self.file.fds[0], label=self.path)
        return ImageData(self.path, self.format, self.info.virtual_size, local=None if self.ceph else self.path)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.ceph is not None:
            self.ceph.close()


class VolumeCloner:
    """One volume ``name`` made from a source onto ``backend`` (the destination pool's): the workflow.

    ``owns_backend``: close() closes the backend too (else its caller does)."""

    def __init__(self, conn, uri: str, backend: StorageBackend, name: str, ceph_keyring: str | None = None,
                 owns_backend: bool = True) -> None:
        if not is_local_uri(uri):
            if owns_backend:
                backend.close()
            raise StoragePoolsError('uri: cloning reads and writes the volume files on the libvirt host; '
                                    'run the task on that host with a local uri (qemu:///system)')
        self.conn = conn
        self.backend = backend
        self.owns_backend = owns_backend
        self.name = name
        self.ceph_keyring = ceph_keyring
        self.plan = Plan()
        self.method = None
        self.record = None
        self.recorded = None  # the record of a volume an earlier run made
        self.wanted = None
        self.volume = None
        self.source = None

    # -- planning -----------------------------------------------------------

    def plan_clone(self, source: dict, mode: str, dest_format, capacity, extra_metadata, verify: bool) -> Plan:
        backend = self.backend
        self.source = Source.resolve(self.conn, source, backend, self.ceph_keyring)
        info = self.source.info
        identity = dict(self.source.identity)
        if extra_metadata:
            identity.update(extra_metadata)
        dest_format = backend.clone_format(mode, dest_format, self.source)
        if dest_format not in ('raw', 'qcow2'):
            raise StoragePoolsError('format: %r is not a volume format this collection writes (raw, qcow2)'
                                    % dest_format)
        if capacity is not None and capacity < info.virtual_size:
            raise StoragePoolsError('capacity: %d bytes is smaller than the source (%d bytes); volumes only '
                                    'grow' % (capacity, info.virtual_size))
        capacity = backend.whole(capacity or info.virtual_size)
        backing = None
        if mode == 'cow':
            backing = dict(identity, format=self.source.format)
            backing.pop('image_id', None)
            backing.update(backend.backing_location(self.source))
        self.wanted = VolumeDefinition(self.name, capacity, dest_format, allocation=backend.allocation(capacity),
                                       backing_path=backing.get('path') if backing else None,
                                       backing_format=self.source.format if backing else None)
        self.record = metadata.make_record(dest_format, capacity, identity, backing=backing)
        existing = backend.existing(self.name)
        if existing is not None:
            self._plan_existing(*existing, capacity=capacity)
        else:
            self._plan_new(mode, dest_format, capacity, verify)
        if self.volume is None:  # a volume libvirt did not make (an rbd image) is listed after a refresh
            for step in backend.listing_steps(self.name):
                self.plan.add(**step)
        return self.plan

    def _plan_new(self, mode, dest_format, capacity, verify):
        backend = self.backend
        image = self.source.image()
        backend.require_space(backend.space_for(image, capacity, dest_format, cow=mode == 'cow'),
                              "volume '%s'" % self.name)
        if mode == 'cow':
            self.method, steps = backend.cow_steps(self.name, self.source, self.wanted)
        else:
            self.method, steps = backend.copy_steps(self.name, image, self.wanted, self._written)
        for step in steps:
            self.plan.add(explain=self._explain_write, **step)
        if verify and mode == 'copy':
            self.plan.add('verify', "compare '%s' with its source" % self.name, self._verify, option='verify')
        self.record['method'] = self.method
        self.plan.add('record', "record the metadata of '%s'" % self.name, self._write_record, option='metadata')

    def _plan_existing(self, existing, recorded, capacity):
        if existing is None or not metadata.same_volume(recorded, self.record):
            raise StoragePoolsError(
                "name: pool '%s' already has a volume '%s' that this task did not make (its recorded "
                "source or format differs); choose another name or remove it" % (self.backend.pool_name, self.name))
        self.volume = existing
        self.method = recorded.get('method')
        self.record = self.recorded = recorded
        if capacity > recorded['virtual_size']:
            self.record = dict(recorded, virtual_size=capacity)
            self.plan.add('resize', "grow volume '%s' to %d bytes" % (self.name, capacity),
                          lambda: self.backend.grow(self.name, capacity), option='capacity')
            self.plan.add('record', "record the metadata of '%s'" % self.name, self._write_record,
                          option='metadata')
        elif capacity < recorded['virtual_size']:
            raise StoragePoolsError('capacity: volume %s is %d bytes; volumes only grow'
                                    % (self.name, recorded['virtual_size']))

    # -- the writes ---------------------------------------------------------

    def _written(self, method):
        self.method = method  # a raw copy is a reflink where the filesystem allows one
        self.record['method'] = method

    def _explain_write(self, exc):
        return _explain_write(exc, self._result_path())

    def _write_record(self):
        self.backend.write_record(self.name, self.record)

    def _verify(self):
        image = self.source.image()
        target = self.backend.qemu_target(self.name)
        if (self.backend.compares_as_files() and self.source.format == self.wanted.format == 'raw'
                and image.local is not None):
            same = data_copy.same_bytes(image.local, target)
        else:
            same = qemu_img.same_content(image.filename, image.format, target, self.wanted.format, 'verify',
                                         size=image.virtual_size, pass_fds=image.pass_fds)
        if not same:
            raise StoragePoolsError("verify: volume '%s' differs from its source after the copy" % self.name)

    # -- results ------------------------------------------------------------

    def _result_path(self):
        return self.volume.path() if self.volume is not None else self.backend.location(self.name)

    def close(self) -> None:
        if self.source is not None:
            self.source.close()
        if self.owns_backend:
            self.backend.close()

    def result_volume(self) -> dict:
        definition = self.wanted
        backing = None
        if definition.backing_format:
            backing = {'path': self.backend.backing_path(self.source, definition), 'format': definition.backing_format}
        return {'name': self.name, 'pool': self.backend.pool_name, 'path': self._result_path(),
                'format': definition.format, 'capacity': self.record['virtual_size'], 'backing': backing}

    def diff(self) -> list:
        """What the plan changes, as Ansible's --diff shows it: the volume's definition (canonical XML of what
        is recorded, never libvirt's probe) and its record, before and after; [] when nothing changes."""
        if not self.plan:
            return []
        volume = "volume '%s' of pool '%s'" % (self.name, self.backend.pool_name)
        pairs = [(volume, self._definition_xml(self.recorded), self._definition_xml(self.record)),
                 ('record of %s' % volume, _record_text(self.recorded), _record_text(self.record))]
        return [{'before_header': '%s (before)' % header, 'after_header': '%s (after)' % header,
                 'before': before, 'after': after} for header, before, after in pairs if before != after]

    def _definition_xml(self, record):
        if record is None:
            return ''
        backing = record.get('backing') or {}
        definition = VolumeDefinition(self.name, record.get('virtual_size'), record.get('format'), allocation=None,
                                      backing_path=backing.get('path'), backing_format=backing.get('format'),
                                      path=self.backend.location(self.name))
        return xml_tree.to_string(definition.format_dom())


def _record_text(record):
    return '' if record is None else json.dumps(record, sort_keys=True, indent=2) + '\n'
