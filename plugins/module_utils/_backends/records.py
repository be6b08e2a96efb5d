# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Recorded storage metadata: facts about a volume kept WITH its data.

A volume's format, virtual size, source and backing are recorded when this
collection creates or adopts it, and read back from here, never probed
from the bytes (a guest-written disk is hostile). This is what a record
holds; where it is kept is the volume's backend's (_backends/base.py
``read_record``/``write_record``):
a file's extended attribute (file.py), an LV's tags (logical.py), an rbd
image's image-meta (rbd.py).
"""

from __future__ import annotations

# the file backend's record primitives, named here too for the workflows that write records on files
from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.file import (
    FILE_POOL_TYPES,
    XATTR_NAME,
    MetadataError,
    read_file_metadata,
    write_file_metadata,
)

__all__ = ['FILE_POOL_TYPES', 'XATTR_NAME', 'MetadataError', 'RECORD_VERSION', 'make_record', 'read_file_metadata',
           'same_volume', 'write_file_metadata']

RECORD_VERSION = 1


def make_record(volume_format: str, virtual_size: int, source: dict, backing: dict | None = None,
                checksum: str | None = None, method: str | None = None) -> dict:
    """The metadata recorded with a volume this collection made.

    ``source``: where the data came from ({pool, volume}, {path}, image_id, ...);
    ``backing``: {pool, volume, path, format} of a copy-on-write parent, or None.
    """
    return {
        'version': RECORD_VERSION,
        'created_by': 'storagepools.libvirt',
        'format': volume_format,
        'virtual_size': virtual_size,
        'source': source,
        'backing': backing,
        'checksum': checksum,
        'method': method,
    }


def same_volume(record: dict | None, wanted: dict) -> bool:
    """Whether an existing record describes the volume a task wants (its identity, not its history)."""
    keys = ('format', 'source', 'backing')
    return record is not None and all(record.get(key) == wanted.get(key) for key in keys)
