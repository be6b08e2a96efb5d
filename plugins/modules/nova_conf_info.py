#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: nova_conf_info
short_description: Read the nova.conf settings of a compute host that the transition depends on
version_added: 0.2.0
description:
  - Reads Nova's configuration file on the managed host (a regular UTF-8 file, read without following a FIFO or
    device) and returns the few settings the roles check before they touch a host. It changes nothing.
  - Unlike the modules that read nova.conf for a setting and fall back to Nova's defaults, a file that is not
    there is an error here, naming O(nova_conf); the roles run it first so a wrong path stops the run before
    anything happens.
author:
  - storagepools.libvirt team (@storagepools)
extends_documentation_fragment:
  - storagepools.libvirt.connection.info
options:
  nova_conf:
    description: Nova's configuration file on the managed host.
    type: path
    default: /etc/nova/nova.conf
notes:
  - Not in the C(libvirt) action group; it opens no libvirt connection and takes no O(ignore:uri).
'''

EXAMPLES = r'''
- name: Read nova.conf
  storagepools.libvirt.nova_conf_info:
    nova_conf: /etc/nova/nova.conf
  register: nova

- name: The pools go where Nova keeps its instances
  ansible.builtin.assert:
    that: nova.nova_conf.instances_path in [none, '/var/lib/nova/instances']
'''

RETURN = r'''
nova_conf:
  description: The settings, as Nova reads them.
  returned: success
  type: dict
  contains:
    path:
      description: The file read.
      type: str
    instances_path:
      description:
        - "C([DEFAULT] instances_path), its default C($state_path/instances) and C($state_path) resolved,
          normalised. Null when it rests on the default of C(state_path) (where Nova's code is installed),
          which the file does not say."
      type: str
      sample: /var/lib/nova/instances
    images_type:
      description: C([libvirt] images_type) (Nova's default V(default), that is the qcow2 or raw files).
      type: str
      sample: qcow2
    force_raw_images:
      description: C([DEFAULT] force_raw_images) (default true).
      type: bool
    remote_filesystem_transport:
      description: C([libvirt] remote_filesystem_transport) (default V(ssh)).
      type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.storagepools.libvirt.plugins.module_utils._core import names
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.module import run_module
from ansible_collections.storagepools.libvirt.plugins.module_utils._nova import layout as nova_layout


def run(module):
    path = module.params['nova_conf']
    names.check_options(module.params, {'nova_conf': names.path})
    nova_conf = nova_layout.NovaConf(path)
    nova_conf.require_found()
    return dict(changed=False, nova_conf=nova_conf.facts())


def main():
    module = AnsibleModule(
        argument_spec=dict(nova_conf=dict(type='path', default='/etc/nova/nova.conf')),
        supports_check_mode=True,
    )
    run_module(module, run)


if __name__ == '__main__':
    main()
