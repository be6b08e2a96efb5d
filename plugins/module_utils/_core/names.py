# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The rules for names and paths, checked before anything uses them.

A name or path reaches libvirt XML (lxml refuses control characters with a
bare ValueError), the host's file system (a NUL ends a path early), and
qemu's ``rbd:`` filename, where ``pool/image@snapshot:key=value:...`` is cut
at ``/``, ``@``, ``:`` and ``=`` and ``\\`` escapes: an image name holding one
of them names another image or adds options (another instance's image as
the write target, a keyring or monitor of the caller's choice). So names
are refused here with a message naming the option, and every ``rbd:``
filename is still built with ``rbd_filename`` (escaped), whatever the name.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import OptionError

if TYPE_CHECKING:  # annotations only: nothing more is imported at run time
    from collections.abc import Callable, Iterable
    from typing import Any

# C0 controls (NUL included), DEL, C1 controls, and what XML 1.0 cannot carry at all.
_CONTROL_RE = re.compile('[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]')
# What qemu's rbd: filename parser splits on or unescapes.
RBD_SPECIAL = ':@/\\='
_RBD_SPECIAL_RE = re.compile('[%s]' % re.escape(RBD_SPECIAL))
MAX_NAME = 255


def text(value: object, option: str, what: str = 'value', allow: str = '') -> str:
    """``value`` (a str) without control characters (``allow``: those it may hold, e.g. newlines)."""
    if not isinstance(value, str):
        value = str(value)
    bad = [char for char in _CONTROL_RE.findall(value) if char not in allow]
    if bad:
        raise OptionError(option, 'the %s %r contains the control character %r; names and paths may not hold '
                          'control characters or NUL' % (what, value, bad[0]))
    return value


def description(value: str, option: str) -> str:
    """Free text (a secret's description): lines and tabs, no other control characters."""
    return text(value, option, 'description', allow='\n\t')


def path(value: str, option: str) -> str:
    """A path given to the module: no control characters, no NUL."""
    return text(value, option, 'path')


def pool_name(value: str, option: str = 'name') -> str:
    """A libvirt pool name: non-empty, no '/', not starting with whitespace, no control characters."""
    if not value or '/' in value or value[0].isspace():
        raise OptionError(option, 'pool name %r must be non-empty, must not contain "/" and must not start with '
                                  'whitespace' % (value,))
    return text(value, option, 'pool name')


def volume_name(value: str, option: str = 'name') -> str:
    """A volume name (a file, an LV or an rbd image): non-empty, at most 255 characters, not starting
    with '.', none of / : @ \\ = (qemu's rbd: separators), no control characters."""
    if not value or value.startswith('.') or len(value) > MAX_NAME or _RBD_SPECIAL_RE.search(value):
        raise OptionError(option, "volume name %r must be non-empty, at most %d characters, must not start "
                                  "with '.' and must not contain any of %s" % (value, MAX_NAME, ' '.join(RBD_SPECIAL)))
    return text(value, option, 'volume name')


def ceph_name(value: str, option: str) -> str:
    """A Ceph pool or cephx user name that goes into an rbd: filename: none of / : @ \\ =."""
    if not value or _RBD_SPECIAL_RE.search(value) or value != value.strip():
        raise OptionError(option, '%r must be non-empty, without surrounding blanks and without any of %s'
                          % (value, ' '.join(RBD_SPECIAL)))
    return text(value, option, 'name')


def check_options(params: dict[str, Any], rules: dict[str, Callable[[Any, str], object]]) -> None:
    """Apply ``rules`` ({option: check}) to a module's params; an option may be dotted (``source.volume``),
    a list option has each element checked; an unset option is left alone."""
    for option, check in rules.items():
        value = params
        for part in option.split('.'):
            value = value.get(part) if isinstance(value, dict) else None
        for item in value if isinstance(value, list) else [value]:
            if item is not None:
                check(item, option)


def rbd_escape(value: str) -> str:
    """``value`` with every character qemu's rbd: parser treats specially escaped by a backslash."""
    return _RBD_SPECIAL_RE.sub(lambda match: '\\' + match.group(0), value)


def rbd_filename(ceph_pool: str, image: str, options: Iterable[tuple[str, str]]) -> str:
    """qemu's ``rbd:`` filename of ``ceph_pool``/``image`` with ``options`` [(key, value)], every part
    escaped, so no part can name another image or add an option."""
    parts = ['rbd:%s/%s' % (rbd_escape(ceph_pool), rbd_escape(image))]
    parts += ['%s=%s' % (rbd_escape(key), rbd_escape(value)) for key, value in options]
    return ':'.join(parts)
