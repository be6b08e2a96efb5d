# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The common end of every module: bulk items, summaries, errors to fail_json."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError, error_text

if TYPE_CHECKING:  # annotations only: nothing more is imported at run time
    from collections.abc import Callable, Iterable
    from typing import Any

    from ansible.module_utils.basic import AnsibleModule


def each_item(items: Iterable[str], handle: Callable[[str], dict[str, Any]],
              failed: dict[str, Any]) -> dict[str, dict[str, Any]]:
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


def summarise(results: dict[str, dict[str, Any]], names: Iterable[str]) -> dict[str, int]:
    """How many items ended in each result of ``names``."""
    return dict((name, sum(1 for result in results.values() if result['result'] == name)) for name in names)


def run_module(module: AnsibleModule, run: Callable[[AnsibleModule], dict[str, Any]],
               missing_libraries: Callable[[], str | None] | None = None, **failure_defaults: Any) -> None:
    """The common end of every module of this collection.

    Fails cleanly when the bindings are missing (``missing_libraries()``: a
    message naming them, or None), calls ``run(module)`` for the
    result dict, and turns a StoragePoolsError into ``fail_json`` (never a
    traceback); ``failure_defaults`` are keys every failure returns.
    """
    missing = missing_libraries() if missing_libraries is not None else None
    if missing:
        module.fail_json(msg=missing, **failure_defaults)
    try:
        result = run(module)
    except StoragePoolsError as exc:
        failure = dict(failure_defaults)
        failure.update(exc.result())
        module.fail_json(**failure)
    module.exit_json(**result)
