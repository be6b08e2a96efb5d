# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Live libvirt pools: one view of a defined pool, its type, target and volumes."""

from __future__ import annotations

from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.connection import (
    error_code,
    error_text,
    libvirt,
    lookup_pool,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml import tree as xml_tree
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.base import parse
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.pool import ObservedPool, PoolDefinition


class LivePool(ObservedPool):
    """What libvirt says about one existing pool (read once, no writes), as PoolDefinition models."""

    def __init__(self, pool) -> None:
        self.pool = pool
        running = PoolDefinition(node=parse(pool.XMLDesc(0), 'pool')) if pool.isActive() else None
        super().__init__(self.inactive_definition(pool), running, bool(pool.autostart()))

    @staticmethod
    def inactive_definition(pool) -> PoolDefinition:
        """The pool's defined document (what a start would run), whole."""
        return PoolDefinition(node=parse(pool.XMLDesc(libvirt.VIR_STORAGE_XML_INACTIVE), 'pool'))


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
