# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The name rules, and qemu rbd: filenames that no name can turn into another image or option."""

from __future__ import annotations

import pytest

from ansible_collections.storagepools.libvirt.plugins.module_utils._core import names
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import OptionError

CONTROL = ['\x00', '\x01', '\x07', '\t', '\n', '\r', '\x1b', '\x7f', '\x85', '\ud800', '\ufffe']


@pytest.mark.parametrize('char', CONTROL)
@pytest.mark.parametrize('check', [names.pool_name, names.volume_name, names.ceph_name, names.path, names.text])
def test_every_name_refuses_control_characters_naming_the_option(check, char):
    with pytest.raises(OptionError) as err:
        check('ab%scd' % char, 'source.volume')
    assert err.value.option == 'source.volume' and err.value.msg.startswith('source.volume: ')


def test_a_description_may_span_lines_but_holds_no_other_control_character():
    assert names.description('line one\n\tline two', 'description') == 'line one\n\tline two'
    with pytest.raises(OptionError):
        names.description('bell\x07', 'description')


@pytest.mark.parametrize('name', ['', 'a/b', '.hidden', '..', 'x' * 256, 'img:conf=/tmp/evil', 'img@snap',
                                  'other\\:x', 'a=b', 'disk\x00'])
def test_bad_volume_names(name):
    with pytest.raises(OptionError) as err:
        names.volume_name(name, 'name')
    assert err.value.option == 'name'


@pytest.mark.parametrize('name', ['6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b_disk.local', 'vm1-disk.qcow2', 'a+b_c',
                                  'x' * 255, 'ünïcode'])
def test_good_volume_names(name):
    assert names.volume_name(name) == name


@pytest.mark.parametrize('name', ['', 'a/b', ' lead', 'tab\tname'])
def test_bad_pool_names(name):
    with pytest.raises(OptionError):
        names.pool_name(name, 'disks_pool')


def test_check_options_walks_dotted_and_list_options_and_skips_unset_ones():
    rules = {'pool': names.pool_name, 'source.volume': names.volume_name, 'source.device': names.path}
    names.check_options({'pool': 'p', 'source': None}, rules)
    names.check_options({'pool': 'p', 'source': {'volume': None, 'device': ['/dev/a', '/dev/b']}}, rules)
    with pytest.raises(OptionError) as err:
        names.check_options({'pool': 'p', 'source': {'volume': 'v', 'device': ['/dev/a', '/dev/b\x00']}}, rules)
    assert err.value.option == 'source.device'
    with pytest.raises(OptionError) as err:
        names.check_options({'pool': 'p', 'source': {'volume': 'a:b'}}, rules)
    assert err.value.option == 'source.volume'


def qemu_rbd_tokens(filename):
    """qemu's own reading of an rbd: filename, step by step as block/rbd.c qemu_rbd_parse_filename does it
    (escape-aware search and split, then unescape): (pool, namespace, image, snapshot, [(key, value)])."""
    def find(text, char):  # qemu_rbd_strchr
        index = 0
        while index < len(text):
            if text[index] == char:
                return True
            index += 2 if text[index] == '\\' and index + 1 < len(text) else 1
        return False

    def next_token(text, delim):  # qemu_rbd_next_tok
        index = 0
        while index < len(text) and text[index] != delim:
            index += 2 if text[index] == '\\' and index + 1 < len(text) else 1
        return (text[:index], text[index + 1:]) if index < len(text) else (text, None)

    def unescape(text):  # qemu_rbd_unescape
        out, index = [], 0
        while index < len(text):
            if text[index] == '\\' and index + 1 < len(text):
                index += 1
            out.append(text[index])
            index += 1
        return ''.join(out)

    assert filename.startswith('rbd:')
    pool, rest = next_token(filename[4:], '/')
    snapshot = None
    if find(rest, '@'):
        image, rest = next_token(rest, '@')
        snapshot, rest = next_token(rest, ':')
        snapshot = unescape(snapshot)
    else:
        image, rest = next_token(rest, ':')
    namespace = ''
    if find(image, '/'):
        namespace, image = next_token(image, '/')
        namespace = unescape(namespace)
    options = []
    while rest is not None:
        key, rest = next_token(rest, '=')
        value, rest = next_token(rest, ':')
        options.append((unescape(key), unescape(value)))
    return unescape(pool), namespace, unescape(image), snapshot, options


@pytest.mark.parametrize('image', ['u_disk', 'u_disk:conf=/tmp/evil.conf', 'other_disk@snap', 'a\\:b', 'x=y/z'])
def test_an_rbd_filename_keeps_every_part_whole(image):
    options = [('id', 'nova'), ('keyring', '/etc/ceph/a:b.keyring'), ('mon_host', '[::1]:6789;192.0.2.1:6789')]
    filename = names.rbd_filename('vms', image, options)
    assert qemu_rbd_tokens(filename) == ('vms', '', image, None, options)


def test_an_rbd_filename_of_plain_names_is_what_qemu_documents():
    assert names.rbd_filename('vms', 'u_disk', [('id', 'nova')]) == 'rbd:vms/u_disk:id=nova'


def test_unescaped_the_same_name_would_have_written_elsewhere():
    """What the escaping prevents: qemu reads an unescaped name as another image plus options."""
    hostile = 'rbd:vms/%s:id=nova' % 'victim_disk@snap:conf=/tmp/evil.conf'
    expected = ('vms', '', 'victim_disk', 'snap', [('conf', '/tmp/evil.conf'), ('id', 'nova')])
    assert qemu_rbd_tokens(hostile) == expected
