# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A domain's canonical form: what libvirt wrote and what lxml serialises compare equal; only real changes
show in a diff."""

from __future__ import annotations

import os
import re

from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.domain import DomainDocument

DATA = os.path.join(os.path.dirname(__file__), '..', '_converge', 'data')


def libvirts_dump():
    with open(os.path.join(DATA, 'nova-instance.xml')) as handle:
        return handle.read()


def reversed_attributes(text):
    """The same document with every element's attributes in reverse order and double quotes."""
    def flip(match):
        attributes = re.findall(r"""([^\s=]+)=(['"])(.*?)\2""", match.group(2))
        flipped = ' '.join('%s="%s"' % (name, value) for name, _quote, value in reversed(attributes))
        return '<%s %s%s>' % (match.group(1), flipped, match.group(3))
    return re.sub(r"<([\w:]+) ([^<>]*?)(/?)>", flip, text)


def test_quote_style_attribute_order_and_indentation_are_not_changes():
    dump = DomainDocument(libvirts_dump())
    other = DomainDocument(reversed_attributes(libvirts_dump()).replace('\n  ', '\n    '))
    assert other.to_xml() != dump.to_xml()
    assert other.same_as(dump) and dump.diff(other) == ''
    assert other.canonical() == dump.canonical()


def test_the_diff_of_one_changed_disk_is_its_source_line():
    before = DomainDocument(libvirts_dump())
    after = before.copy()
    after.disk('vdb').point_at_file('/var/lib/nova/disks/u_disk.local')
    diff = before.diff(after)
    changed = [line for line in diff.splitlines() if line[:1] in '+-' and not line.startswith(('+++', '---'))]
    legacy = '/var/lib/nova/instances/6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b/disk.local'
    assert changed == ['-      <source file="%s"/>' % legacy, '+      <source file="/var/lib/nova/disks/u_disk.local"/>']
    assert diff.startswith('--- domain instance-0000002a (before)\n+++ domain instance-0000002a (after)\n')
    assert not before.same_as(after)


def test_the_document_defined_keeps_what_libvirt_wrote():
    """Only the edited disk changes in what is defined: the rest stays byte for byte (quotes aside)."""
    before = DomainDocument(libvirts_dump())
    after = before.copy()
    after.disk('vda').point_at_file('/var/lib/nova/disks/u_disk')
    assert after.to_xml().count('\n') == before.to_xml().count('\n')
    assert 'passwd="s3cret"' in after.to_xml()  # the secure dump is redefined as it was
