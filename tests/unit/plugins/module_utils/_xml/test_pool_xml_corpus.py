# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A corpus of pool documents of every modelled type, written the way libvirt's formatstorage page and its
storagepoolxml2xml test data write them (data/pools/NAME.xml), with what libvirt 9.0 writes back for each
(NAME.out.xml, dumped from libvirt's in-process test driver, which parses and formats pools with the daemon's
own code)."""

from __future__ import annotations

import glob
import os

import pytest

from ansible_collections.storagepools.libvirt.plugins.module_utils._xml import base as xml_base
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.pool import PoolDefinition

DATA = os.path.join(os.path.dirname(__file__), 'data', 'pools')
CORPUS = sorted(os.path.basename(path)[:-4] for path in glob.glob(os.path.join(DATA, '*.xml'))
                if not path.endswith('.out.xml'))


def read(name):
    with open(os.path.join(DATA, name)) as handle:
        return handle.read()


def every_node(element):
    """(path, sorted attributes, stripped text) of every element: what 'lossless' must keep."""
    return [(node.tag, sorted(node.attrib.items()), (node.text or '').strip()) for node in element.iter()]


def test_the_corpus_has_every_modelled_type():
    types = set(PoolDefinition.from_xml(read(name + '.xml')).type for name in CORPUS)
    assert types == {'dir', 'fs', 'netfs', 'logical', 'rbd', 'iscsi', 'zfs', 'disk'}
    assert all(os.path.exists(os.path.join(DATA, name + '.out.xml')) for name in CORPUS)


@pytest.mark.parametrize('name', CORPUS)
@pytest.mark.parametrize('suffix', ['.xml', '.out.xml'])
def test_parse_format_parse_is_lossless(name, suffix):
    text = read(name + suffix)
    once = PoolDefinition.from_xml(text)
    again = PoolDefinition.from_xml(once.to_xml())
    assert every_node(again.node) == every_node(xml_base.parse(text))
    assert again.to_xml() == once.to_xml()


@pytest.mark.parametrize('name', CORPUS)
def test_what_libvirt_writes_back_is_canonically_what_was_written(name):
    written, written_back = PoolDefinition.from_xml(read(name + '.xml')), PoolDefinition.from_xml(
        read(name + '.out.xml'))
    assert written.diff(written_back) == ''


@pytest.mark.parametrize('name', CORPUS)
def test_every_corpus_document_validates(name):
    PoolDefinition.from_xml(read(name + '.xml')).validate(option_prefix='xml: ')


@pytest.mark.parametrize('name', CORPUS)
def test_libvirts_test_driver_writes_back_the_same(name):
    """Define each on libvirt's in-process test driver (a real driver, not a mock) and compare its dump."""
    libvirt = pytest.importorskip('libvirt')
    conn = libvirt.open('test:///default')
    try:
        pool = conn.storagePoolDefineXML(read(name + '.xml'), 0)
        assert PoolDefinition.from_xml(read(name + '.xml')).diff(PoolDefinition.from_xml(pool.XMLDesc(0))) == ''
    finally:
        conn.close()


def test_a_real_change_shows_in_the_diff_and_only_it():
    written_back = PoolDefinition.from_xml(read('netfs.out.xml'))
    changed = written_back.copy()
    changed.source.hosts[0].name = 'other.example.com'
    lines = [line for line in written_back.diff(changed).splitlines()
             if line[:1] in '+-' and not line.startswith(('+++', '---'))]
    assert lines == ['-    <host name="nfs.example.com"/>', '+    <host name="other.example.com"/>']


def test_unknown_elements_and_attributes_are_kept():
    text = read('netfs.xml').replace('<protocol ver="3"/>', '<protocol ver="3"/><future knob="1">x</future>')
    definition = PoolDefinition.from_xml(text)
    definition.target_path = '/srv/elsewhere'
    assert '<future knob="1">x</future>' in definition.to_xml()
    assert '<protocol ver="3"/>' in definition.to_xml()
