# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Recorded storage metadata: facts about a volume kept WITH its data.

A volume's format, virtual size, source and backing are recorded when this
collection creates or adopts it, and read back from here, never probed
from the bytes (a guest-written disk is hostile). On file pools the record
is one JSON object in the ``trusted.storagepools.libvirt`` extended attribute
of the volume file: libvirt lists every file of a dir pool as a volume, so a
sidecar file would itself show up as one. The ``trusted.`` namespace is
written only by root (CAP_SYS_ADMIN): the file's owner (nova, or libvirt-qemu
while a guest runs) can write its data and its ``user.`` attributes, never
the record that decides what goes into a domain or what gets deleted.

Records are read and written without following a symlink: a name the nova
user swapped for a link gets no record and yields none.
"""

from __future__ import annotations

import errno
import json
import os

XATTR_NAME = 'trusted.storagepools.libvirt'
FILE_POOL_TYPES = ('dir', 'fs', 'netfs')


def _no_follow(path):
    """Keyword arguments for an xattr call on ``path``: a name is never followed (a descriptor is what it is)."""
    return {} if isinstance(path, int) else {'follow_symlinks': False}


class MetadataError(ValueError):
    """A record that exists but cannot be read as metadata."""


def read_file_metadata(path, name=None):
    """The record of the volume file at ``path``, or None when it has none.

    ``path`` may be an open descriptor of the file (then ``name`` is what messages call it)."""
    name = name or path
    try:
        raw = os.getxattr(path, XATTR_NAME, **_no_follow(path))
    except OSError as exc:
        if exc.errno in (errno.ENODATA, errno.ENOTSUP, errno.ENOENT):
            return None
        raise
    try:
        record = json.loads(raw.decode('utf-8'))
    except ValueError as exc:
        raise MetadataError('%s: the %s attribute is not JSON: %s' % (name, XATTR_NAME, exc))
    if not isinstance(record, dict):
        raise MetadataError('%s: the %s attribute is not a JSON object' % (name, XATTR_NAME))
    return record


RECORD_VERSION = 1


def make_record(volume_format, virtual_size, source, backing=None, checksum=None, method=None):
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


def write_file_metadata(path, record):
    """Record ``record`` on the volume file at ``path`` (or an open descriptor), replacing any earlier one."""
    os.setxattr(path, XATTR_NAME, json.dumps(record, sort_keys=True, separators=(',', ':')).encode('utf-8'),
                **_no_follow(path))


def same_volume(record, wanted):
    """Whether an existing record describes the volume a task wants (its identity, not its history)."""
    keys = ('format', 'source', 'backing')
    return record is not None and all(record.get(key) == wanted.get(key) for key in keys)
