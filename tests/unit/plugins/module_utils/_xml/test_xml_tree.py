# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Safe parsing, canonical helpers and diffs."""

from __future__ import annotations

import pytest

from ansible_collections.storagepools.libvirt.plugins.module_utils._xml import tree as xml_tree


def test_parse_refuses_malformed_xml_with_lxmls_reason():
    with pytest.raises(xml_tree.XMLError) as err:
        xml_tree.parse('<pool><name>x</pool>')
    assert 'not well-formed' in str(err.value)


def test_parse_checks_the_root_element():
    with pytest.raises(xml_tree.XMLError) as err:
        xml_tree.parse('<domain/>', 'pool')
    assert 'expected <pool>' in str(err.value)


def test_parse_does_not_read_external_entities(tmp_path):
    secret = tmp_path / 'secret'
    secret.write_text('TOP-SECRET')
    doc = ('<!DOCTYPE pool [<!ENTITY x SYSTEM "file://%s">]><pool><name>&x;</name></pool>' % secret)
    root = xml_tree.parse(doc)
    assert 'TOP-SECRET' not in xml_tree.to_string(root)


def test_to_string_indents_like_libvirt():
    root = xml_tree.parse("<pool type='dir'><name>p</name><target><path>/x</path></target></pool>")
    assert xml_tree.to_string(root) == (
        '<pool type="dir">\n  <name>p</name>\n  <target>\n    <path>/x</path>\n  </target>\n</pool>\n')


def test_sort_children_is_stable_for_equal_tags():
    root = xml_tree.parse('<s><h n="2"/><d/><h n="1"/></s>')
    xml_tree.sort_children(root)
    assert [(child.tag, child.get('n')) for child in root] == [('d', None), ('h', '2'), ('h', '1')]


def test_drop_empty_removes_nested_empties_only():
    root = xml_tree.parse('<p><source><x/></source><target><path>/a</path></target><f type="a"/></p>')
    xml_tree.drop_empty(root)
    assert xml_tree.to_string(root).split() == ['<p>', '<target>', '<path>/a</path>', '</target>',
                                                '<f', 'type="a"/>', '</p>']


def test_unified_diff_is_empty_for_equal_text():
    assert xml_tree.unified_diff('a\n', 'a\n') == ''
    assert '+b' in xml_tree.unified_diff('a\n', 'b\n')
