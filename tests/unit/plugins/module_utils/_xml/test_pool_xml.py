# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The pool document model: parse <-> format symmetry, validation, canonical form."""

from __future__ import annotations

import pytest

from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import OptionError
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml import base as xml_base, pool as pool_xml
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.pool import (
    PoolAuth,
    PoolDefinition,
    PoolHost,
    PoolPermissions,
    PoolSource,
    PoolSpecError,
)

# What libvirt 9.0 answers to pool-dumpxml --inactive for a built dir pool.
LIVE_DIR_POOL = """
<pool type='dir'>
  <name>disks</name>
  <uuid>5cf989ef-8475-4102-af1f-de0d65b7406b</uuid>
  <capacity unit='bytes'>270553174016</capacity>
  <allocation unit='bytes'>23359963136</allocation>
  <available unit='bytes'>247193210880</available>
  <source>
  </source>
  <target>
    <path>/var/lib/nova/disks</path>
    <permissions>
      <mode>0711</mode>
      <owner>0</owner>
      <group>0</group>
    </permissions>
  </target>
</pool>
"""

RBD_POOL = PoolDefinition(
    'vms', 'rbd',
    source=PoolSource(name='vms', hosts=[PoolHost('192.0.2.10', 6789), PoolHost('192.0.2.11')],
                      auth=PoolAuth('ceph', 'nova', secret_uuid='2ec115d7-3a88-3ceb-bc12-0ac909a6fd87')),
    config_opts={'rbd_default_features': '3', 'client_mount_timeout': '10'})

EXAMPLES = [
    PoolDefinition('d', 'dir', target_path='/srv/d',
                   permissions=PoolPermissions('0755', 0, 107, 'system_u:object_r:virt_image_t:s0')),
    PoolDefinition('f', 'fs', target_path='/srv/f', source=PoolSource(devices=['/dev/vdb'], format='xfs')),
    PoolDefinition('n', 'netfs', target_path='/srv/n',
                   source=PoolSource(hosts=[PoolHost('nfs.example', 2049)], dir='/export', format='nfs')),
    PoolDefinition('l', 'logical', source=PoolSource(devices=['/dev/vdb', '/dev/vdc'], name='vg0')),
    PoolDefinition('i', 'iscsi', target_path='/dev/disk/by-path',
                   source=PoolSource(hosts=[PoolHost('portal.example')], devices=['iqn.2013-06.com.example:t'],
                                     auth=PoolAuth('chap', 'u', secret_usage='libvirtiscsi'))),
    PoolDefinition('z', 'zfs', source=PoolSource(name='tank')),
    PoolDefinition('k', 'disk', target_path='/dev', source=PoolSource(devices=['/dev/vdd'], format='gpt')),
    RBD_POOL,
]


def as_dict(definition):
    return {
        'name': definition.name, 'type': definition.type, 'uuid': definition.uuid,
        'target': definition.target_path, 'source': definition.source.to_dict(),
        'permissions': definition.permissions.to_dict() if definition.permissions else None,
        'config_opts': definition.config_opts,
    }


@pytest.mark.parametrize('definition', EXAMPLES, ids=lambda d: d.type)
def test_format_then_parse_gives_the_same_definition(definition):
    parsed = PoolDefinition.from_xml(definition.to_xml())
    assert as_dict(parsed) == as_dict(definition)


@pytest.mark.parametrize('definition', EXAMPLES, ids=lambda d: d.type)
def test_every_example_validates(definition):
    definition.validate()


def test_parse_then_format_keeps_a_live_document_canonically_equal():
    live = xml_base.parse(LIVE_DIR_POOL)
    reformatted = PoolDefinition.parse_dom(live).format_dom()
    assert pool_xml.canonical_string(reformatted) == pool_xml.canonical_string(live)


def test_rbd_config_opts_use_libvirts_namespace():
    root = RBD_POOL.format_dom()
    options = root.findall('{%s}config_opts/{%s}option' % (pool_xml.RBD_NAMESPACE, pool_xml.RBD_NAMESPACE))
    assert [(opt.get('name'), opt.get('value')) for opt in options] == [
        ('rbd_default_features', '3'), ('client_mount_timeout', '10')]
    assert 'xmlns:rbd="http://libvirt.org/schemas/storagepool/rbd/1.0"' in RBD_POOL.to_xml()


def test_canonical_drops_what_libvirt_fills_in():
    canonical = pool_xml.canonical_string(xml_base.parse(LIVE_DIR_POOL))
    for noise in ('uuid', 'capacity', 'allocation', 'available', '<source'):
        assert noise not in canonical
    assert '<path>/var/lib/nova/disks</path>' in canonical
    assert '<mode>0711</mode>' in canonical


@pytest.mark.parametrize('wanted, live', [
    # libvirt's default source format for fs and logical pools
    ("<pool type='fs'><name>p</name><source><device path='/dev/vdb'/></source><target><path>/m</path></target></pool>",
     "<pool type='fs'><name>p</name><source><device path='/dev/vdb'/><format type='auto'/></source>"
     "<target><path>/m</path></target></pool>"),
    # a logical pool's VG name and target are derived from its name
    ("<pool type='logical'><name>vg</name><source><device path='/dev/vdb'/></source></pool>",
     "<pool type='logical'><name>vg</name><source><device path='/dev/vdb'/><name>vg</name>"
     "<format type='lvm2'/></source><target><path>/dev/vg</path></target></pool>"),
    # paths and modes as libvirt normalises them; element order
    ("<pool type='dir'><target><permissions><mode>755</mode></permissions><path>/a//b/</path></target>"
     "<name>p</name></pool>",
     "<pool type='dir'><name>p</name><target><path>/a/b</path><permissions><mode>0755</mode></permissions>"
     "</target></pool>"),
    # rbd options in another order
    ("<pool type='rbd' xmlns:rbd='http://libvirt.org/schemas/storagepool/rbd/1.0'><name>p</name>"
     "<rbd:config_opts><rbd:option name='b' value='2'/><rbd:option name='a' value='1'/></rbd:config_opts></pool>",
     "<pool type='rbd' xmlns:rbd='http://libvirt.org/schemas/storagepool/rbd/1.0'><name>p</name>"
     "<rbd:config_opts><rbd:option name='a' value='1'/><rbd:option name='b' value='2'/></rbd:config_opts></pool>"),
])
def test_canonical_forms_equal_when_nothing_that_matters_differs(wanted, live):
    assert pool_xml.canonical_string(xml_base.parse(wanted)) == pool_xml.canonical_string(xml_base.parse(live))


@pytest.mark.parametrize('change', [
    ('<path>/var/lib/nova/disks</path>', '<path>/var/lib/nova/other</path>'),
    ('<mode>0711</mode>', '<mode>0700</mode>'),
    ('<owner>0</owner>', '<owner>107</owner>'),
])
def test_canonical_forms_differ_on_a_real_change(change):
    changed = LIVE_DIR_POOL.replace(*change)
    assert changed != LIVE_DIR_POOL
    assert pool_xml.canonical_string(xml_base.parse(changed)) != pool_xml.canonical_string(
        xml_base.parse(LIVE_DIR_POOL))


def test_host_order_is_meaningful():
    one = "<pool type='rbd'><name>p</name><source><host name='a'/><host name='b'/></source></pool>"
    other = "<pool type='rbd'><name>p</name><source><host name='b'/><host name='a'/></source></pool>"
    assert pool_xml.canonical_string(xml_base.parse(one)) != pool_xml.canonical_string(xml_base.parse(other))


def test_the_diff_shows_only_the_real_change():
    live = xml_base.parse(LIVE_DIR_POOL)
    wanted = xml_base.parse(LIVE_DIR_POOL.replace('<mode>0711</mode>', '<mode>0750</mode>')
                            .replace('<uuid>5cf989ef-8475-4102-af1f-de0d65b7406b</uuid>', ''))
    diff = xml_base.unified_diff(pool_xml.canonical_string(live), pool_xml.canonical_string(wanted))
    changed_lines = [line for line in diff.splitlines()
                     if line[:1] in '+-' and not line.startswith(('+++', '---'))]
    assert changed_lines == ['-      <mode>0711</mode>', '+      <mode>0750</mode>']


def test_inherit_unset_takes_libvirts_permissions_where_the_task_is_silent():
    live = xml_base.parse(LIVE_DIR_POOL)
    wanted = PoolDefinition('disks', 'dir', target_path='/var/lib/nova/disks',
                            permissions=PoolPermissions(mode='0750')).format_dom()
    effective = pool_xml.inherit_unset(wanted, live)
    perms = effective.permissions
    assert perms.to_dict() == {'mode': '0750', 'owner': 0, 'group': 0, 'label': None}
    assert wanted.find('target/permissions/owner') is None  # the input is not modified


def test_runtime_view_ignores_permissions_only():
    live = xml_base.parse(LIVE_DIR_POOL)
    other_mode = xml_base.parse(LIVE_DIR_POOL.replace('0711', '0700'))
    other_path = xml_base.parse(LIVE_DIR_POOL.replace('/var/lib/nova/disks', '/srv/disks'))
    view = pool_xml.runtime_view(live)
    assert view == pool_xml.runtime_view(other_mode)
    assert view != pool_xml.runtime_view(other_path)


@pytest.mark.parametrize('definition, option', [
    (PoolDefinition('p', 'dir', target_path='relative/path'), 'target'),
    (PoolDefinition('p', 'dir'), 'target'),
    (PoolDefinition('p', 'bogus', target_path='/x'), 'type'),
    (PoolDefinition('p', 'fs', target_path='/x'), 'source.device'),
    (PoolDefinition('p', 'netfs', target_path='/x', source=PoolSource(hosts=[PoolHost('h')])), 'source.dir'),
    (PoolDefinition('p', 'rbd', source=PoolSource(name='vms')), 'source.host'),
    (PoolDefinition('p', 'rbd', source=PoolSource(name='vms', hosts=[PoolHost('h', 70000)])), 'source.host'),
    (PoolDefinition('p', 'rbd', source=PoolSource(name='vms', hosts=[PoolHost('h')],
                                                  auth=PoolAuth('ceph', 'nova'))), 'source.auth'),
    (PoolDefinition('p', 'dir', target_path='/x', config_opts={'a': 'b'}), 'source.config_opts'),
    (PoolDefinition('p', 'fs', target_path='/x', source=PoolSource(devices=['vdb'])), 'source.device'),
])
def test_validation_names_the_option(definition, option):
    with pytest.raises(PoolSpecError) as err:
        definition.validate()
    assert err.value.option == option
    assert str(err.value).startswith(option + ': ')


def test_validation_of_a_document_names_xml():
    definition = PoolDefinition.from_xml("<pool type='dir'><name>p</name><target><path>rel</path></target></pool>")
    with pytest.raises(PoolSpecError) as err:
        definition.validate(option_prefix='xml: ')
    assert str(err.value).startswith('xml: target: ')


@pytest.mark.parametrize('name', ['', 'a/b', ' lead', '/x', 'nul\x00', 'bell\x07', 'line\nbreak', 'del\x7f'])
def test_bad_pool_names_are_refused(name):
    with pytest.raises(OptionError) as err:
        PoolDefinition(name, 'dir', target_path='/x').validate()
    assert err.value.option == 'name'


@pytest.mark.parametrize('definition, option', [
    (PoolDefinition('p', 'dir', target_path='/x\x01y'), 'target'),
    (PoolDefinition('p', 'fs', target_path='/x', source=PoolSource(devices=['/dev/vdb\x00'])), 'source.device'),
    (PoolDefinition('p', 'rbd', source=PoolSource(name='vms', hosts=[PoolHost('mon\x1b[2J')])), 'source.host'),
    (PoolDefinition('p', 'rbd', source=PoolSource(name='vms\x00', hosts=[PoolHost('h')])), 'source.name'),
    (PoolDefinition('p', 'rbd', source=PoolSource(name='vms', hosts=[PoolHost('h')],
                                                  auth=PoolAuth('ceph', 'nova', secret_usage='u\x08'))),
     'source.auth.secret_usage'),
    (PoolDefinition('p', 'rbd', source=PoolSource(name='vms', hosts=[PoolHost('h')]),
                    config_opts={'rbd_cache': 'tr\x00ue'}), 'source.config_opts'),
    (PoolDefinition('p', 'dir', target_path='/x', permissions=PoolPermissions(label='s0\x01')), 'permissions.label'),
])
def test_control_characters_are_refused_before_lxml_sees_them(definition, option):
    with pytest.raises(OptionError) as err:
        definition.validate(option_prefix='xml: ')
    assert err.value.option == 'xml: ' + option
    assert 'control character' in err.value.msg


@pytest.mark.parametrize('ceph_name', ['vms:conf=/tmp/x', 'vms/other', 'vms@snap', 'v\\ms', 'a=b', ' vms'])
@pytest.mark.parametrize('where', ['source.name', 'source.auth.username'])
def test_rbd_names_with_qemu_separators_are_refused(ceph_name, where):
    source = PoolSource(name=ceph_name if where == 'source.name' else 'vms', hosts=[PoolHost('h')],
                        auth=PoolAuth('ceph', ceph_name if where != 'source.name' else 'nova', secret_usage='u'))
    with pytest.raises(OptionError) as err:
        PoolDefinition('p', 'rbd', source=source).validate()
    assert err.value.option == where


@pytest.mark.parametrize('key', ['key', ' Key ', 'KEY'])
def test_config_opts_refuse_the_key(key):
    definition = PoolDefinition('p', 'rbd', source=PoolSource(name='vms', hosts=[PoolHost('h')]),
                                config_opts={'rbd_cache': 'true', key: 'AQBsecret=='})
    with pytest.raises(PoolSpecError) as err:
        definition.validate()
    assert err.value.option == 'source.config_opts' and 'read-only' in err.value.msg
    assert 'AQBsecret' not in err.value.msg


@pytest.mark.parametrize('document, option, what', [
    ("<pool type='rbd'><name>p</name><source><host name='m' port='67x9'/><name>vms</name></source></pool>",
     'source.host', "the port of host m '67x9' is not a number"),
    ("<pool type='rbd'><name>p</name><source><host name='m' port='%s'/><name>vms</name></source></pool>"
     % ('9' * 5000), 'source.host', 'is not a number'),
    ("<pool type='dir'><name>p</name><target><path>/x</path><permissions><owner>root</owner>"
     "</permissions></target></pool>", 'permissions.owner', "owner 'root' is not a number"),
    ("<pool type='dir'><name>p</name><target><path>/x</path><permissions><group>1.5</group>"
     "</permissions></target></pool>", 'permissions.group', "group '1.5' is not a number"),
])
def test_non_numeric_ports_and_owners_in_a_document_name_what_is_wrong(document, option, what):
    with pytest.raises(PoolSpecError) as err:
        PoolDefinition.from_xml(document)
    assert err.value.option == option and what in err.value.msg


def test_numbers_libvirt_writes_still_parse():
    definition = PoolDefinition.from_xml(
        "<pool type='dir'><name>p</name><target><path>/x</path><permissions><owner>-1</owner><group> 107 </group>"
        "</permissions></target></pool>")
    assert (definition.permissions.owner, definition.permissions.group) == (-1, 107)


@pytest.mark.parametrize('mode, expected', [('755', '0755'), ('0700', '0700'), (0o750, '0750'), ('2775', '2775')])
def test_normalize_mode(mode, expected):
    assert pool_xml.normalize_mode(mode) == expected


@pytest.mark.parametrize('mode', ['rwx', '0999', '75', '17777', ''])
def test_normalize_mode_refuses_non_octal(mode):
    with pytest.raises(ValueError):
        pool_xml.normalize_mode(mode)


def test_from_options_reports_a_bad_mode_under_its_option():
    with pytest.raises(PoolSpecError) as err:
        PoolDefinition.from_options('p', 'dir', '/x', None, {'mode': 'rw-', 'owner': None, 'group': None,
                                                             'label': None})
    assert err.value.option == 'permissions.mode'


def test_from_options_builds_the_rbd_document():
    definition = PoolDefinition.from_options('vms', 'rbd', source={
        'name': 'vms', 'host': [{'name': '192.0.2.10', 'port': 6789}], 'device': None, 'dir': None,
        'format': None, 'config_opts': {'rbd_default_features': 3},
        'auth': {'type': 'ceph', 'username': 'nova', 'secret_uuid': 'u', 'secret_usage': None}})
    parsed = PoolDefinition.from_xml(definition.to_xml())
    assert parsed.source.hosts[0].to_dict() == {'name': '192.0.2.10', 'port': 6789}
    assert parsed.source.auth.to_dict() == {'type': 'ceph', 'username': 'nova', 'secret_uuid': 'u',
                                            'secret_usage': None}
    assert parsed.config_opts == {'rbd_default_features': '3'}
