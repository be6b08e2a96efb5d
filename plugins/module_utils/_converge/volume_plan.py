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


def explain_write(exc: Exception, where: str | None = None) -> tuple[str, str] | None:
    """(option, hint) of a write that failed because the destination is full (our copy's ENOSPC, qemu-img's
    message), else None."""
    full = isinstance(exc, OSError) and exc.errno == ENOSPC
    full = full or 'No space left on device' in (getattr(exc, 'libvirt_error', None) or '')
    if full:
        return ('pool', 'No space left on device at %s: the destination pool ran out of space (another writer '
                'used it after the space check?); the partial volume was removed' % (where or 'the destination'))
    return None


def record_text(record: dict | None) -> str:
    """A record as --diff shows it: sorted, indented JSON; '' for none."""
    return '' if record is None else json.dumps(record, sort_keys=True, indent=2) + '\n'


class ClonePlanner(abc.ABC):
    """The plan of volume ``name`` on ``backend`` (the destination pool's), and what it changes.

    ``want`` checks the request against the resolved source; ``plan_steps`` plans from what the destination
    holds. After them: ``wanted`` (the VolumeDefinition), ``record`` (what will be recorded), ``recorded``
    (the record of a volume an earlier run made), ``volume`` (libvirt's volume of that name), ``method``."""

    progress: Any = NO_PROGRESS  # the run's status file (_core/progress.py); the module sets it

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
        self.record = metadata.make_record(dest_format, capacity, identity, backing=backing)
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
