# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The libvirt <secret> document, and the key fingerprint kept in its description.

A private secret's value cannot be read back through libvirt, so the
collection records a salted fingerprint of the key it set (cephx.fingerprint)
as the last line of the secret's description. The operator's own
description is everything before that line.
"""

from __future__ import annotations

import uuid as uuidlib

from ansible_collections.storagepools.libvirt.plugins.module_utils._xml import tree as xml_tree
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.tree import etree

FINGERPRINT_PREFIX = 'storagepools.libvirt key fingerprint: '
MASKED_FINGERPRINT = FINGERPRINT_PREFIX + '********'
# uuid5 namespace of this collection: the same usage name gives the same
# secret uuid on every host (Nova's rbd_secret_uuid is host-independent).
SECRET_NAMESPACE = uuidlib.uuid5(uuidlib.NAMESPACE_DNS, 'storagepools.libvirt')


def default_uuid(usage):
    return str(uuidlib.uuid5(SECRET_NAMESPACE, usage))


def _yes_no(value):
    return 'yes' if value else 'no'


class SecretDefinition:
    def __init__(self, uuid, usage_type, usage_name, private=True, ephemeral=False, description=None,
                 fingerprint=None):
        self.uuid = uuid
        self.usage_type = usage_type
        self.usage_name = usage_name
        self.private = private
        self.ephemeral = ephemeral
        self.description = description  # the operator's part
        self.fingerprint = fingerprint

    @classmethod
    def parse_dom(cls, root):
        usage = root.find('usage')
        description, fingerprint = split_description(xml_tree.child_text(root, 'description'))
        return cls(uuid=xml_tree.child_text(root, 'uuid'),
                   usage_type=usage.get('type') if usage is not None else None,
                   usage_name=xml_tree.child_text(usage, 'name') if usage is not None else None,
                   private=root.get('private') == 'yes',
                   ephemeral=root.get('ephemeral') == 'yes',
                   description=description, fingerprint=fingerprint)

    @classmethod
    def from_xml(cls, text):
        return cls.parse_dom(xml_tree.parse(text, 'secret'))

    def format_dom(self, mask=False):
        root = etree.Element('secret', ephemeral=_yes_no(self.ephemeral), private=_yes_no(self.private))
        xml_tree.set_child_text(root, 'uuid', self.uuid)
        fingerprint = self.fingerprint
        if mask and fingerprint:
            fingerprint = '********'
        xml_tree.set_child_text(root, 'description', join_description(self.description, fingerprint))
        usage = etree.SubElement(root, 'usage', type=self.usage_type)
        xml_tree.set_child_text(usage, 'name', self.usage_name)
        return root

    def to_xml(self, mask=False):
        return xml_tree.to_string(self.format_dom(mask=mask))

    def same_definition(self, other):
        """Equal in everything but the fingerprint (which is compared against a key)."""
        return ((self.uuid, self.usage_type, self.usage_name, self.private, self.ephemeral,
                 self.description or None)
                == (other.uuid, other.usage_type, other.usage_name, other.private, other.ephemeral,
                    other.description or None))


def split_description(text):
    """(operator description or None, fingerprint or None) from a <description>."""
    if not text:
        return None, None
    lines = text.splitlines()
    if lines and lines[-1].startswith(FINGERPRINT_PREFIX):
        operator = '\n'.join(lines[:-1]).strip() or None
        return operator, lines[-1][len(FINGERPRINT_PREFIX):].strip() or None
    return text, None


def join_description(description, fingerprint):
    parts = [description] if description else []
    if fingerprint:
        parts.append(FINGERPRINT_PREFIX + fingerprint)
    return '\n'.join(parts) or None
