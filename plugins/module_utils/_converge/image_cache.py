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

What a base gets is planned first (image_cache_plan.py: functions of what
was observed, its format, where that came from, its inspected size), then
the plan is applied; check mode returns the same plan and writes nothing. The
in-place record is written only as a step of that plan.
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import records as metadata
from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.base import backend_for
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge import image_cache_plan
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.image_cache_plan import plan_base
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._images import inspect as image_inspect
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.pool import Endpoint
from ansible_collections.storagepools.libvirt.plugins.module_utils._nova import layout as nova_layout

if TYPE_CHECKING:  # annotations only: nothing more is imported at run time
    from typing import Any


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
            named.setdefault(image_cache_plan.backing_base(directory, backing), set()).add(backing_format)


class ImageCache:
    def __init__(self, conn: Any, uri: str, instances_path: str, nova_conf: nova_layout.NovaConf, check_mode: bool,
                 dest_pool: str | None = None, ceph_keyring: str | None = None) -> None:
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
        named = set()
        if not (recorded and recorded.get('format')):  # a recorded base needs no overlay read
            named = self._overlay_formats().get(path, set())
        return image_cache_plan.format_origin(recorded, named, self.nova_conf.force_raw_images)

    def _overlay_formats(self):
        """overlay_backing_formats() of the host, read once for all bases."""
        if self._named is None:
            self._named = overlay_backing_formats(self.instances_path)
        return self._named

    def ensure(self, name: str) -> dict:
        """One base's result: {result, reason, format, virtual_size, volume}; never raises for the base itself."""
        path = os.path.join(self.base_dir, name)
        not_a_base = image_cache_plan.name_skip_reason(name)
        if not_a_base:
            return image_cache_plan.skipped(not_a_base)
        try:
            fd, found = nova_layout.open_regular_file(name, self._base_fd())
        except OSError as exc:
            return image_cache_plan.skipped('%s %s; never followed' % (path, nova_layout.why_not_opened(exc)))
        try:
            return self._ensure(name, path, fd, found)
        finally:
            os.close(fd)

    def _ensure(self, name, path, fd, found):
        disk_format, origin = self.declared_format(path, fd)
        if disk_format is None:
            return image_cache_plan.skipped(origin)
        try:
            with os.fdopen(fd, 'rb', closefd=False) as handle:
                info = image_inspect.inspect_handle(handle, found.st_size, path, disk_format)
        except image_inspect.ImageRefused as exc:
            return image_cache_plan.skipped('%s (format from %s)' % (exc.msg, origin))
        result = dict(image_cache_plan.empty_result(), format=disk_format, virtual_size=info.virtual_size)
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
        return image_cache_plan.planned_result(result, plan)

    def _plan_import(self, plan, name, path, fd, disk_format):
        """Add to ``plan`` the base's import as a volume of the destination pool (rbd: with its protected
        snapshot); the cloner."""
        # imported here: nova_storage_prune imports this module for overlay_backing_formats, and needs no cloner
        from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.volume import cloner_for

        cloner = cloner_for(self.conn, self.uri, self.dest_pool, name, self.ceph_keyring, backend=self._backend())
        try:
            imported = cloner.plan_clone({'path': path, 'format': disk_format, 'opened': fd}, 'copy', None, None,
                                         {'nova_base': name}, verify=True)
            parent_steps = cloner.backend.parent_steps(name, bool(imported), option='dest_pool')
            image_cache_plan.add_import(plan, imported, parent_steps)
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
