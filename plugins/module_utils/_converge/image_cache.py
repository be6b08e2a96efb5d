# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Nova's image cache (``<instances_path>/_base``) as a property of the backend (docs/image-cache.md).

Every base gets recorded metadata in place (the cache pool is ``_base``
itself, nothing moves), and with an rbd destination it is also imported
as an rbd image of the same name with a protected snapshot, the parent of
copy-on-write clones.

A base's format is never probed. It comes from, in this order: its own
record; the backing format that the qcow2 headers of the host's overlays
name for it (written by qemu, not by a guest; they must agree); Nova's
``force_raw_images`` (default true: Nova converted every image it cached
to raw, and swap/ephemeral bases are raw files). Failing all three the
base is reported and left alone. The declared format is then checked
against the bytes (image_inspect), which refuses e.g. a "raw" base that
carries a qcow2 header.

What a base gets is planned first (``plan_base``: a function of what was
observed, its format, where that came from, its inspected size), then the
plan is applied; check mode returns the same plan and writes nothing. The
in-place record is written only as a step of that plan.
"""

from __future__ import annotations

import functools
import os
import stat

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import records as metadata
from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.base import backend_for
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.volume import cloner_for
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.plan import Plan
from ansible_collections.storagepools.libvirt.plugins.module_utils._images import inspect as image_inspect
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.pool import Endpoint
from ansible_collections.storagepools.libvirt.plugins.module_utils._nova import layout as nova_layout

BASE_NAME_RE = nova_layout.BASE_NAME_RE


def overlay_backing_formats(instances_path: str) -> dict:
    """{base path: set of backing formats named by the host's qcow2 overlays} (headers only, each overlay
    opened without following a symlink)."""
    named = {}
    for instance_uuid in nova_layout.list_instances(instances_path):
        try:
            with nova_layout.InstanceFiles(instances_path, instance_uuid) as files:
                _overlay_backing_formats(files, named)
        except nova_layout.Skip:
            continue  # legacy_disk_adopt reports that instance
    return named


def _overlay_backing_formats(files, named):
    directory = files.path
    for path, disk_format in nova_layout.read_disk_info(directory, files.fd).items():
        if disk_format != 'qcow2' or os.path.dirname(path) != directory:
            continue
        try:
            fd, _info = nova_layout.open_regular_file(os.path.basename(path), files.fd)
        except OSError:
            continue
        try:
            _size, backing, backing_format = image_inspect.read_qcow2_overlay(path, fd=fd)
        except image_inspect.ImageRefused:
            continue
        finally:
            os.close(fd)
        if backing and backing_format:
            backing = os.path.normpath(backing if os.path.isabs(backing) else os.path.join(directory, backing))
            named.setdefault(backing, set()).add(backing_format)


def plan_base(name: str, path: str, fd: int, disk_format: str, origin: str, info) -> Plan:
    """The plan of one base from what was observed: its format and where that came from (``origin``:
    record, overlay headers, force_raw_images), its inspected ImageInfo. A base without a record gets one,
    written in place through ``fd`` (the descriptor it was inspected through)."""
    plan = Plan()
    if origin != 'record':
        record = metadata.make_record(disk_format, info.virtual_size, {'path': path, 'nova_base': name},
                                      method='in-place')
        plan.add('record', "record %s as %s (%d bytes; format from %s)" % (path, disk_format, info.virtual_size,
                                                                         origin),
                 functools.partial(metadata.write_file_metadata, fd, record), option='instances_path')
    return plan


class ImageCache:
    def __init__(self, conn, uri: str, instances_path: str, nova_conf, check_mode: bool, dest_pool: str | None = None,
                 ceph_keyring: str | None = None) -> None:
        self.conn = conn
        self.uri = uri
        self.base_dir = os.path.join(os.path.normpath(instances_path), nova_layout.BASE_DIR)
        self.instances_path = instances_path
        self.nova_conf = nova_conf
        self.check_mode = check_mode
        self.dest_pool = dest_pool
        self.ceph_keyring = ceph_keyring
        self._named = None
        self._base = None
        self._dest = None  # the backend of dest_pool, opened once for all bases (one Ceph connection)

    def _base_fd(self):
        """``_base``, opened once without following a symlink (the nova user owns it)."""
        if self._base is None:
            try:
                self._base = nova_layout.open_directory(self.instances_path, nova_layout.BASE_DIR)
            except OSError as exc:
                why = nova_layout.why_directory_not_opened(exc)
                raise StoragePoolsError('instances_path: %s %s' % (self.base_dir, why))
        return self._base

    def bases(self) -> list:
        """The names in ``_base`` that are files or symlinks (ensure() refuses the symlinks)."""
        base_fd = self._base_fd()
        names = []
        for name in sorted(os.listdir(base_fd)):
            found = os.lstat(name, dir_fd=base_fd)
            if stat.S_ISREG(found.st_mode) or stat.S_ISLNK(found.st_mode):
                names.append(name)
        return names

    def declared_format(self, path: str, fd: int) -> tuple:
        """(format, where it comes from), or (None, why not)."""
        recorded = metadata.read_file_metadata(fd)
        if recorded and recorded.get('format'):
            return recorded['format'], 'record'
        if self._named is None:
            self._named = overlay_backing_formats(self.instances_path)
        named = self._named.get(path, set())
        if len(named) > 1:
            return None, 'the overlays that back onto it disagree on its format (%s)' % ', '.join(sorted(named))
        if named:
            return next(iter(named)), 'overlay headers'
        if self.nova_conf.force_raw_images:
            return 'raw', 'force_raw_images'
        return None, 'no overlay names its format and nova.conf sets force_raw_images=False'

    def ensure(self, name: str) -> dict:
        """One base's result: {result, reason, format, virtual_size, volume}; never raises for the base itself."""
        path = os.path.join(self.base_dir, name)
        result = {'result': None, 'reason': None, 'format': None, 'virtual_size': None, 'volume': None,
                  'actions': []}
        if not BASE_NAME_RE.match(name):
            return dict(result, result='skipped', reason='not a name Nova gives a base (in flight or foreign)')
        try:
            fd, found = nova_layout.open_regular_file(name, self._base_fd())
        except OSError as exc:
            return dict(result, result='skipped', reason='%s %s; never followed' % (path, nova_layout.why_not_opened(exc)))
        try:
            return self._ensure(name, path, fd, found, result)
        finally:
            os.close(fd)

    def _ensure(self, name, path, fd, found, result):
        disk_format, origin = self.declared_format(path, fd)
        if disk_format is None:
            return dict(result, result='skipped', reason=origin)
        try:
            with os.fdopen(fd, 'rb', closefd=False) as handle:
                info = image_inspect.inspect_handle(handle, found.st_size, path, disk_format)
        except image_inspect.ImageRefused as exc:
            return dict(result, result='skipped', reason='%s (format from %s)' % (exc.msg, origin))
        result.update(format=disk_format, virtual_size=info.virtual_size)
        plan = plan_base(name, path, fd, disk_format, origin, info)
        cloner = None
        try:
            if self.dest_pool is not None:
                cloner = self._plan_import(plan, name, path, fd, disk_format)
            plan.apply(self.check_mode)
            if cloner is not None:
                result['volume'] = cloner.result_volume()
        finally:
            if cloner is not None:
                cloner.close()
        return dict(result, result='changed' if plan else 'unchanged', actions=plan.describe())

    def _plan_import(self, plan, name, path, fd, disk_format):
        """Add to ``plan`` the base's import as a volume of the destination pool (rbd: with its protected
        snapshot); the cloner."""
        cloner = cloner_for(self.conn, self.uri, self.dest_pool, name, self.ceph_keyring, backend=self._backend())
        try:
            imported = cloner.plan_clone({'path': path, 'format': disk_format, 'opened': fd}, 'copy', None, None,
                                         {'nova_base': name}, verify=True)
            plan.steps.extend(imported.steps)
            for step in cloner.backend.parent_steps(name, bool(imported), option='dest_pool'):
                plan.add(**step)
        except Exception:
            cloner.close()
            raise
        return cloner

    def _backend(self):
        """The backend of dest_pool, opened once for all bases."""
        if self._dest is None:
            self._dest = backend_for(Endpoint(self.conn, self.dest_pool, 'dest_pool'), 'pool', self.ceph_keyring)
        return self._dest

    def close(self) -> None:
        if self._dest is not None:
            self._dest.close()
        if self._base is not None:
            os.close(self._base)
            self._base = None
