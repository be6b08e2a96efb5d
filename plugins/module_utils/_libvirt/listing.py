# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reading what libvirt lists while others change it.

A pool or domain listed a moment ago may be undefined by someone else
before it is read: a report over everything skips it; a task that named it
fails, with libvirt's own words.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.connection import error_text, libvirt

if TYPE_CHECKING:  # annotations only: nothing more is imported at run time
    from collections.abc import Callable
    from typing import Any

VANISHED = object()  # what unless_vanished returns for an object libvirt no longer has


def unless_vanished(call: Callable[..., Any], *args: Any) -> Any:
    """``call(*args)``, or VANISHED when libvirt refused it (the object was undefined while we listed)."""
    try:
        return call(*args)
    except libvirt.libvirtError:
        return VANISHED


def or_fail(message: str, call: Callable[..., Any], *args: Any) -> Any:
    """``call(*args)``; StoragePoolsError ``message`` with libvirt's words when libvirt refused it."""
    try:
        return call(*args)
    except libvirt.libvirtError as exc:
        raise StoragePoolsError(message, libvirt_error=error_text(exc))


def domain_xmls(conn: libvirt.virConnect) -> list[str]:
    """The XML of every domain still defined when it is read."""
    found = (unless_vanished(domain.XMLDesc, 0) for domain in conn.listAllDomains(0))
    return [text for text in found if text is not VANISHED]


def domain_documents(conn: libvirt.virConnect) -> list[str]:
    """Every domain's live XML and, for a persistent one, its inactive XML too (a disk may be in one only);
    a domain undefined while we list is skipped. A shut-off domain is persistent and its live XML is its
    inactive one, so it is read once (two listings instead of a persistence query per domain)."""
    running = set(domain.UUIDString() for domain in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE))
    persistent = set(domain.UUIDString() for domain in conn.listAllDomains(
        libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE | libvirt.VIR_CONNECT_LIST_DOMAINS_PERSISTENT))
    documents = []
    for domain in conn.listAllDomains(0):
        uuid = domain.UUIDString()
        if uuid not in running:
            flags = (libvirt.VIR_DOMAIN_XML_INACTIVE,)
        else:
            flags = (0, libvirt.VIR_DOMAIN_XML_INACTIVE) if uuid in persistent else (0,)
        for flag in flags:
            text = unless_vanished(domain.XMLDesc, flag)
            if text is not VANISHED:
                documents.append(text)
    return documents
