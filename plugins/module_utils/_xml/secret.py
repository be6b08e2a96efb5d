# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The libvirt <secret> document, and the key fingerprint kept in its description.

A private secret's value cannot be read back through libvirt, so the
collection records a salted fingerprint of the key it set (cephx.fingerprint)
as the last line of the secret's description. The operator's own
description is everything before that line.

On the _xml/base.py base like the pool model: a secret read from libvirt
keeps its whole document, so writing it back (the undo of a redefinition)
restores it as it was.
"""

from __future__ import annotations

import uuid as uuidlib
from typing import Any, Optional, Tuple

from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.base import (
    ET,
    XMLObject,
    XMLProperty,
    to_string,
)

FINGERPRINT_PREFIX = 'storagepools.libvirt key fingerprint: '
MASKED_FINGERPRINT = FINGERPRINT_PREFIX + '********'
# uuid5 namespace of this collection: the same usage name gives the same
# secret uuid on every host (Nova's rbd_secret_uuid is host-independent).
SECRET_NAMESPACE = uuidlib.uuid5(uuidlib.NAMESPACE_DNS, 'storagepools.libvirt')


def default_uuid(usage: str) -> str:
    return str(uuidlib.uuid5(SECRET_NAMESPACE, usage))


def _yes(value: str) -> bool:
    return value == 'yes'


def _yes_no(value: bool) -> str:
    return 'yes' if value else 'no'


class YesNo(XMLProperty):
    """A yes/no attribute as a bool (absent: False)."""

    def __init__(self, path: str) -> None:
        super().__init__(path, parse=_yes, format=_yes_no)

    def __get__(self, obj: Optional[XMLObject], owner: Any = None) -> Any:
        value = super().__get__(obj, owner)
        return value if obj is None else bool(value)

    def __set__(self, obj: XMLObject, value: Any) -> None:
        super().__set__(obj, bool(value))


class SecretDefinition(XMLObject):
    """A <secret> document, whole; ``description`` is the operator's part, ``fingerprint`` the recorded one."""

    ROOT_TAG = 'secret'
    CHILD_ORDER = ('uuid', 'description', 'usage')
    uuid = XMLProperty('uuid')
    usage_type = XMLProperty('usage/@type')
    usage_name = XMLProperty('usage/name')
    private = YesNo('@private')
    ephemeral = YesNo('@ephemeral')
    _description = XMLProperty('description')

    def __init__(self, uuid: Optional[str] = None, usage_type: Optional[str] = None,
                 usage_name: Optional[str] = None, private: bool = True, ephemeral: bool = False,
                 description: Optional[str] = None, fingerprint: Optional[str] = None,
                 node: Optional[ET.Element] = None) -> None:
        super().__init__(node)
        if node is None:
            self.ephemeral, self.private = ephemeral, private
            self.uuid = uuid
            self._description = join_description(description, fingerprint)
            self.usage_type, self.usage_name = usage_type, usage_name

    def _description_parts(self) -> Tuple[Optional[str], Optional[str]]:
        return split_description((self._description or '').strip() or None)

    @property
    def description(self) -> Optional[str]:
        """The operator's description: the <description> without the fingerprint line."""
        return self._description_parts()[0]

    @description.setter
    def description(self, value: Optional[str]) -> None:
        self._description = join_description(value, self.fingerprint)

    @property
    def fingerprint(self) -> Optional[str]:
        return self._description_parts()[1]

    @fingerprint.setter
    def fingerprint(self, value: Optional[str]) -> None:
        self._description = join_description(self.description, value)

    def format_dom(self, mask: bool = False) -> ET.Element:
        """A copy of the document; with ``mask`` the fingerprint is shown as asterisks."""
        if not (mask and self.fingerprint):
            return super().format_dom()
        masked = self.copy()
        masked.fingerprint = '********'
        return masked.node

    def to_xml(self, mask: bool = False) -> str:
        return to_string(self.format_dom(mask=mask))

    def same_definition(self, other: 'SecretDefinition') -> bool:
        """Equal in everything but the fingerprint (which is compared against a key)."""
        return ((self.uuid, self.usage_type, self.usage_name, self.private, self.ephemeral,
                 self.description or None)
                == (other.uuid, other.usage_type, other.usage_name, other.private, other.ephemeral,
                    other.description or None))


def split_description(text: Optional[str]) -> Tuple[Optional[str], Optional[str]]:
    """(operator description or None, fingerprint or None) from a <description>."""
    if not text:
        return None, None
    lines = text.splitlines()
    if lines and lines[-1].startswith(FINGERPRINT_PREFIX):
        operator = '\n'.join(lines[:-1]).strip() or None
        return operator, lines[-1][len(FINGERPRINT_PREFIX):].strip() or None
    return text, None


def join_description(description: Optional[str], fingerprint: Optional[str]) -> Optional[str]:
    parts = [description] if description else []
    if fingerprint:
        parts.append(FINGERPRINT_PREFIX + fingerprint)
    return '\n'.join(parts) or None
