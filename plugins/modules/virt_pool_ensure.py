#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: virt_pool_ensure
short_description: Define, build, start and autostart a libvirt storage pool in one task
version_added: 0.1.0
description:
  - Converges one libvirt storage pool to the wanted definition and state in one task
    (define, build, start, autostart), in that order, undoing what it did when a later step fails.
  - The wanted definition comes from structured options (O(type), O(target), O(source),
    O(permissions)) or from a whole pool document in O(xml).
  - Drift is found by comparing canonical forms of the wanted and the defined (inactive) XML,
    which ignore what libvirt fills in itself (uuid, sizes, default source format, ...).
    O(on_drift) decides what happens then.
  - A pool's storage is built only when the module defines the pool, and by default
    (O(build=no_overwrite)) never over an existing filesystem, volume group or partition table.
author:
  - storagepools.libvirt team (@storagepools)
extends_documentation_fragment:
  - storagepools.libvirt.connection
  - storagepools.libvirt.connection.pool_actions
options:
  name:
    description:
      - Name of the pool. It must not contain C(/) or control characters.
      - No name or path of the definition may hold a control character; for V(rbd) pools the Ceph pool
        (O(source.name)) and user (O(source.auth.username)) must not contain a colon, C(@), C(/), a backslash or C(=).
    type: str
    required: true
  state:
    description:
      - V(active) defines the pool when needed and starts it.
      - V(inactive) defines it and stops it when it runs.
      - V(present) defines it and leaves it running or stopped as it is.
      - V(absent) stops and undefines it; its data stays unless O(delete_data=true).
    type: str
    choices: [active, inactive, present, absent]
    default: active
  autostart:
    description: Whether libvirt starts the pool when the daemon starts. Ignored for O(state=absent).
    type: bool
    default: true
  xml:
    description:
      - A whole C(<pool>) document. Its C(<name>) must equal O(name) (or be left out).
      - Mutually exclusive with O(type), O(target), O(source) and O(permissions).
    type: str
  type:
    description: The pool type. Required unless O(xml) is given (for any state but V(absent)).
    type: str
    choices: [dir, fs, netfs, logical, rbd, iscsi, zfs, disk]
  target:
    description:
      - Absolute path of the pool's target (the directory, mount point or device directory).
      - For V(logical) pools it defaults to C(/dev/<volume group>).
    type: str
  source:
    description: The pool's source, as libvirt's C(<source>) element.
    type: dict
    suboptions:
      device:
        description: Source device paths (V(fs), V(logical), V(disk)) or the iSCSI IQN (V(iscsi)).
        type: list
        elements: str
      host:
        description: Hosts of a network pool (NFS server, Ceph monitors, iSCSI portal).
        type: list
        elements: dict
        suboptions:
          name:
            description: Host name or address.
            type: str
            required: true
          port:
            description: TCP port; the protocol's default when left out.
            type: int
      dir:
        description: Exported directory of a V(netfs) pool.
        type: str
      name:
        description: Source name, for example the Ceph pool (V(rbd)), the volume group (V(logical)) or the ZFS pool.
        type: str
      format:
        description:
          - Source format, for example V(ext4) or V(xfs) (V(fs)), V(nfs) (V(netfs)), V(lvm2) (V(logical)).
          - When left out libvirt picks its default (V(auto) for file systems), which is not counted as drift.
        type: str
      auth:
        description: Authentication for V(rbd) (cephx) or V(iscsi) (CHAP) pools.
        type: dict
        suboptions:
          type:
            description: Authentication type.
            type: str
            choices: [ceph, chap]
            default: ceph
          username:
            description: The user, for example the cephx id C(nova) (without C(client.)).
            type: str
            required: true
          secret_uuid:
            description: UUID of the libvirt secret that holds the key. Exactly one of this and O(source.auth.secret_usage).
            type: str
          secret_usage:
            description: Usage name of the libvirt secret that holds the key.
            type: str
      config_opts:
        description:
          - Ceph client options for V(rbd) pools (libvirt's rbd C(config_opts) namespace).
          - C(key) is refused; libvirt keeps these options in the pool's XML, which any user of the read-only
            socket can read. The key belongs in a libvirt secret (M(storagepools.libvirt.rbd_pool_secret)).
        type: dict
  permissions:
    description: Permissions libvirt gives the target directory when it builds the pool.
    type: dict
    suboptions:
      mode:
        description: Octal mode as a string, for example V('0755').
        type: str
      owner:
        description: Numeric owner uid.
        type: int
      group:
        description: Numeric group gid.
        type: int
      label:
        description: SELinux label.
        type: str
  build:
    description:
      - How a newly defined pool's storage is made.
      - V(no_overwrite) builds only where nothing is there; an existing filesystem, volume group
        or partition table on the source device is a clear failure. For V(dir) and V(netfs) pools
        build only creates the target directory; files already in it stay.
      - V(overwrite) makes the filesystem, volume group or partition table even over existing data.
      - V(never) does not build; the storage must already exist.
      - An existing pool is never built again.
    type: str
    choices: [no_overwrite, overwrite, never]
    default: no_overwrite
  on_drift:
    description:
      - What to do when the defined pool differs from the task.
      - V(redefine) defines the wanted document (keeping the pool's uuid).
      - V(fail) fails with the difference; V(warn) warns and leaves the pool as it is.
    type: str
    choices: [redefine, fail, warn]
    default: redefine
  restart:
    description:
      - Whether an active pool whose definition changed may be stopped and started again so the
        change takes effect now. When false the module returns RV(restart_required=true) instead.
    type: bool
    default: false
  planned_secrets:
    description:
      - Check mode only (ignored by a real run). The UUIDs of the libvirt secrets an earlier check-mode task
        would define (the RV(storagepools.libvirt.rbd_pool_secret#module:secret.uuid) it returns), so that an
        rbd pool naming one is planned as if it were there, on a host that has neither yet.
    type: list
    elements: str
    default: []
    version_added: 0.2.0
  connect_timeout:
    description:
      - V(rbd) pools only, with the structured options. Seconds libvirt waits for the Ceph monitors
        (an unreachable cluster, or a key they refuse) before it gives up starting or refreshing the pool.
      - Kept in the pool's definition as the Ceph option C(client_mount_timeout), unless
        O(source.config_opts) sets that itself. V(0) leaves libvirt's default.
    type: int
    default: 10
  delete_data:
    description:
      - With O(state=absent), delete every volume of the pool and its storage (target directory,
        volume group) before undefining it. This destroys data.
    type: bool
    default: false
  state_dir:
    description:
      - Where the record of the last verified no-op of each pool is kept (C(noop/), made 0700 when missing), so
        that a rerun whose options, collection code and libvirt's answers (the inactive and running XML, state
        and autostart) are all byte-identical returns that result without comparing again. Any difference in
        any of them compares in full. A record only root could not have written alone is ignored, and a
        state_dir that cannot be used keeps no record; the task runs either way.
      - Records are kept only for runs through Ansible (the module's own zip names its code), never in check
        mode, and never for a run that changed, warned or found drift.
    type: path
    default: /var/lib/storagepools-libvirt
seealso:
  - module: storagepools.libvirt.virt_pool_info
  - name: libvirt storage pool XML format
    description: The pool document O(xml) takes.
    link: https://libvirt.org/formatstorage.html
'''

EXAMPLES = r'''
- name: Instance disks in a directory pool, started and autostarted
  storagepools.libvirt.virt_pool_ensure:
    name: nova-disks-pool
    type: dir
    target: /var/lib/nova/disks
    permissions:
      mode: '0755'

- name: A pool on its own filesystem, made only if the device is empty
  storagepools.libvirt.virt_pool_ensure:
    name: images
    type: fs
    source:
      device: [/dev/vdb]
      format: xfs
    target: /srv/images

- name: Ceph RBD pool with cephx auth
  storagepools.libvirt.virt_pool_ensure:
    name: nova-disks-pool
    type: rbd
    source:
      name: vms
      host:
        - {name: 192.0.2.10, port: 6789}
        - {name: 192.0.2.11, port: 6789}
      auth:
        username: nova
        secret_uuid: 2ec115d7-3a88-3ceb-bc12-0ac909a6fd87

- name: Fail rather than change a pool someone edited by hand
  storagepools.libvirt.virt_pool_ensure:
    name: nova-disks-pool
    type: dir
    target: /var/lib/nova/disks
    on_drift: fail

- name: A pool from a whole document
  storagepools.libvirt.virt_pool_ensure:
    name: scratch
    xml: |
      <pool type='dir'>
        <name>scratch</name>
        <target><path>/srv/scratch</path></target>
      </pool>

- name: Undefine a pool, keep its data
  storagepools.libvirt.virt_pool_ensure:
    name: scratch
    state: absent
'''

RETURN = r'''
pool:
  description: The pool after the run (in check mode, as the run would leave it). None when absent.
  returned: success
  type: dict
  contains:
    name:
      description: Pool name.
      type: str
      sample: nova-disks-pool
    uuid:
      description: Pool uuid; None in check mode for a pool not yet defined.
      type: str
      sample: 5cf989ef-8475-4102-af1f-de0d65b7406b
    type:
      description: Pool type.
      type: str
      sample: dir
    state:
      description: V(active) or V(inactive).
      type: str
      sample: active
    autostart:
      description: Whether libvirt starts the pool with the daemon.
      type: bool
      sample: true
    xml:
      description: The pool's defined (inactive) XML.
      type: str
      sample: "<pool type='dir'>...</pool>"
actions:
  description:
    - The ordered plan the run carried out, or would carry out in check mode. Empty when nothing changes.
    - On failure, the steps done before the failing one (all rolled back, see RV(rolled_back)).
  returned: always
  type: list
  elements: dict
  contains:
    action:
      description: V(define), V(redefine), V(build), V(start), V(stop), V(restart), V(autostart),
        V(delete_volumes), V(delete) or V(undefine).
      type: str
    detail:
      description: What the step does, in words.
      type: str
  sample: [{action: define, detail: "define pool 'nova-disks-pool'"}, {action: build, detail: "build pool 'nova-disks-pool' (create the target directory)"}]
restart_required:
  description: The pool runs an older definition than the stored one; it takes effect when the pool is restarted.
  returned: always
  type: bool
  sample: false
drift:
  description: The defined pool differed from the task (whatever O(on_drift) then did).
  returned: always
  type: bool
  sample: false
libvirt_error:
  description: libvirt's own message when libvirt refused a step.
  returned: failure
  type: str
  sample: "operation failed: Storage source conflict with pool: 'other'"
rolled_back:
  description: Steps undone after a failure, newest first.
  returned: failure
  type: list
  elements: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.storagepools.libvirt.plugins.module_utils._core.module import run_module
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.noop_memo import NoopMemo, code_digest
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.connection import (
    missing_libraries,
    open_connection,
    pool_answers,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.pool_types import POOL_TYPES


def argument_spec():
    return dict(
        name=dict(type='str', required=True),
        state=dict(type='str', default='active', choices=['active', 'inactive', 'present', 'absent']),
        autostart=dict(type='bool', default=True),
        xml=dict(type='str'),
        type=dict(type='str', choices=list(POOL_TYPES)),
        target=dict(type='str'),
        source=dict(type='dict', options=dict(
            device=dict(type='list', elements='str'),
            host=dict(type='list', elements='dict', options=dict(
                name=dict(type='str', required=True),
                port=dict(type='int'),
            )),
            dir=dict(type='str'),
            name=dict(type='str'),
            format=dict(type='str'),
            auth=dict(type='dict', options=dict(
                type=dict(type='str', default='ceph', choices=['ceph', 'chap']),
                username=dict(type='str', required=True),
                secret_uuid=dict(type='str', no_log=False),  # names a secret, holds none
                secret_usage=dict(type='str', no_log=False),
            ), mutually_exclusive=[('secret_uuid', 'secret_usage')],
                required_one_of=[('secret_uuid', 'secret_usage')]),
            config_opts=dict(type='dict'),
        )),
        permissions=dict(type='dict', options=dict(
            mode=dict(type='str'),
            owner=dict(type='int'),
            group=dict(type='int'),
            label=dict(type='str'),
        )),
        build=dict(type='str', default='no_overwrite', choices=['no_overwrite', 'overwrite', 'never']),
        on_drift=dict(type='str', default='redefine', choices=['redefine', 'fail', 'warn']),
        restart=dict(type='bool', default=False),
        planned_secrets=dict(type='list', elements='str', default=[], no_log=False),
        connect_timeout=dict(type='int', default=10),
        delete_data=dict(type='bool', default=False),
        state_dir=dict(type='path', default='/var/lib/storagepools-libvirt'),
        uri=dict(type='str', default='qemu:///system'),
    )


def wanted_definition(params):
    """The wanted PoolDefinition from ``xml`` or the structured options, validated."""
    from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import rbd_pool
    from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
    from ansible_collections.storagepools.libvirt.plugins.module_utils._xml import pool as pool_xml

    if params['xml'] is not None:
        definition, prefix = pool_xml.PoolDefinition.from_document(params['xml'], params['name']), 'xml: '
    else:
        definition = pool_xml.PoolDefinition.from_options(
            params['name'], params['type'], params['target'], params['source'], params['permissions'])
        if params['connect_timeout'] < 0:
            raise StoragePoolsError('connect_timeout: give seconds (0 for libvirt\'s default), not %d'
                                    % params['connect_timeout'])
        rbd_pool.with_connect_timeout(definition, params['connect_timeout'])
        prefix = ''
    definition.validate(option_prefix=prefix)
    return definition


def run(module):
    """A task whose options, code and libvirt's answers all equal those of a verified no-op returns its result
    (_core/noop_memo.py); any other converges in full."""
    params = module.params
    memo = None
    code = code_digest(globals())
    if code is not None:
        memo = NoopMemo(params['state_dir'], [params['uri'], params['name']], code,
                        [params, module.check_mode, module._diff])
    conn = open_connection(params['uri'])
    try:
        if params['state'] == 'absent':
            result = converge(module, conn)[0]
            if memo is not None and not module.check_mode:
                memo.forget()  # the pool's record goes with it
            return result
        answers = pool_answers(conn, params['name']) if memo is not None else None
        result = memo.lookup(answers) if answers is not None else None
        if result is not None:
            return result
        result, warned = converge(module, conn)
        clean = not (result['changed'] or result['drift'] or warned or module.check_mode)
        if answers is not None and clean and pool_answers(conn, params['name']) == answers:
            memo.store(answers, result)  # only when nothing changed under the run either
        return result
    finally:
        conn.close()


def converge(module, conn):
    """(result, whether it warned): the plan from the wanted definition and the pool as libvirt has it, applied
    (nothing in check mode)."""
    from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.pool import PoolConverger
    from ansible_collections.storagepools.libvirt.plugins.module_utils._core import names
    from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
    from ansible_collections.storagepools.libvirt.plugins.module_utils._xml import pool as pool_xml

    params = module.params
    names.check_options(params, {'name': names.pool_name})
    for option, value in ((params['source'] or {}).get('config_opts') or {}).items():
        if pool_xml.is_secret_ceph_option(option):
            module.no_log_values.add(str(value))  # refused below; never echoed back meanwhile
    state = params['state']
    wanted = None if state == 'absent' else wanted_definition(params)
    converger = PoolConverger(conn, params['uri'], params['name'],
                              planned_secrets=params['planned_secrets'] if module.check_mode else ())
    if wanted is None:
        plan = converger.plan_absent(params['delete_data'])
    else:
        plan = converger.plan_present(wanted, state, params['autostart'], params['build'],
                                      params['on_drift'], params['restart'])
    for warning in converger.warnings:
        module.warn(warning)
    try:
        plan.apply(module.check_mode)
    except StoragePoolsError as exc:
        exc.details.setdefault('restart_required', False)
        raise
    changed = bool(plan)
    result = dict(
        changed=changed,
        actions=plan.describe(),
        restart_required=converger.restart_required,
        drift=converger.drift,
        pool=converger.result_pool(changed, module.check_mode, state, params['autostart']),
    )
    if module._diff:
        result['diff'] = converger.diff(state, params['autostart'])
    return result, bool(converger.warnings)


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        mutually_exclusive=[('xml', 'type'), ('xml', 'target'), ('xml', 'source'), ('xml', 'permissions')],
        required_if=[
            ('state', 'active', ('xml', 'type'), True),
            ('state', 'inactive', ('xml', 'type'), True),
            ('state', 'present', ('xml', 'type'), True),
        ],
    )
    run_module(module, run, missing_libraries=missing_libraries, actions=[])


if __name__ == '__main__':
    main()
