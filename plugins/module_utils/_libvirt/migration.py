# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What libvirt says, on each side of a live migration, for the readiness check (_nova/migration.py).

Read only. A source disk's format and backing file come from the domain XML
(what QEMU opens), its size from ``virDomainGetBlockInfo`` (QEMU's view, as
the declared format). A destination volume is described by libvirt's volume
XML: the check runs before the migration, on volumes no guest has written
yet. Disks the migration does not copy are compared by content (a stream
download, each side through its own libvirt).
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, Dict, Iterable, List, Optional

from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.connection import error_text, libvirt
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.listing import VANISHED, unless_vanished
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.pool import running_definition
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.base import parse
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.volume import VolumeDefinition


def migrating_domain(conn: libvirt.virConnect, instance: str) -> Any:
    """The domain by uuid or name, or StoragePoolsError naming the option."""
    for lookup in (conn.lookupByUUIDString, conn.lookupByName):
        try:
            return lookup(instance)
        except libvirt.libvirtError:
            continue
    raise StoragePoolsError("instances: the source has no domain with uuid or name '%s'" % instance)


def domain_xml(domain: Any) -> str:
    """The XML the migration starts from: the live one of a running domain, else the defined one."""
    return domain.XMLDesc(0)


def disk_capacity(domain: Any, target: str) -> Optional[int]:
    """The disk's virtual size as QEMU (or libvirt, for a domain that is off) opens it with its declared format."""
    try:
        return int(domain.blockInfo(target, 0)[0])
    except libvirt.libvirtError:
        return None  # an empty cdrom, a network disk


def volume_sha256(conn: libvirt.virConnect, path: str) -> Optional[str]:
    """SHA-256 of a volume's bytes through libvirt (None when libvirt has no volume at ``path``)."""
    try:
        volume = conn.storageVolLookupByPath(path)
    except libvirt.libvirtError:
        return None
    digest = hashlib.sha256()
    stream = conn.newStream(0)
    try:
        volume.download(stream, 0, 0, 0)
        stream.recvAll(lambda _stream, data, _opaque: digest.update(data), None)
        stream.finish()
    except libvirt.libvirtError as exc:
        raise StoragePoolsError('reading %s through libvirt failed' % path, libvirt_error=error_text(exc))
    return digest.hexdigest()


def _volume_facts(volume: Any) -> Optional[Dict[str, Any]]:
    text = unless_vanished(volume.XMLDesc, 0)
    if text is VANISHED:
        return None
    definition = VolumeDefinition(node=parse(text, 'volume'))
    return dict(path=definition.path, format=definition.format, capacity=definition.capacity,
                backing_path=definition.backing_path, backing_format=definition.backing_format)


def pools_with_volumes(conn: libvirt.virConnect, directories: Iterable[str]) -> List[Dict[str, Any]]:
    """Every pool (name, type, target, active); the volumes of the active ones whose target is in ``directories``."""
    wanted = {os.path.normpath(directory) for directory in directories}
    found = []
    for pool in conn.listAllStoragePools(0):
        active = unless_vanished(pool.isActive)
        if active is VANISHED:
            continue
        definition = running_definition(pool)
        target = os.path.normpath(definition.target_path) if definition.target_path else None
        volumes: Dict[str, Dict[str, Any]] = {}
        listed = unless_vanished(pool.listAllVolumes, 0) if active and target in wanted else []
        if listed is not VANISHED:
            for volume in listed:
                facts = _volume_facts(volume)
                if facts is not None:
                    volumes[volume.name()] = facts
        found.append(dict(name=definition.name, type=definition.type, target=definition.target_path,
                          active=bool(active), volumes=volumes))
    return found
