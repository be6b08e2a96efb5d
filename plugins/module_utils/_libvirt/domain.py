# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A domain as the adoption workflows use it: look it up, read its XML and state, redefine it, move a disk
under a running guest (block copy and pivot), and drop a disk's pool volume. Every libvirt error on those
paths is caught here and becomes a StoragePoolsError or a plain answer (None, False)."""

from __future__ import annotations

import time
from typing import Any, Optional

from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError, error_text
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.connection import error_code, libvirt

PIVOT_POLL_SECONDS = 0.05


def lookup_domain(conn: Any, instance_uuid: str) -> Optional[Any]:
    """The domain with ``instance_uuid``, or None when libvirt has none."""
    try:
        return conn.lookupByUUIDString(instance_uuid)
    except libvirt.libvirtError as exc:
        if error_code(exc) != libvirt.VIR_ERR_NO_DOMAIN:
            raise StoragePoolsError('uri: looking up domain %s failed' % instance_uuid, libvirt_error=error_text(exc))
        return None


def is_active(domain: Any) -> bool:
    return bool(domain.isActive())


def inactive_xml(domain: Any) -> str:
    """The persistent definition, secrets included, so that a redefinition loses nothing."""
    return domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)


def live_xml(domain: Any) -> str:
    """What the running guest uses now."""
    return domain.XMLDesc(0)


def define(conn: Any, xml: str) -> None:
    conn.defineXML(xml)


def cancel_block_job(domain: Any, target: str) -> None:
    """Cancel a block job on disk ``target`` (a killed run's copy), if there is one."""
    if domain.blockJobInfo(target, 0):
        domain.blockJobAbort(target, 0)


def block_copy(domain: Any, target: str, destination_xml: str, shallow: bool, timeout: float) -> Optional[str]:
    """Copy the running guest's disk ``target`` into the existing ``destination_xml`` and pivot to it.

    None once pivoted; libvirt's words when the copy did not finish within ``timeout`` seconds (the job is
    then cancelled: the guest keeps its disk)."""
    flags = libvirt.VIR_DOMAIN_BLOCK_COPY_REUSE_EXT | libvirt.VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB
    if shallow:
        flags |= libvirt.VIR_DOMAIN_BLOCK_COPY_SHALLOW
    domain.blockCopy(target, destination_xml, {}, flags)
    deadline = time.monotonic() + timeout
    while True:
        try:
            domain.blockJobAbort(target, libvirt.VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT)  # refused until the mirror is ready
            return None
        except libvirt.libvirtError as exc:
            if time.monotonic() > deadline:
                domain.blockJobAbort(target, 0)
                return error_text(exc)
        time.sleep(PIVOT_POLL_SECONDS)


def remove_volume(pool: Any, name: str, quiet: bool = False) -> bool:
    """Delete volume ``name`` of ``pool`` (an Endpoint) through libvirt, so that its list of the pool stays
    right; whether it was there. ``quiet``: a libvirt failure answers False (the caller removes the file)."""
    try:
        volume = pool.volume(name)
        if volume is None:
            return False
        volume.delete(0)
        return True
    except (libvirt.libvirtError, StoragePoolsError):
        if not quiet:
            raise
        return False
