# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The secret document and the fingerprint line in its description."""

from __future__ import annotations

import uuid

from ansible_collections.storagepools.libvirt.plugins.module_utils._xml import secret as secret_xml
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.secret import SecretDefinition

FINGERPRINT = 'pbkdf2-sha256$100000$c2FsdA==$aGFzaA=='
FIELDS = ('uuid', 'usage_type', 'usage_name', 'private', 'ephemeral', 'description', 'fingerprint')
# As libvirt 9 writes a secret back (virsh secret-dumpxml): single quotes, its own element order.
LIBVIRT_DUMP = '''<secret ephemeral='no' private='yes'>
  <uuid>2ec115d7-3a88-3ceb-bc12-0ac909a6fd87</uuid>
  <description>ops note
storagepools.libvirt key fingerprint: %s</description>
  <usage type='ceph'>
    <name>client.nova secret</name>
  </usage>
</secret>
''' % FINGERPRINT


def fields(definition):
    return dict((field, getattr(definition, field)) for field in FIELDS)


def test_format_then_parse_is_symmetric():
    definition = SecretDefinition('2ec115d7-3a88-3ceb-bc12-0ac909a6fd87', 'ceph', 'client.nova secret',
                                  description='nova\non compute', fingerprint=FINGERPRINT)
    parsed = SecretDefinition.from_xml(definition.to_xml())
    assert fields(parsed) == fields(definition) == {
        'uuid': '2ec115d7-3a88-3ceb-bc12-0ac909a6fd87', 'usage_type': 'ceph', 'usage_name': 'client.nova secret',
        'private': True, 'ephemeral': False, 'description': 'nova\non compute', 'fingerprint': FINGERPRINT}
    assert parsed.same_definition(definition)
    assert parsed.to_xml() == definition.to_xml()


def test_libvirts_dump_is_read_and_kept_whole():
    parsed = SecretDefinition.from_xml(LIBVIRT_DUMP.replace('</usage>', '</usage>\n  <future knob="1"/>'))
    assert fields(parsed) == {
        'uuid': '2ec115d7-3a88-3ceb-bc12-0ac909a6fd87', 'usage_type': 'ceph', 'usage_name': 'client.nova secret',
        'private': True, 'ephemeral': False, 'description': 'ops note', 'fingerprint': FINGERPRINT}
    assert '<future knob="1"/>' in parsed.to_xml()
    parsed.description = 'new note'
    assert (parsed.description, parsed.fingerprint) == ('new note', FINGERPRINT)
    parsed.fingerprint = None
    assert '<description>new note</description>' in parsed.to_xml()


def test_a_new_definition_is_written_in_libvirts_order():
    written = SecretDefinition('u', 'ceph', 'client.nova secret', private=False, description='d').to_xml()
    assert written == ('<secret ephemeral="no" private="no">\n  <uuid>u</uuid>\n  <description>d</description>\n'
                       '  <usage type="ceph">\n    <name>client.nova secret</name>\n  </usage>\n</secret>\n')


def test_the_fingerprint_is_masked_on_request():
    definition = SecretDefinition('u', 'ceph', 'client.nova secret', fingerprint=FINGERPRINT)
    assert FINGERPRINT in definition.to_xml()
    masked = definition.to_xml(mask=True)
    assert FINGERPRINT not in masked and secret_xml.MASKED_FINGERPRINT in masked
    assert definition.fingerprint == FINGERPRINT, 'masking changed the definition'


def test_a_hand_written_description_has_no_fingerprint():
    assert secret_xml.split_description('made by hand') == ('made by hand', None)
    assert secret_xml.split_description(None) == (None, None)
    text = secret_xml.join_description('ops note', FINGERPRINT)
    assert secret_xml.split_description(text) == ('ops note', FINGERPRINT)
    assert secret_xml.split_description(secret_xml.join_description(None, FINGERPRINT)) == (None, FINGERPRINT)


def test_the_default_uuid_is_the_same_everywhere_for_a_usage():
    first = secret_xml.default_uuid('client.nova secret')
    assert first == secret_xml.default_uuid('client.nova secret')
    assert first != secret_xml.default_uuid('client.cinder secret')
    assert uuid.UUID(first).version == 5
    assert first == str(uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_DNS, 'storagepools.libvirt'), 'client.nova secret'))


def test_same_definition_ignores_the_fingerprint_only():
    one = SecretDefinition('u', 'ceph', 'n', description='d', fingerprint=FINGERPRINT)
    assert one.same_definition(SecretDefinition('u', 'ceph', 'n', description='d'))
    assert not one.same_definition(SecretDefinition('u', 'ceph', 'n', description='other'))
    assert not one.same_definition(SecretDefinition('u', 'ceph', 'n', private=False, description='d'))
