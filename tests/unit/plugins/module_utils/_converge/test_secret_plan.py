# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""SecretPlanner: the plan of one rbd_pool_secret task from what libvirt said (its secret documents as
libvirt writes them back), never from a connection. Planning writes nothing: SecretWrites has no connection
here, and a plan is only described (check mode), so any write would fail the test."""

from __future__ import annotations

import pytest

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import cephx
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.secret import SecretPlanner, SecretWrites
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.secret import (
    FINGERPRINT_PREFIX,
    SecretDefinition,
    default_uuid,
)

USAGE = 'client.nova secret'
UUID = default_uuid(USAGE)
KEY = b'0123456789abcdef'
OTHER_KEY = b'fedcba9876543210'


def libvirt_dump(private='yes', description=None, usage=USAGE, secret_uuid=UUID, usage_type='ceph'):
    """A secret as libvirt 9 writes it back (virsh secret-dumpxml)."""
    text = "<secret ephemeral='no' private='%s'>\n  <uuid>%s</uuid>\n" % (private, secret_uuid)
    if description:
        text += '  <description>%s</description>\n' % description
    return SecretDefinition.from_xml(text + "  <usage type='%s'>\n    <name>%s</name>\n  </usage>\n</secret>\n"
                                     % (usage_type, usage))


def recorded(key, note=None):
    return '\n'.join(([note] if note else []) + [FINGERPRINT_PREFIX + cephx.fingerprint(key, rounds=1000)])


def wanted(private=True, description=None):
    return SecretDefinition(UUID, 'ceph', USAGE, private=private, description=description)


def planner(live=None, by_usage=None, value=None):
    return SecretPlanner(UUID, USAGE, live, SecretWrites(None), by_usage=lambda: by_usage,
                         value=lambda: value)


def actions(plan):
    return [step['action'] for step in plan.describe()]


def test_a_new_secret_is_defined_then_given_its_key():
    secret = planner()
    plan = secret.plan_present(wanted(description='nova on compute'), KEY)
    assert actions(plan) == ['define', 'set_value']
    assert cephx.fingerprint_matches(KEY, secret.wanted.fingerprint)
    assert secret.result_secret() == {'uuid': UUID, 'usage': USAGE, 'private': True}
    diff = secret.diff()
    assert diff['before'] == '' and diff['after'].startswith('# value: a key\n')
    assert secret.wanted.fingerprint not in diff['after'] and '********' in diff['after']
    plan.apply(check_mode=True)  # check mode writes nothing (SecretWrites has no connection)


def test_a_secret_holding_the_recorded_key_is_left_alone():
    secret = planner(live=libvirt_dump(description=recorded(KEY, 'nova on compute')))
    assert actions(secret.plan_present(wanted(description='nova on compute'), KEY)) == []
    diff = secret.diff()
    assert diff['before'].split('\n', 1) == ['# value: a key', diff['after'].split('\n', 1)[1]]
    assert diff['after'].startswith('# value: the same key\n')


def test_another_key_is_set_and_recorded():
    secret = planner(live=libvirt_dump(description=recorded(OTHER_KEY)))
    plan = secret.plan_present(wanted(), KEY)
    assert actions(plan) == ['redefine', 'set_value']
    assert plan.steps[0].detail == 'redefine secret %s (record the key fingerprint)' % UUID
    assert cephx.fingerprint_matches(KEY, secret.wanted.fingerprint)
    assert '# value: another key' in secret.diff()['after']


def test_a_new_description_alone_redefines_and_keeps_the_recorded_fingerprint():
    live = libvirt_dump(description=recorded(KEY, 'old note'))
    secret = planner(live=live)
    plan = secret.plan_present(wanted(description='new note'), KEY)
    assert actions(plan) == ['redefine']
    assert plan.steps[0].detail == 'redefine secret %s (description)' % UUID
    assert secret.wanted.fingerprint == live.fingerprint


def test_a_secret_made_by_hand_gets_the_fingerprint_recorded_but_keeps_a_value_that_is_the_key():
    secret = planner(live=libvirt_dump(private='no'), value=KEY)
    assert actions(secret.plan_present(wanted(private=False), KEY)) == ['redefine']
    secret = planner(live=libvirt_dump(private='no'), value=None)  # no value yet
    assert actions(secret.plan_present(wanted(private=False), KEY)) == ['redefine', 'set_value']


def test_a_private_secret_without_a_fingerprint_gets_the_key_again():
    secret = planner(live=libvirt_dump(description='made by hand'))
    assert actions(secret.plan_present(wanted(description='made by hand'), KEY)) == ['redefine', 'set_value']


@pytest.mark.parametrize('live, message', [
    (libvirt_dump(usage='client.cinder secret'), "uuid: secret %s exists with usage ceph 'client.cinder secret'"),
    (libvirt_dump(usage_type='volume', usage='/dev/x'), 'uuid: secret %s exists with usage volume'),
    (libvirt_dump(private='no'), 'private: secret %s exists with private=no'),
])
def test_what_libvirt_cannot_change_is_refused_before_anything_is_written(live, message):
    with pytest.raises(StoragePoolsError) as raised:
        planner(live=live).plan_present(wanted(), KEY)
    assert raised.value.msg.startswith(message % UUID)


def test_a_malformed_recorded_fingerprint_is_refused():
    with pytest.raises(StoragePoolsError, match='^description: '):
        planner(live=libvirt_dump(description=FINGERPRINT_PREFIX + 'garbage')).plan_present(wanted(), KEY)


def test_the_usage_held_by_another_uuid_is_refused():
    other = libvirt_dump(secret_uuid='2ec115d7-3a88-3ceb-bc12-0ac909a6fd87')
    with pytest.raises(StoragePoolsError) as raised:
        planner(by_usage=other).plan_present(wanted(), KEY)
    assert raised.value.msg.startswith("usage: secret 2ec115d7-3a88-3ceb-bc12-0ac909a6fd87 already has usage "
                                       "'client.nova secret'; give uuid: 2ec115d7-3a88-3ceb-bc12-0ac909a6fd87")


def test_absent_undefines_the_secret_by_uuid_or_else_by_usage():
    secret = planner(live=libvirt_dump())
    assert [step.detail for step in secret.plan_absent().steps] == ['undefine secret %s' % UUID]
    assert secret.plan.steps[0].undo is None
    assert secret.result_secret() is None

    by_usage = planner(by_usage=libvirt_dump(secret_uuid='2ec115d7-3a88-3ceb-bc12-0ac909a6fd87'))
    steps = by_usage.plan_absent().steps
    assert [step.detail for step in steps] == ['undefine secret 2ec115d7-3a88-3ceb-bc12-0ac909a6fd87']
    assert steps[0].do.args == ('2ec115d7-3a88-3ceb-bc12-0ac909a6fd87',)
    assert by_usage.diff()['before'].startswith('# value: a key\n<secret')


def test_absent_without_a_secret_plans_nothing():
    assert not planner().plan_absent()
