# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Opening a libvirt connection and turning libvirt errors into operator messages.

libvirt's errors become ``StoragePoolsError`` (_core/errors.py) whose message
names the option at fault; libvirt's own words travel in ``libvirt_error``.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from typing import Any

try:
    import libvirt
    HAS_LIBVIRT = True
except ImportError:  # reported by the modules through missing_libraries()
    libvirt = None
    HAS_LIBVIRT = False

from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError, error_text


def missing_libraries() -> str | None:
    """A message naming the Python bindings this interpreter lacks, or None."""
    missing = []
    if not HAS_LIBVIRT:
        missing.append('the libvirt bindings (Debian/Ubuntu: python3-libvirt; '
                       'RHEL: python3-libvirt; pip: libvirt-python)')
    if importlib.util.find_spec('lxml') is None:  # found, not imported: a pool task never loads it
        missing.append('lxml (Debian/Ubuntu: python3-lxml; pip: lxml)')
    if not missing:
        return None
    return ('ansible_python_interpreter: %s on the managed host lacks %s. Install them on '
            'the managed host, or set ansible_python_interpreter to a Python that has them.'
            % (sys.executable, ' and '.join(missing)))


def error_code(exc: BaseException) -> int | None:
    if libvirt is not None and isinstance(exc, libvirt.libvirtError):
        return exc.get_error_code()
    return None


def is_no_pool_error(exc: BaseException) -> bool:
    return error_code(exc) == libvirt.VIR_ERR_NO_STORAGE_POOL


def _ignore_libvirt_error(_context, _error):
    """libvirt prints every error to stderr by default; we report them ourselves."""


def open_connection(uri: str, option: str = 'uri') -> libvirt.virConnect:
    """A read-write connection to ``uri``, or StoragePoolsError naming ``option`` (the task's option of it)."""
    libvirt.registerErrorHandler(_ignore_libvirt_error, None)
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError as exc:
        raise StoragePoolsError(
            '%s: cannot connect to libvirt at %r. Check that libvirtd (or virtqemud and '
            'virtstoraged) runs there, that the URI is right and that this user may '
            'use it.' % (option, uri), libvirt_error=error_text(exc))
    if conn is None:  # old bindings returned None instead of raising
        raise StoragePoolsError('%s: cannot connect to libvirt at %r.' % (option, uri))
    return conn


def lookup_pool(conn: libvirt.virConnect, name: str) -> libvirt.virStoragePool | None:
    """The pool named ``name``, or None when there is none."""
    try:
        return conn.storagePoolLookupByName(name)
    except libvirt.libvirtError as exc:
        if is_no_pool_error(exc):
            return None
        raise StoragePoolsError('name: looking up pool %r failed.' % name,
                                libvirt_error=error_text(exc))


# The sizes libvirt writes into a pool document: they change with every write into the pool, and no pool
# task decides on them (the pool model drops them).
_POOL_SIZES_RE = re.compile(r"\n *<(capacity|allocation|available) unit='bytes'>[0-9]+</\1>")


def pool_answers(conn: libvirt.virConnect, name: str) -> list[Any] | None:
    """What libvirt says of pool ``name``: [inactive XML, active, autostart, running XML or None], the
    documents verbatim but for their sizes; None when there is no such pool. Every read a pool task decides
    on, so equal answers decide the same."""
    pool = lookup_pool(conn, name)
    if pool is None:
        return None
    try:
        active = bool(pool.isActive())
        running = _POOL_SIZES_RE.sub('', pool.XMLDesc(0)) if active else None
        return [_POOL_SIZES_RE.sub('', pool.XMLDesc(libvirt.VIR_STORAGE_XML_INACTIVE)), active,
                bool(pool.autostart()), running]
    except libvirt.libvirtError as exc:
        raise StoragePoolsError('name: reading pool %r failed.' % name, libvirt_error=error_text(exc))


def lookup_secret(conn: libvirt.virConnect, uuid: str | None = None,
                  usage: str | None = None) -> libvirt.virSecret | None:
    """The ceph secret with ``uuid`` (or, without one, ``usage``), or None."""
    try:
        if uuid:
            return conn.secretLookupByUUIDString(uuid)
        return conn.secretLookupByUsage(libvirt.VIR_SECRET_USAGE_TYPE_CEPH, usage)
    except libvirt.libvirtError as exc:
        if error_code(exc) == libvirt.VIR_ERR_NO_SECRET:
            return None
        raise StoragePoolsError('uuid: looking up secret %s failed.' % (uuid or usage),
                                libvirt_error=error_text(exc))


def is_local_uri(uri: str) -> bool:
    """True when ``uri`` reaches a daemon of this very host, whose files this process sees: no host part, and
    no transport or the unix one (qemu:///system, qemu+unix:///system?socket=...). Any host, localhost and
    127.0.0.1 included, and any network transport count as remote: a tcp, tls or ssh listener on this machine
    may be another daemon in a mount namespace of its own (a second host), whose files are not ours to read."""
    scheme, sep, rest = uri.partition('://')
    if not sep:
        return False  # '' or an alias: which daemon it reaches is configured elsewhere
    transport = scheme.partition('+')[2]
    return transport in ('', 'unix') and rest.startswith('/')


def require_local_uri(uri: str, needs: str, option: str = 'uri') -> None:
    """StoragePoolsError naming ``option`` unless ``uri`` is local (is_local_uri): the task ``needs`` (what
    it does on the libvirt host's own files, e.g. 'adoption reads the instance directories') that host."""
    if not is_local_uri(uri):
        raise StoragePoolsError('%s: %s on the libvirt host, and %r is a remote URI (this process would act on '
                                'its own files instead); run the task on that host (delegate_to it, or its own '
                                'inventory entry) with a local uri (qemu:///system)' % (option, needs, uri))
