# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The plan of one ``virt_volume_clone`` task, from what was observed.

From the resolved source (volume.Source: where it is, its recorded or declared
format, its inspected size) and what the destination already holds (the
backend's ``existing``: libvirt's volume and its record), ``ClonePlanner``
checks the request, recognises a volume an earlier run made (idempotence),
picks the steps through the destination's backend and says what they change
(the result, the diff). It opens no file and calls no libvirt API or tool
itself; the writes its steps name (the record, the verification, the growth)
are VolumeCloner's, in volume.py.
"""

from __future__ import annotations

import abc
import functools
import json
from typing import TYPE_CHECKING

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import records as metadata
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.plan import Plan
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.progress import NO_PROGRESS
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.volume import VolumeDefinition

if TYPE_CHECKING:  # annotations only: nothing more is imported at run time
    from typing import Any

    from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.base import StorageBackend
    from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.volume import Source

VOLUME_FORMATS = ('raw', 'qcow2')
ENOSPC = 28
STREAM_TEMPORARY = '%s.stream-partial'  # the volume a stream goes into before a conversion


def is_partial(record: dict | None) -> bool:
    """Whether ``record`` marks a volume a streaming run made but never finished (a kill left it)."""
    return bool(record and record.get('partial'))


def explain_write(exc: Exception, where: str | None = None) -> tuple[str, str] | None:
    """(option, hint) of a write that failed because the destination is full (our copy's ENOSPC, qemu-img's
    message), else None."""
    full = isinstance(exc, OSError) and exc.errno == ENOSPC
    full = full or 'No space left on device' in (getattr(exc, 'libvirt_error', None) or '')
    if full:
        return ('pool', 'No space left on device at %s: the destination pool ran out of space (another writer '
                'used it after the space check?); the partial volume was removed' % (where or 'the destination'))
    return None


def _as_is(exc: Exception) -> tuple[str | None, str] | None:
    """(option, hint) of a step's failure from the error's own message, which names the option first."""
    if not isinstance(exc, StoragePoolsError):
        return None
    option, sep, rest = exc.msg.partition(': ')
    return (option, rest) if sep and ' ' not in option else (None, exc.msg)


def record_text(record: dict | None) -> str:
    """A record as --diff shows it: sorted, indented JSON; '' for none."""
    return '' if record is None else json.dumps(record, sort_keys=True, indent=2) + '\n'


class ClonePlanner(abc.ABC):
    """The plan of volume ``name`` on ``backend`` (the destination pool's), and what it changes.

    ``want`` checks the request against the resolved source; ``plan_steps`` plans from what the destination
    holds. After them: ``wanted`` (the VolumeDefinition), ``record`` (what will be recorded), ``recorded``
    (the record of a volume an earlier run made), ``volume`` (libvirt's volume of that name), ``method``."""

    progress: Any = NO_PROGRESS  # the run's status file (_core/progress.py); the module sets it
    file_mode: str | None = None  # the permission bits of the file a file-pool volume is created with (the module)

    def __init__(self, backend: StorageBackend, name: str) -> None:
        self.backend = backend
        self.name = name
        self.plan = Plan()
        self.method = None
        self.record = None
        self.recorded = None
        self.wanted = None
        self.volume = None
        self.source = None

    # -- planning -----------------------------------------------------------

    def want(self, source: Source, mode: str, dest_format: str | None, capacity: int | None,
             extra_metadata: dict | None) -> int:
        """Check the request against ``source`` (a resolved volume.Source); set the definition and the record
        wanted; the capacity the volume gets."""
        backend = self.backend
        self.source = source
        info = source.info
        identity = dict(source.identity)
        if extra_metadata:
            identity.update(extra_metadata)
        dest_format = backend.clone_format(mode, dest_format, source)
        if dest_format not in VOLUME_FORMATS:
            raise StoragePoolsError('format: %r is not a volume format this collection writes (raw, qcow2)'
                                    % dest_format)
        if capacity is not None and capacity < info.virtual_size:
            raise StoragePoolsError('capacity: %d bytes is smaller than the source (%d bytes); volumes only '
                                    'grow' % (capacity, info.virtual_size))
        capacity = backend.whole(capacity or info.virtual_size)
        backing = None
        if mode == 'cow':
            backing = dict(identity, format=source.format)
            backing.pop('image_id', None)
            backing.update(backend.backing_location(source))
        self.wanted = VolumeDefinition(self.name, capacity, dest_format, allocation=backend.allocation(capacity),
                                       backing_path=backing.get('path') if backing else None,
                                       backing_format=source.format if backing else None)
        if self.file_mode is not None:
            self.wanted.mode = self.file_mode
        self.record = metadata.make_record(dest_format, capacity, identity, backing=backing)
        if source.peer is not None:  # from another host: its own record travels with the data (None: unreadable)
            self.record['source_record'] = source.recorded
            if source.digest:  # source.checksum: the stream's checksum step checks it (_check_received_digest)
                self.record['checksum'] = 'sha256:' + source.digest
        return capacity

    def plan_steps(self, existing: tuple | None, mode: str, capacity: int, verify: bool) -> Plan:
        """The steps from what the destination holds: ``existing`` is None (the name is free) or (libvirt's
        volume or None, its record or None), as the backend's ``existing`` reports it. A new volume's space
        is checked before (VolumeCloner)."""
        if existing is not None:
            self._plan_existing(*existing, capacity=capacity)
        else:
            self._plan_new(mode, verify)
        if self.volume is None:  # a volume libvirt did not make (an rbd image) is listed after a refresh
            for step in self.backend.listing_steps(self.name):
                self.plan.add(**step)
        return self.plan

    def _plan_new(self, mode, verify):
        backend = self.backend
        if mode == 'cow':
            self.method, steps = backend.cow_steps(self.name, self.source, self.wanted)
        else:
            self.method, steps = backend.copy_steps(self.name, self.source.image(), self.wanted, self._written,
                                                    self.progress)
        for step in steps:
            self.plan.add(explain=self._explain_write, **step)
        if verify and mode == 'copy':
            self.plan.add('verify', "compare '%s' with its source" % self.name, self._verify, option='verify')
        self.record['method'] = self.method
        self.plan.add('record', "record the metadata of '%s'" % self.name, self._write_record, option='metadata')

    def plan_stream(self, mode: str, capacity: int, verify: bool) -> Plan:
        """The steps of a volume streamed from another libvirt host (source.peer): leftovers of a killed run
        removed, then the volume made (marked partial), the download stream written into it (or into a
        temporary volume that is then converted with explicit formats), verified, recorded."""
        if mode == 'cow':
            raise StoragePoolsError('mode: a copy-on-write volume needs its parent on this host; a volume of '
                                    'another libvirt host is copied (mode: copy)')
        backend, source, plan = self.backend, self.source, self.plan
        convert = self.wanted.format != source.format
        if convert and not backend.stream_converts:
            raise StoragePoolsError("format: a %s volume from another host is converted into file pools only; %s pool "
                                    "'%s' takes %s sources (convert it on its host first)"
                                    % (source.format, backend.endpoint.type, backend.pool_name, self.wanted.format))
        temporary = STREAM_TEMPORARY % self.name
        leftovers = [name for name in (self.name, temporary) if self._partial_of_this_task(name)]
        for name in leftovers:
            plan.add('remove', "remove '%s', left unfinished by a killed run" % name,
                     functools.partial(backend.remove, name), option=backend.option)
        existing = None if self.name in leftovers else backend.existing(self.name)
        if existing is not None:
            self._plan_existing(*existing, capacity=capacity)
            return plan
        if temporary not in leftovers and backend.existing(temporary) is not None:
            raise StoragePoolsError("name: pool '%s' already holds '%s', which this task would use for the stream; "
                                    "remove it" % (backend.pool_name, temporary))
        need = max(source.peer.allocation, backend.allocation(capacity)) + (source.peer.allocation if convert else 0)
        backend.require_space(need, "volume '%s'" % self.name)
        self.method = 'stream-convert' if convert else 'stream'
        self.record['method'] = self.method
        marker = dict(self.record, partial=True)
        into = self.name
        if convert:
            into = temporary
            holder = VolumeDefinition(temporary, max(source.peer.physical, 1), 'raw', allocation=0)
            plan.add('create', "create temporary volume '%s' for the stream" % temporary,
                     functools.partial(self._create_marked, holder, marker),
                     undo=functools.partial(backend.remove, temporary), option=backend.option)
        plan.add('create', "create volume '%s' (%s)" % (self.name, self.wanted.format),
                 functools.partial(self._create_marked, self.wanted, marker),
                 undo=functools.partial(backend.remove, self.name), option=backend.option)
        plan.add('stream', "receive %s into '%s' (sparse download stream)" % (source.path, into),
                 functools.partial(self._receive, into, verify), option='source', explain=self._explain_write)
        if source.digest:
            plan.add('checksum', "compare the sha256 of the bytes received with source.checksum",
                     self._check_received_digest, option='source.checksum', explain=_as_is)
        if verify:
            plan.add('verify', "compare a digest of the bytes received with '%s' read back through libvirt" % into,
                     functools.partial(self._verify_received, into), option='verify')
        if convert:
            plan.add('convert', "convert '%s' (%s) into '%s' (%s)"
                     % (temporary, source.format, self.name, self.wanted.format),
                     functools.partial(self._convert_received, temporary), option=backend.option,
                     explain=self._explain_write)
            if verify:
                plan.add('verify', "compare '%s' with '%s' (qemu-img compare, formats explicit)"
                         % (self.name, temporary), functools.partial(self._verify_conversion, temporary),
                         option='verify')
            plan.add('remove', "remove temporary volume '%s'" % temporary,
                     functools.partial(backend.remove, temporary), option=backend.option)
        elif capacity != source.info.virtual_size:
            plan.add('resize', "grow volume '%s' to %d bytes" % (self.name, capacity),
                     functools.partial(self._grow, capacity), option='capacity')
        plan.add('record', "record the metadata of '%s'" % self.name, self._write_record, option='metadata')
        return plan

    # -- source {url, checksum, format}: an image by URL (_images/download.py) --------------------------------

    def plan_url(self, source: Source, dest_format: str | None, capacity: int | None, extra_metadata: dict | None,
                 verify: bool, staging_dir: str) -> Plan:
        """The steps of an image by URL (``source``: resolved without a byte read, its ``identity`` the url and
        digest): a volume of that name recorded with the same digest is the image (a no-op, or grown); any
        other is never overwritten; else the image is downloaded into ``staging_dir`` and verified, then
        inspected and written as any image file is (``_import_download``: the size is known only then)."""
        backend = self.backend
        self.source = source
        volume_format = backend.clone_format('copy', dest_format, source)
        if volume_format not in VOLUME_FORMATS:
            raise StoragePoolsError('format: %r is not a volume format this collection writes (raw, qcow2)'
                                    % volume_format)
        identity = dict(source.identity, **(extra_metadata or {}))
        existing = backend.existing(self.name)
        if existing is not None and is_partial(existing[1]) and existing[1].get('checksum') == identity['checksum']:
            # this image's volume, marked partial until recorded: a run killed while writing it left it
            self.plan.add('remove', "remove '%s', left unfinished by a killed run" % self.name,
                          functools.partial(backend.remove, self.name), option=backend.option)
            existing = None
        if existing is not None:
            volume, recorded = existing
            if volume is None or not recorded or recorded.get('checksum') != identity['checksum'] \
                    or is_partial(recorded):
                raise StoragePoolsError(
                    "name: pool '%s' already has a volume '%s' recorded with digest %s, not %s; it is not "
                    "overwritten: choose another name or remove it"
                    % (backend.pool_name, self.name, (recorded or {}).get('checksum') or 'none', identity['checksum']))
            if recorded.get('format') != volume_format:
                raise StoragePoolsError("format: volume '%s' of pool '%s' holds this image as %s, not %s; choose another "
                                        "name for the other format" % (self.name, backend.pool_name,
                                                                       recorded.get('format'), volume_format))
            # a cache hit is decided by the digest: the same image from another url is the same image
            self.record = recorded
            self.wanted = VolumeDefinition(self.name, recorded['virtual_size'], volume_format, allocation=None)
            self._plan_existing(volume, recorded, capacity=backend.whole(capacity or recorded['virtual_size']))
            return self.plan
        # until the download is inspected its size is unknown: the result and the diff say the capacity asked
        self.wanted = VolumeDefinition(self.name, capacity or 0, volume_format, allocation=0)
        self.record = metadata.make_record(volume_format, capacity, identity, checksum=identity['checksum'])
        self.plan.add('download', "download %s into %s (sha256 checked as it arrives) and inspect it as %s"
                      % (source.path, staging_dir, source.format), self._download, option=None, explain=_as_is)
        self.plan.add('import', "write the download into '%s' (%s) and record it" % (self.name, volume_format),
                      functools.partial(self._import_download, dest_format, capacity, extra_metadata, verify),
                      option=None, explain=_as_is)
        return self.plan

    @abc.abstractmethod
    def _download(self):
        """Download the source's url into the staging directory, digest verified (source.staged)."""

    @abc.abstractmethod
    def _import_download(self, dest_format, capacity, extra_metadata, verify):
        """Write the verified, inspected download into the new volume and record it (the steps of _plan_new)."""

    # -- end of source {url, checksum, format} -------------------------------------------------------------------

    def _partial_of_this_task(self, name):
        found = self.backend.existing(name)
        return found is not None and is_partial(found[1]) and found[1].get('source') == self.record['source']

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
                          lambda: self._grow(capacity), option='capacity')
            self.plan.add('record', "record the metadata of '%s'" % self.name, self._write_record,
                          option='metadata')
        elif capacity < recorded['virtual_size']:
            raise StoragePoolsError('capacity: volume %s is %d bytes; volumes only grow'
                                    % (self.name, recorded['virtual_size']))

    def _written(self, method):
        self.method = method  # a raw copy is a reflink where the filesystem allows one
        self.record['method'] = method

    def _explain_write(self, exc):
        return explain_write(exc, self._result_path())

    # -- the writes the steps name (volume.VolumeCloner) ------------------------

    @abc.abstractmethod
    def _grow(self, capacity):
        """Grow the volume to ``capacity`` bytes."""

    @abc.abstractmethod
    def _write_record(self):
        """Write ``record`` with the volume."""

    @abc.abstractmethod
    def _verify(self):
        """Refuse a copy that differs from its source."""

    @abc.abstractmethod
    def _create_marked(self, definition, marker):
        """Make the volume ``definition`` describes and record ``marker`` (a partial record) on it."""

    @abc.abstractmethod
    def _receive(self, name, digest):
        """Write the source's download stream into volume ``name`` (``digest``: of what left the source too)."""

    @abc.abstractmethod
    def _check_received_digest(self):
        """Refuse a stream whose bytes do not have the sha256 source.checksum declares."""

    @abc.abstractmethod
    def _verify_received(self, name):
        """Refuse volume ``name`` when it does not read back (through libvirt) as the bytes received."""

    @abc.abstractmethod
    def _convert_received(self, temporary):
        """Convert the temporary volume (the source's format) into the new volume (its format)."""

    @abc.abstractmethod
    def _verify_conversion(self, temporary):
        """Refuse a new volume that differs from the temporary volume it was converted from."""

    # -- results ------------------------------------------------------------

    def _result_path(self):
        return self.volume.path() if self.volume is not None else self.backend.location(self.name)

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
                 ('record of %s' % volume, record_text(self.recorded), record_text(self.record))]
        return [{'before_header': '%s (before)' % header, 'after_header': '%s (after)' % header,
                 'before': before, 'after': after} for header, before, after in pairs if before != after]

    def _definition_xml(self, record):
        if record is None:
            return ''
        backing = record.get('backing') or {}
        definition = VolumeDefinition(self.name, record.get('virtual_size'), record.get('format'), allocation=None,
                                      backing_path=backing.get('path'), backing_format=backing.get('format'),
                                      path=self.backend.location(self.name))
        return definition.to_xml()
