#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: rbd_pool_secret
short_description: The libvirt secret that holds a cephx key, for rbd pools and Nova
version_added: 0.1.0
description:
  - Defines a libvirt secret of usage type C(ceph) and sets its value to a cephx key, for the
    C(<auth>) of rbd pools and disks (Nova's C(rbd_secret_uuid)).
  - The key is given to libvirt through its API only; it never appears on a command line, in a
    temporary file, in the module's output, diff or log.
  - A private secret's value cannot be read back. To tell whether the secret already holds the task's
    key, the module records a salted PBKDF2 fingerprint of the key in the secret's description and
    compares against it; see the collection's C(docs/secrets.md) for the threat model.
    A different key is detected and set (key rotation); the same key reports no change.
author:
  - storagepools.libvirt team (@storagepools)
extends_documentation_fragment:
  - storagepools.libvirt.connection
  - storagepools.libvirt.connection.secret_actions
options:
  user:
    description:
      - The cephx id, for example V(nova) (without C(client.)).
      - Required with O(state=present), and to derive O(usage) when that is not given.
    type: str
  key:
    description:
      - The cephx key (the base64 C(key = ...) of a keyring).
      - Exactly one of O(key) and O(keyring) with O(state=present).
    type: str
  keyring:
    description:
      - Path of a Ceph keyring on the managed host holding the key of C([client.<user>]).
      - The key then never leaves the managed host.
    type: path
  usage:
    description: The secret's usage name. Defaults to C(client.<user> secret).
    type: str
  uuid:
    description:
      - The secret's uuid. Defaults to a uuid5 of O(usage) in this collection's namespace, so every
        host gets the same uuid for the same usage (what Nova's C(rbd_secret_uuid) needs).
    type: str
  private:
    description:
      - Whether libvirt refuses to give the value back through its API. libvirt cannot change this flag
        on an existing secret; the module then fails and says so.
    type: bool
    default: true
  description:
    description: A description of the secret (the key fingerprint is kept below it).
    type: str
  state:
    description: V(present) defines the secret and sets its value; V(absent) undefines it.
    type: str
    choices: [present, absent]
    default: present
seealso:
  - module: storagepools.libvirt.virt_pool_ensure
  - name: libvirt secret XML format
    description: The secret document this module writes.
    link: https://libvirt.org/formatsecret.html
'''

EXAMPLES = r'''
- name: The secret Nova and the rbd pool use, key from the managed host's keyring
  storagepools.libvirt.rbd_pool_secret:
    user: nova
    keyring: /etc/ceph/ceph.client.nova.keyring
  register: nova_secret

- name: An rbd pool that authenticates with it
  storagepools.libvirt.virt_pool_ensure:
    name: nova-disks-pool
    type: rbd
    source:
      name: vms
      host:
        - {name: 192.0.2.10, port: 6789}
      auth:
        username: nova
        secret_uuid: "{{ nova_secret.secret.uuid }}"

- name: Rotate the key (from a vault variable)
  storagepools.libvirt.rbd_pool_secret:
    user: nova
    key: "{{ vault_ceph_nova_key }}"

- name: Remove the secret
  storagepools.libvirt.rbd_pool_secret:
    user: nova
    state: absent
'''

RETURN = r'''
secret:
  description: The secret after the run (in check mode, as the run would leave it). None when absent.
  returned: success
  type: dict
  contains:
    uuid:
      description: The secret's uuid (Nova's C(rbd_secret_uuid)).
      type: str
      sample: 0b3b6a2b-5a34-5b8e-9d3e-4f8e6f0e2b11
    usage:
      description: The secret's usage name.
      type: str
      sample: client.nova secret
    private:
      description: Whether the value can be read back through libvirt.
      type: bool
      sample: true
actions:
  description: The ordered plan the run carried out, or would carry out in check mode.
  returned: always
  type: list
  elements: dict
  contains:
    action:
      description: V(define), V(redefine), V(set_value) or V(undefine).
      type: str
    detail:
      description: What the step does, in words (never the key).
      type: str
  sample: [{action: define, detail: "define secret 0b3b6a2b-... (client.nova secret)"}, {action: set_value, detail: "set the key of secret 0b3b6a2b-..."}]
libvirt_error:
  description: libvirt's own message when libvirt refused a step.
  returned: failure
  type: str
'''

import uuid as uuidlib

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import cephx
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.secret import SecretConverger
from ansible_collections.storagepools.libvirt.plugins.module_utils._core import names
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.module import run_module
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.connection import (
    missing_libraries,
    open_connection,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.secret import SecretDefinition, default_uuid


def identity(params):
    """(uuid, usage) of the secret the task is about."""
    names.check_options(params, {'user': names.ceph_name, 'usage': names.text, 'keyring': names.path,
                                 'description': names.description})
    user = params['user']
    if user is not None and (user.startswith('client.') or ' ' in user):
        raise StoragePoolsError("user: give the cephx id without 'client.' (nova, not client.nova)")
    usage = params['usage'] or ('client.%s secret' % user if user else None)
    uuid = params['uuid']
    if uuid:
        try:
            uuid = str(uuidlib.UUID(uuid))
        except ValueError:
            raise StoragePoolsError('uuid: %r is not a uuid' % uuid)
    return uuid or default_uuid(usage), usage


def task_key(params, module):
    """The raw key bytes from ``key`` or ``keyring``."""
    if params['keyring']:
        key, warnings = cephx.read_keyring(params['keyring'], params['user'])
        module.no_log_values.add(key)  # masked wherever it would show, as the key option is
        for warning in warnings:
            module.warn(warning)
        return cephx.decode_key(key, option='keyring')
    return cephx.decode_key(params['key'], option='key')


def run(module):
    params = module.params
    uuid, usage = identity(params)
    raw_key = task_key(params, module) if params['state'] == 'present' else None
    conn = open_connection(params['uri'])
    try:
        converger = SecretConverger(conn, uuid, usage)
        if params['state'] == 'present':
            wanted = SecretDefinition(uuid, 'ceph', usage, private=params['private'],
                                      description=params['description'])
            plan = converger.plan_present(wanted, raw_key)
        else:
            plan = converger.plan_absent()
        plan.apply(module.check_mode)
        result = dict(changed=bool(plan), actions=plan.describe(), secret=converger.result_secret())
        if module._diff:
            result['diff'] = converger.diff()
        return result
    finally:
        conn.close()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            user=dict(type='str'),
            key=dict(type='str', no_log=True),
            keyring=dict(type='path', no_log=False),  # a path, not a secret
            usage=dict(type='str'),
            uuid=dict(type='str'),
            private=dict(type='bool', default=True),
            description=dict(type='str'),
            state=dict(type='str', default='present', choices=['present', 'absent']),
            uri=dict(type='str', default='qemu:///system'),
        ),
        supports_check_mode=True,
        mutually_exclusive=[('key', 'keyring')],
        required_if=[('state', 'present', ('user',)), ('state', 'present', ('key', 'keyring'), True)],
        required_one_of=[('user', 'usage', 'uuid')],
    )
    run_module(module, run, missing_libraries=missing_libraries, actions=[])


if __name__ == '__main__':
    main()
