# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One ``virt_volume_clone`` task: a volume made from a volume or an image file.

The source's format is a recorded fact (_backends/records.py) or declared by the
task, never probed, and never libvirt's (it keeps the format its own probe
found at the last pool start or refresh, which a guest writing the file
steers). A file source is opened once and inspected through that descriptor
(_images/inspect.OpenedImage); every tool then reads the same file through
``/proc/self/fd/N`` and is told the format explicitly.

This is the workflow only: resolve the source, look at the destination,
check the space, then verify and record. Checking the request, recognising
a volume an earlier run made (idempotence), the steps and what they change
are planned from what was observed in volume_plan.py. How the destination's volumes are found, made,
written, recorded and grown is its backend's (_backends: file, logical,
rbd); how the bytes move is chosen per case there (docs/volumes.md).

Whatever another process wrote is flushed before it is recorded.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import records as metadata
from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.base import (
    ImageData,
    StorageBackend,
    backend_class,
    backend_for,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.volume_plan import ClonePlanner, is_partial
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.plan import Plan, Step
from ansible_collections.storagepools.libvirt.plugins.module_utils._images import (
    copy as data_copy,
    inspect as image_inspect,
    download,
    qemu_img,
    stream as stream_writer,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt import stream as volume_stream
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.connection import (
    is_local_uri,
    open_connection,
    require_local_uri,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.pool import Endpoint

if TYPE_CHECKING:  # annotations only: nothing more is imported at run time
    from typing import Any

FILE_POOLS = metadata.FILE_POOL_TYPES


def cloner_for(conn: Any, uri: str, pool: str, name: str, ceph_keyring: str | None = None,
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


def refuse_unfinished(recorded: dict | None, label: str) -> None:
    """A source volume still marked partial (a streaming run was killed while writing it) is no source."""
    if is_partial(recorded):
        raise StoragePoolsError('source.volume: %s is unfinished (a run streaming it was killed); rerun the task '
                                'that makes it first' % label)


class Source:
    """The source of a clone, resolved: where it is, its format (recorded or declared), its bytes inspected.

    One of: an image file or a file-pool volume (``file``, open and inspected), an LV (``lv``: (vg, lv)), an
    image of the destination's own Ceph pool (``rbd``: its name), an image of another rbd pool (``ceph``: that
    pool's backend). ``path`` names it as the task and the record do; ``identity`` is what the record says."""

    def __init__(self) -> None:
        self.path = self.identity = self.format = self.info = None
        self.file = self.rbd = self.lv = self.ceph = None  # which kind of source it is (one of them is set)
        self.peer = None  # a volume of another libvirt host (PeerVolume), read through libvirt streams
        self.recorded = None  # the source's own record, where it can be read
        self.url = self.digest = None  # an image by URL (source.url): the task's source option, its sha256

    @classmethod
    def resolve(cls, conn: Any, spec: dict, dest: StorageBackend, ceph_keyring: str | None = None,
                uri: str | None = None) -> Source:
        """Find the source ``spec`` (the task's source option) names, its format, and inspect its bytes.

        ``uri``: the task's (the destination's); a ``spec['uri']`` other than it is another libvirt host."""
        source = cls()
        try:
            if spec.get('url'):  # an image by URL: nothing is read before the plan's download step
                source._resolve_url(spec)
            elif spec.get('uri') and spec['uri'] != uri:
                source._resolve_peer(spec, dest)
            else:
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
            refuse_unfinished(recorded, self.path)
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

    # -- source {url, checksum, format} ---------------------------------------------------------------------------

    def _resolve_url(self, spec):
        self.digest = download.check_source(spec)
        self.url = spec
        self.path = download.public_url(spec['url'])  # never the credentials a url may carry
        self.identity = {'url': self.path, 'checksum': 'sha256:' + self.digest, 'format': spec['format']}
        self.format = spec['format']

    def staged(self, fd: int, max_virtual_size: int | None) -> None:
        """The verified download (``fd``, whose name is already gone) as this source's image file, inspected
        as its declared format; a refusal names source.url, where the image came from."""
        self.file = image_inspect.OpenedImage(self.path, fd=fd)
        try:
            self.info = self.file.inspect(self.format, max_virtual_size=max_virtual_size)
        except image_inspect.ImageRefused as exc:
            raise StoragePoolsError(exc.msg.replace('source.path: ', 'source.url: ', 1))

    # -- end of source {url, checksum, format} --------------------------------------------------------------------

    def _resolve_peer(self, spec, dest):
        """A volume of the libvirt host at ``spec['uri']``: looked at (sizes, record where readable, header)
        through that connection only; its bytes come through a download stream when the plan runs."""
        if not spec.get('volume'):
            raise StoragePoolsError('source.uri: a source on another libvirt host is one of its volumes; give '
                                    'source.pool and source.volume')
        if dest.endpoint.type not in FILE_POOLS + ('logical',):
            raise StoragePoolsError("pool: '%s' is a %s pool; a volume from another libvirt host streams into file "
                                    "and logical pools only (libvirt has no streams for %s volumes)"
                                    % (dest.pool_name, dest.endpoint.type, dest.endpoint.type))
        self.peer = PeerVolume(open_connection(spec['uri'], option='source.uri'), spec)
        peer = self.peer
        self.identity = {'uri': spec['uri'], 'pool': spec['pool'], 'volume': spec['volume']}
        self.path = peer.label
        if spec.get('checksum'):  # the bytes must have it; it is recorded, as for an image by URL
            self.digest = download.declared_digest(spec['checksum'])
            if self.digest is None:
                raise StoragePoolsError('source.checksum: give the digest as sha256:<64 hex digits>')
        declared = spec.get('format')
        recorded = self.recorded = peer.record()
        refuse_unfinished(recorded, peer.label)
        if recorded and declared and recorded.get('format') != declared:
            raise StoragePoolsError('source.format: %s is recorded as %s, the task declares %s'
                                    % (peer.label, recorded.get('format'), declared))
        if recorded and recorded.get('backing'):
            raise StoragePoolsError('source.volume: %s is a copy-on-write volume on %s; its bytes name a parent on '
                                    'that host: copy a volume without a backing file' % (peer.label,
                                                                                         recorded['backing'].get('path')))
        declared = declared or (recorded or {}).get('format')
        if not declared:
            raise StoragePoolsError('source.format: %s has no record this task can read (libvirt keeps none, and '
                                    "the source host's records are only read where its files are); declare its "
                                    'format (raw, qcow2)' % peer.label)
        self.format = declared
        if declared == 'raw' and recorded:
            # recorded raw by root: whatever a guest wrote into it (a qcow2 header too) is its data, never read
            self.info = image_inspect.ImageInfo('raw', peer.physical, peer.physical)
        else:  # declared only, or an image format: its header is checked as for any import
            reader = volume_stream.VolumeReader(peer.conn, peer.volume, peer.physical, 'source.volume')
            self.info = image_inspect.inspect_handle(reader, peer.physical, peer.label, declared,
                                                     max_virtual_size=dest.max_virtual_size())

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
        if self.peer is not None:
            self.peer.close()


class PeerVolume:
    """The source volume on another libvirt host: its connection (ours to close), pool, volume and sizes."""

    def __init__(self, conn: Any, spec: dict) -> None:
        self.conn = conn
        self.uri = spec['uri']
        self.name = spec['volume']
        self.label = "volume '%s' of pool '%s' at %s" % (spec['volume'], spec['pool'], spec['uri'])
        try:
            self.endpoint = Endpoint(conn, spec['pool'], 'source.pool')
            if self.endpoint.type not in FILE_POOLS + ('logical',):
                raise StoragePoolsError("source.pool: '%s' at %s is a %s pool; volumes stream from file and logical "
                                        "pools only (libvirt has no streams for %s volumes)"
                                        % (spec['pool'], self.uri, self.endpoint.type, self.endpoint.type))
            self.volume = self.endpoint.volume(self.name)
            if self.volume is None:
                raise StoragePoolsError("source.volume: pool '%s' at %s has no volume '%s'"
                                        % (spec['pool'], self.uri, self.name))
            self.capacity, self.allocation, self.physical = volume_stream.volume_sizes(self.volume, 'source.volume')
        except Exception:
            conn.close()
            raise

    def record(self) -> dict | None:
        """The volume's record where this process reaches the source host's storage (its uri is local: a
        daemon of this host), else None: libvirt carries no record."""
        backend = backend_for(self.endpoint, 'source.pool')
        try:
            if not backend.records_readable(is_local_uri(self.uri)):
                return None
            return backend.read_record(self.name)
        finally:
            backend.close()

    def receive(self, on_data, on_hole) -> None:
        """The volume's bytes, as a sparse download stream."""
        volume_stream.receive(self.conn, self.volume, on_data, on_hole, 'source.volume')

    def close(self) -> None:
        self.conn.close()


class VolumeCloner(ClonePlanner):
    """One volume ``name`` made from a source onto ``backend`` (the destination pool's): what is observed
    and the writes; the plan is ClonePlanner's (volume_plan.py).

    ``owns_backend``: close() closes the backend too (else its caller does)."""

    staging_dir = None  # where an image by URL is downloaded (the module sets it)
    imported = ()  # the steps the import of an image by URL carried out (after its download)

    def __init__(self, conn: Any, uri: str, backend: StorageBackend, name: str, ceph_keyring: str | None = None,
                 owns_backend: bool = True) -> None:
        if not is_local_uri(uri):
            if owns_backend:
                backend.close()
            require_local_uri(uri, 'cloning writes the volume and its record')
        super().__init__(backend, name)
        self.conn = conn
        self.uri = uri
        self.owns_backend = owns_backend
        self.ceph_keyring = ceph_keyring

    def plan_clone(self, source: dict, mode: str, dest_format: str | None, capacity: int | None,
                   extra_metadata: dict | None, verify: bool) -> Plan:
        """Resolve ``source`` (the task's option), look at the destination, plan (volume_plan.ClonePlanner)."""
        backend = self.backend
        self.source = Source.resolve(self.conn, source, backend, self.ceph_keyring, uri=self.uri)
        if self.source.url is not None:  # an image by URL: downloaded and inspected by the plan's steps
            if mode == 'cow':
                raise StoragePoolsError('mode: an image by URL is copied into the pool (mode: copy)')
            if self.source.url.get('max_size') is None and capacity:  # no body larger than the volume asked
                self.source.url = dict(self.source.url, max_size=capacity)
            return self.plan_url(self.source, dest_format, capacity, extra_metadata, verify, self.staging_dir)
        capacity = self.want(self.source, mode, dest_format, capacity, extra_metadata)
        if self.source.peer is not None:
            return self.plan_stream(mode, capacity, verify)
        existing = backend.existing(self.name)
        if existing is None:
            backend.require_space(backend.space_for(self.source.image(), capacity, self.wanted.format,
                                                    cow=mode == 'cow'), "volume '%s'" % self.name)
        return self.plan_steps(existing, mode, capacity, verify)

    # -- the writes ---------------------------------------------------------

    def _grow(self, capacity):
        self.backend.grow(self.name, capacity)

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

    # -- the writes of an image by URL (source.url) ------------------------------

    def _download(self):
        staging = download.Staging(self.staging_dir)
        try:
            fd = download.download(self.source.url, self.source.digest, staging)
        finally:
            staging.close()
        try:
            self.source.staged(fd, self.backend.max_virtual_size())
        finally:
            os.close(fd)  # OpenedImage holds its own duplicate (or the refusal closed it)

    def _import_download(self, dest_format, capacity, extra_metadata, verify):
        capacity = self.want(self.source, 'copy', dest_format, capacity, extra_metadata)
        self.record['checksum'] = self.source.identity['checksum']
        self.backend.require_space(self.backend.space_for(self.source.image(), capacity, self.wanted.format),
                                   "volume '%s'" % self.name)
        outer, self.plan = self.plan, Plan()
        try:
            self.plan_steps(None, 'copy', capacity, verify)
            # marked partial from its creation until recorded: a kill in between leaves a volume the rerun removes
            created = next(index for index, step in enumerate(self.plan.steps) if step.action == 'create')
            self.plan.steps.insert(created + 1, Step(
                'mark', "mark '%s' partial until it is recorded" % self.name,
                functools.partial(self.backend.write_record, self.name, dict(self.record, partial=True)),
                option=self.backend.option))
            # an image by URL is a base image: on rbd its protected snapshot is made now (none on other pools)
            for step in self.backend.parent_steps(self.name, True):
                self.plan.add(**step)
            imported = self.plan
        finally:
            self.plan = outer
        imported.apply()  # a failure rolls its own steps back (no volume is left)
        self.imported = imported.describe()

    # -- the writes of a stream from another libvirt host ------------------------

    def _create_marked(self, definition, marker):
        self.backend.define(definition)
        self.backend.write_record(definition.name, marker)  # a kill from here on leaves a volume a rerun removes

    def _receive(self, name, digest):
        # the destination is local: the download stream is written here (an upload would make libvirt refresh,
        # and so probe, every file of the pool afterwards), only data written, then fsync'ed
        self.received = stream_writer.ContentDigest() if digest else None
        self.received_bytes = stream_writer.ByteDigest() if self.source.digest else None
        fd = self.backend.open_for_stream(name)
        try:
            writer = stream_writer.SparseWriter(fd, digest=stream_writer.Digests(self.received, self.received_bytes))
            self.source.peer.receive(writer.data, writer.hole)
            writer.finish()
        finally:
            os.close(fd)

    def _check_received_digest(self):
        held = self.received_bytes.hexdigest()
        if held != self.source.digest:
            raise StoragePoolsError('source.checksum: the bytes streamed from %s have sha256:%s, not sha256:%s; the '
                                    'new volume is removed' % (self.source.path, held, self.source.digest))

    def _verify_received(self, name):
        held = stream_writer.ContentDigest()
        volume_stream.receive(self.conn, self.backend.volume(name), held.data, held.hole, 'verify')
        if held.hexdigest() != self.received.hexdigest():
            raise StoragePoolsError("verify: '%s' does not read back as the bytes received from %s; the new volume "
                                    "is removed" % (name, self.source.path))

    def _received_image(self, temporary):
        """The temporary volume as the image a conversion reads, through one descriptor (never a symlink):
        inspected again as the source's format, unless that is raw (read -f raw, never interpreted)."""
        opened = image_inspect.OpenedImage(self.backend.location(temporary))
        try:
            if self.source.format != 'raw':
                opened.inspect(self.source.format, max_virtual_size=self.backend.max_virtual_size())
        except Exception:
            opened.close()
            raise
        return ImageData(opened.fd_path, self.source.format, self.source.info.virtual_size, opened.fds,
                         local=opened.fds[0], label=temporary), opened

    def _convert_received(self, temporary):
        image, opened = self._received_image(temporary)
        try:
            self.backend.write_image(self.name, image, self.wanted.format)
        finally:
            opened.close()

    def _verify_conversion(self, temporary):
        image, opened = self._received_image(temporary)
        try:
            same = qemu_img.same_content(image.filename, image.format, self.backend.qemu_target(self.name),
                                         self.wanted.format, 'verify', size=image.virtual_size,
                                         pass_fds=image.pass_fds)
        finally:
            opened.close()
        if not same:
            raise StoragePoolsError("verify: volume '%s' differs from %s after the conversion; the new volume is "
                                    "removed" % (self.name, self.source.path))

    def close(self) -> None:
        if self.source is not None:
            self.source.close()
        if self.owns_backend:
            self.backend.close()
