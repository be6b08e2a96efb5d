# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A live-migration destination checked for one instance (live_migration_check, and transition_preflight for
the migration peers an operator names): the facts read through libvirt on both sides, judged by
_nova/migration.py."""

from __future__ import annotations

from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt import migration as libvirt_migration
from ansible_collections.storagepools.libvirt.plugins.module_utils._nova import migration


def check_destination(source, destination, instance, instances_path):
    """Whether ``destination`` (a connection) is ready for Nova's block live migration of ``instance`` from
    ``source``: migration.check_instance's {uuid, ready, problems, refused, disks, after_migration}."""
    domain = libvirt_migration.migrating_domain(source, instance)
    xml = libvirt_migration.domain_xml(domain)
    disks = migration.MigrationDisks(xml)
    capacities = {target: libvirt_migration.disk_capacity(domain, target) for target in disks.targets}
    uncopied = disks.uncopied_paths
    source_digests = {path: libvirt_migration.volume_sha256(source, path) for path in uncopied}
    destination_digests = {path: libvirt_migration.volume_sha256(destination, path) for path in uncopied}
    pools = migration.pool_facts(libvirt_migration.pools_with_volumes(destination, disks.directories),
                                 destination_digests)
    return migration.check_instance(xml, capacities, source_digests, pools, instances_path)
