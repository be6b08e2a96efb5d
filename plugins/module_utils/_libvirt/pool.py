# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Live libvirt pools: one view of a defined pool, its type, target and volumes."""

from __future__ import annotations

import os

from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.connection import (
    error_code,
    error_text,
    libvirt,
    lookup_pool,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.base import parse
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.pool import ObservedPool, PoolDefinition


def running_definition(pool: libvirt.virStoragePool) -> PoolDefinition:
    """The document the pool runs (or would run, when inactive), whole, as the pool model."""
    return PoolDefinition(node=parse(pool.XMLDesc(0), 'pool'))


class LivePool(ObservedPool):
    """What libvirt says about one existing pool (read once, no writes), as PoolDefinition models."""

    def __init__(self, pool: libvirt.virStoragePool) -> None:
        self.pool = pool
        running = running_definition(pool) if pool.isActive() else None
        super().__init__(self.inactive_definition(pool), running, bool(pool.autostart()))

    @staticmethod
    def inactive_definition(pool: libvirt.virStoragePool) -> PoolDefinition:
        """The pool's defined document (what a start would run), whole."""
        return PoolDefinition(node=parse(pool.XMLDesc(libvirt.VIR_STORAGE_XML_INACTIVE), 'pool'))


class Endpoint:
    """One active pool a task reads or writes volumes of: its libvirt object, type, target and definition.

    Every libvirt call on the pool's volumes goes through here, so libvirt's errors are translated in one place.
    """

    def __init__(self, conn: libvirt.virConnect, pool_name: str, option: str) -> None:
        pool = lookup_pool(conn, pool_name)
        if pool is None:
            raise StoragePoolsError("%s: libvirt has no pool named '%s'" % (option, pool_name))
        if not pool.isActive():
            raise StoragePoolsError("%s: pool '%s' is not active; start it first (virt_pool_ensure)"
                                    % (option, pool_name))
        self._take(conn, pool, running_definition(pool), option)

    @classmethod
    def of(cls, conn: libvirt.virConnect, pool: libvirt.virStoragePool, definition: PoolDefinition,
           option: str) -> Endpoint:
        """The Endpoint of a pool already looked up, active, and its running ``definition`` already parsed."""
        endpoint = cls.__new__(cls)
        endpoint._take(conn, pool, definition, option)
        return endpoint

    def _take(self, conn, pool, definition, option):
        self.conn = conn
        self.pool = pool
        self.name = pool.name()
        self.option = option
        self.definition = definition
        self.type = definition.type
        self.target = definition.target_path

    def volume(self, name: str) -> libvirt.virStorageVol | None:
        """The libvirt volume ``name`` of the pool, or None when libvirt lists none of that name."""
        try:
            return self.pool.storageVolLookupByName(name)
        except libvirt.libvirtError as exc:
            if error_code(exc) == libvirt.VIR_ERR_NO_STORAGE_VOL:
                return None
            raise StoragePoolsError("name: looking up volume '%s' failed" % name, libvirt_error=error_text(exc))

    def create_volume(self, volume_xml: str) -> libvirt.virStorageVol:
        """libvirt makes the volume ``volume_xml`` describes (a file, an LV, a snapshot); the new volume."""
        return self.pool.createXML(volume_xml, 0)

    def delete_volume(self, name: str) -> None:
        """libvirt removes volume ``name`` (and its data)."""
        self.pool.storageVolLookupByName(name).delete(0)

    def delete_listed_volume(self, name: str) -> None:
        """libvirt removes volume ``name`` if it lists one of that name (one lookup, then the delete)."""
        volume = self.volume(name)
        if volume is not None:
            volume.delete(0)

    def refresh(self) -> None:
        """libvirt lists the pool's volumes again (volumes made outside libvirt, e.g. with librbd)."""
        self.pool.refresh(0)

    def capacity(self) -> int:
        """The pool's capacity in bytes, as libvirt reports it (a volume group's size, a filesystem's)."""
        return self.pool.info()[1]


def planned_definitions(planned: list | None, option: str) -> dict:
    """{pool name: PoolDefinition} of ``planned``: the ``pool`` results of the play's earlier virt_pool_ensure
    tasks in check mode ({name, state, xml, ...}), the pools that step would define and start."""
    definitions = {}
    for index, entry in enumerate(planned or []):
        if not isinstance(entry, dict) or not isinstance(entry.get('xml'), str):
            raise StoragePoolsError('%s[%d]: give the pool result of a virt_pool_ensure task ({name, state, xml})'
                                    % (option, index))
        if entry.get('state') != 'active':
            continue  # a pool the step would leave stopped is no pool a task could use
        try:
            definition = PoolDefinition(node=parse(entry['xml'], 'pool'))
        except ValueError as exc:
            raise StoragePoolsError('%s[%d]: %s' % (option, index, exc))
        definitions[definition.name] = definition
    return definitions


def endpoint_or_planned(conn: libvirt.virConnect, pool_name: str, option: str, planned: dict,
                        planned_option: str) -> Endpoint | PlannedPool:
    """The Endpoint of ``pool_name``; in check mode, when libvirt has no active pool of that name but
    ``planned`` (planned_definitions()) holds one, the PlannedPool the real run would find there."""
    pool = lookup_pool(conn, pool_name)
    if (pool is None or not pool.isActive()) and pool_name in planned:
        return PlannedPool(conn, planned[pool_name], option, planned_option)
    return Endpoint(conn, pool_name, option)


class PlannedPool:
    """A dir pool that is not there yet but that the play's pools step would define, build and start: what a
    check-mode task plans against (check mode only; it has no libvirt object and writes nothing).

    It answers as the real run's Endpoint would, once the step made the pool: its name, type, target and
    definition; a name in its target is a volume libvirt would list. Only dir pools: what an fs, netfs,
    logical or rbd pool would hold once started (a mount, a volume group's LVs, a Ceph pool's images) is not
    known before it is, and a plan that guessed would differ from the real run's."""

    def __init__(self, conn: libvirt.virConnect, definition: PoolDefinition, option: str,
                 planned_option: str) -> None:
        if definition.type != 'dir' or not definition.target_path:
            raise StoragePoolsError(
                "%s: pool '%s' is not defined yet, and check mode plans only against a dir pool that the pools "
                "step would make (this is a %s pool); define the pools first (the pools playbook), then run check "
                "mode" % (option, definition.name, definition.type))
        self.conn = conn
        self.pool = None
        self.name = definition.name
        self.option = option
        self.planned_option = planned_option
        self.definition = definition
        self.type = definition.type
        self.target = definition.target_path

    def volume(self, name: str) -> None:
        """None: nothing of that name is in the target (a name there would be a volume once libvirt lists it,
        and no libvirt volume exists yet to answer for it: refused)."""
        path = os.path.join(self.target, name)
        if os.path.lexists(path):
            raise StoragePoolsError("%s: pool '%s' is only planned (%s) and its target already holds %s; define the "
                                    "pools first, then run check mode" % (self.option, self.name,
                                                                          self.planned_option, path))
        return None

    def refresh(self) -> None:
        """Nothing to list again: the pool is not there."""
