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
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml import pool as pool_xml, tree as xml_tree


class LivePool:
    """What libvirt says about one existing pool (read once, no writes)."""

    def __init__(self, pool):
        self.pool = pool
        self.definition = xml_tree.parse(pool.XMLDesc(libvirt.VIR_STORAGE_XML_INACTIVE), 'pool')
        self.active = bool(pool.isActive())
        self.autostart = bool(pool.autostart())
        self.running = None
        if self.active:
            self.running = xml_tree.parse(pool.XMLDesc(0), 'pool')

    def runs_other_than(self, definition):
        """The pool is active and what it runs differs from ``definition``.

        Permissions are left out: libvirt fills the running document's from
        the directory itself, and a restart would not apply them anyway.
        """
        if not self.active:
            return False
        return (xml_tree.to_string(pool_xml.runtime_view(self.running))
                != xml_tree.to_string(pool_xml.runtime_view(definition)))

    def state(self):
        return 'active' if self.active else 'inactive'


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
