# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Opening a libvirt connection and turning libvirt errors into operator messages.

libvirt's errors become ``StoragePoolsError`` (errors.py) whose message
names the option at fault; libvirt's own words travel in ``libvirt_error``.
"""

from __future__ import annotations

import sys

try:
    import libvirt
    HAS_LIBVIRT = True
except ImportError:  # reported by the modules through missing_libraries()
    libvirt = None
    HAS_LIBVIRT = False

from ansible_collections.storagepools.libvirt.plugins.module_utils.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils.xml_tree import HAS_LXML


def missing_libraries():
    """A message naming the Python bindings this interpreter lacks, or None."""
    missing = []
    if not HAS_LIBVIRT:
        missing.append('the libvirt bindings (Debian/Ubuntu: python3-libvirt; '
                       'RHEL: python3-libvirt; pip: libvirt-python)')
    if not HAS_LXML:
        missing.append('lxml (Debian/Ubuntu: python3-lxml; pip: lxml)')
    if not missing:
        return None
    return ('ansible_python_interpreter: %s on the managed host lacks %s. Install them on '
            'the managed host, or set ansible_python_interpreter to a Python that has them.'
            % (sys.executable, ' and '.join(missing)))


def error_text(exc):
    """libvirt's own message of a libvirtError (or any exception)."""
    if libvirt is not None and isinstance(exc, libvirt.libvirtError):
        return exc.get_error_message() or str(exc)
    return str(exc)


def error_code(exc):
    if libvirt is not None and isinstance(exc, libvirt.libvirtError):
        return exc.get_error_code()
    return None


def is_no_pool_error(exc):
    return error_code(exc) == libvirt.VIR_ERR_NO_STORAGE_POOL


def _ignore_libvirt_error(_context, _error):
    """libvirt prints every error to stderr by default; we report them ourselves."""


def open_connection(uri):
    """A read-write connection to ``uri``, or StoragePoolsError naming ``uri``."""
    libvirt.registerErrorHandler(_ignore_libvirt_error, None)
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError as exc:
        raise StoragePoolsError(
            'uri: cannot connect to libvirt at %r. Check that libvirtd (or virtqemud and '
            'virtstoraged) runs there, that the URI is right and that this user may '
            'use it.' % uri, libvirt_error=error_text(exc))
    if conn is None:  # old bindings returned None instead of raising
        raise StoragePoolsError('uri: cannot connect to libvirt at %r.' % uri)
    return conn


def lookup_pool(conn, name):
    """The pool named ``name``, or None when there is none."""
    try:
        return conn.storagePoolLookupByName(name)
    except libvirt.libvirtError as exc:
        if is_no_pool_error(exc):
            return None
        raise StoragePoolsError('name: looking up pool %r failed.' % name,
                                libvirt_error=error_text(exc))


def lookup_secret(conn, uuid=None, usage=None):
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


def each_item(items, handle, failed):
    """{item: handle(item)} for a bulk module: one item's failure becomes ``failed`` plus its reason, and the
    others go on."""
    results = {}
    for item in items:
        try:
            results[item] = handle(item)
        except StoragePoolsError as exc:
            reason = exc.msg if exc.libvirt_error is None else '%s: %s' % (exc.msg, exc.libvirt_error)
            results[item] = dict(failed, result='failed', reason=reason)
        except OSError as exc:  # a call without a file name (copy_file_range) must not read "None: ..."
            where = exc.filename if exc.filename is not None else 'item %s' % item
            results[item] = dict(failed, result='failed', reason='%s: %s' % (where, exc.strerror or exc))
        except Exception as exc:  # a libvirt or Ceph error
            results[item] = dict(failed, result='failed', reason=error_text(exc))
    return results


def summarise(results, names):
    """How many items ended in each result of ``names``."""
    return dict((name, sum(1 for result in results.values() if result['result'] == name)) for name in names)


def run_module(module, run, **failure_defaults):
    """The common end of every module of this collection.

    Fails cleanly when the bindings are missing, calls ``run(module)`` for the
    result dict, and turns a StoragePoolsError into ``fail_json`` (never a
    traceback); ``failure_defaults`` are keys every failure returns.
    """
    missing = missing_libraries()
    if missing:
        module.fail_json(msg=missing, **failure_defaults)
    try:
        result = run(module)
    except StoragePoolsError as exc:
        failure = dict(failure_defaults)
        failure.update(exc.result())
        module.fail_json(**failure)
    module.exit_json(**result)
