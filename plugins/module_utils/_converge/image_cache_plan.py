# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The plan of one base of Nova's image cache, from what was observed (image_cache.py observes and applies).

Functions of what image_cache.ImageCache read: which names are bases, where a base's format comes from (its
record, the backing formats the overlays' headers name, nova.conf's ``force_raw_images``), the steps a base
gets and the result it reports. None of them opens a file or calls libvirt.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import records as metadata
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.plan import Plan
from ansible_collections.storagepools.libvirt.plugins.module_utils._nova import layout as nova_layout

if TYPE_CHECKING:  # annotations only: nothing more is imported at run time
    from ansible_collections.storagepools.libvirt.plugins.module_utils._images.inspect import ImageInfo

BASE_NAME_RE = nova_layout.BASE_NAME_RE


def empty_result() -> dict:
    """A base's result before anything is known of it."""
    return {'result': None, 'reason': None, 'format': None, 'virtual_size': None, 'volume': None, 'actions': []}


def skipped(reason: str) -> dict:
    """The result of a base left alone, and why."""
    return dict(empty_result(), result='skipped', reason=reason)


def name_skip_reason(name: str) -> str | None:
    """Why ``name`` in ``_base`` is not a base this module touches, or None when it is one."""
    if not BASE_NAME_RE.match(name):
        return 'not a name Nova gives a base (in flight or foreign)'
    return None


def backing_base(directory: str, backing: str) -> str:
    """The normalised path of an overlay's backing file (relative names are relative to the overlay's
    ``directory``)."""
    return os.path.normpath(backing if os.path.isabs(backing) else os.path.join(directory, backing))


def format_origin(recorded: dict | None, named: set, force_raw_images: bool) -> tuple:
    """(format, where it comes from) of a base, or (None, why not): its ``recorded`` record first, then the
    backing formats ``named`` by the overlays on it (they must agree), then ``force_raw_images``."""
    if recorded and recorded.get('format'):
        return recorded['format'], 'record'
    if len(named) > 1:
        return None, 'the overlays that back onto it disagree on its format (%s)' % ', '.join(sorted(named))
    if named:
        return next(iter(named)), 'overlay headers'
    if force_raw_images:
        return 'raw', 'force_raw_images'
    return None, 'no overlay names its format and nova.conf sets force_raw_images=False'


def plan_base(name: str, path: str, fd: int, disk_format: str, origin: str, info: ImageInfo) -> Plan:
    """The plan of one base from what was observed: its format and where that came from (``origin``:
    record, overlay headers, force_raw_images), its inspected ImageInfo. A base without a record gets one,
    written in place through ``fd`` (the descriptor it was inspected through)."""
    plan = Plan()
    if origin != 'record':
        record = metadata.make_record(disk_format, info.virtual_size, {'path': path, 'nova_base': name},
                                      method='in-place')
        detail = "record %s as %s (%d bytes; format from %s)" % (path, disk_format, info.virtual_size, origin)
        plan.add('record', detail,
                 functools.partial(metadata.write_file_metadata, fd, record), option='instances_path')
    return plan


def add_import(plan: Plan, imported: Plan, parent_steps: list) -> None:
    """Add to a base's ``plan`` its import as a volume (``imported``: the cloner's plan) and the steps that make
    the volume a parent of copy-on-write clones (the backend's ``parent_steps``)."""
    plan.steps.extend(imported.steps)
    for step in parent_steps:
        plan.add(**step)


def planned_result(result: dict, plan: Plan) -> dict:
    """``result`` (format and size known) with what ``plan`` does: changed or unchanged, and its actions."""
    return dict(result, result='changed' if plan else 'unchanged', actions=plan.describe())
