# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one exception type modules report.

Every failure this collection reports is a ``StoragePoolsError``: ``msg``
names the option at fault and the fix, ``libvirt_error`` keeps libvirt's own
words for whoever needs them. Modules turn it into ``fail_json``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: nothing more is imported at run time
    from typing import Any


class StoragePoolsError(Exception):
    """A failure explained for the operator.

    ``libvirt_error`` is libvirt's own message (or None); ``details`` is a
    dict merged into the failure result (e.g. the plan carried out so far).
    """

    def __init__(self, msg: str, libvirt_error: str | None = None, **details: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.libvirt_error = libvirt_error
        self.details = details

    def result(self) -> dict[str, Any]:
        result = dict(self.details)
        result['msg'] = self.msg
        if self.libvirt_error is not None:
            result['libvirt_error'] = self.libvirt_error
        return result


def error_text(exc: BaseException) -> str:
    """The message of any exception: libvirt's own words for a libvirtError (duck-typed, so this layer
    imports no binding), ``str(exc)`` otherwise."""
    get_message = getattr(exc, 'get_error_message', None)
    return (get_message() if callable(get_message) else None) or str(exc)


class OptionError(StoragePoolsError):
    """A failure caused by one option's value: ``option`` names it, first in ``msg`` too."""

    def __init__(self, option: str, message: str, **details: Any) -> None:
        super().__init__('%s: %s' % (option, message), **details)
        self.option = option
