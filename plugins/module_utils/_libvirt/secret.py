# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Live libvirt secrets: their definitions and values, libvirt errors translated here."""

from __future__ import annotations

from typing import Optional

from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.connection import (
    error_code,
    error_text,
    libvirt,
    lookup_secret,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.secret import SecretDefinition


def secret_definition(secret: libvirt.virSecret) -> SecretDefinition:
    """The secret's document, whole."""
    return SecretDefinition.from_xml(secret.XMLDesc(0))


def secret_value(secret: libvirt.virSecret) -> Optional[bytes]:
    """A non-private secret's value; None when it has none yet."""
    try:
        return secret.value(0)
    except libvirt.libvirtError as exc:
        if error_code(exc) == libvirt.VIR_ERR_NO_SECRET:  # "does not have a value"
            return None
        raise StoragePoolsError('uuid: reading secret %s failed' % secret.UUIDString(),
                                libvirt_error=error_text(exc))


def definition_by_usage(conn: libvirt.virConnect, usage: str) -> Optional[SecretDefinition]:
    """The definition of the ceph secret with ``usage``, or None."""
    secret = lookup_secret(conn, usage=usage)
    return secret_definition(secret) if secret is not None else None
