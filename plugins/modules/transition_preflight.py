#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: transition_preflight
short_description: What the transition would do on a compute host, whether it can succeed, and its risks
version_added: 0.2.0
description:
  - Read only; changes nothing on the host, in check mode or not. The first step of the
    C(storagepools.libvirt.preflight) playbook and of the transition role, which refuses a host this module
    reports RV(blocked) before it touches it.
  - "The plan: legacy_disk_adopt's own check-mode plan of every instance (adopt, skip and why, already adopted;
    per disk the method and bytes to move), against the disks pool or the one the pools step would make
    (O(planned_pools))."
  - "Whether it can succeed: the space each destination needs, added up over the host's instances and compared
    with what is free there, computed per backend (a hard link on the same filesystem needs nothing, a copy to
    another filesystem the allocated bytes, a thick LV the virtual size against the volume group's free
    extents, an rbd image the raw size against the Ceph pool's max_avail); the Python modules on
    C(ansible_python_interpreter) and the programs the transition needs (the package to install named per
    os family, from the collection's requirements table); nova.conf's settings that change the plan; the
    filesystems of instances_path and of the disks pool (shared, another filesystem, tmpfs, xattr support)."
  - The Python-module check runs without the libvirt bindings and lxml, so a host lacking them is told what
    to install instead of failing.
  - Each finding is a risk with a severity (V(blocking), V(warning), V(info)), the message and what removes it.
  - The task fails only for what no risk can describe - a wrong option, a nova.conf that is not there, a
    libvirt that does not answer on O(uri).
author:
  - storagepools.libvirt team (@storagepools)
extends_documentation_fragment:
  - storagepools.libvirt.connection
  - storagepools.libvirt.connection.info
options:
  backend:
    description: The disks pool's backend the transition uses (the transition role's C(storagepools_backend)).
    type: str
    choices: [dir, logical, rbd]
    default: dir
  instances_path:
    description: Nova's C(instances_path).
    type: path
    default: /var/lib/nova/instances
  disks_pool:
    description: The pool the disks go to (it, or O(planned_pools) holding it).
    type: str
    default: nova-disks-pool
  cache_pool:
    description: The pool of the image cache (C(_base)).
    type: str
    default: nova-base-images-pool
  planned_pools:
    description:
      - The C(pool) results of the pools step's virt_pool_ensure tasks in check mode, the pools a real run
        would define and start; the plan is made against the disks pool among them when libvirt has none yet.
    type: list
    elements: dict
  exclude:
    description: Instance uuids the transition leaves alone.
    type: list
    elements: str
    default: []
  running:
    description: What the transition does with running instances (legacy_disk_adopt's O(running)).
    type: str
    choices: [skip, live]
    default: skip
  disk_type:
    description: legacy_disk_adopt's O(disk_type).
    type: str
    choices: [file, volume]
    default: file
  nova_conf:
    description: Nova's configuration file on the host (it must exist).
    type: path
    default: /etc/nova/nova.conf
  force:
    description: legacy_disk_adopt's O(force) (adopt despite C(remote_filesystem_transport=rsync)).
    type: bool
    default: false
  finalize:
    description: legacy_disk_adopt's O(finalize).
    type: bool
    default: false
  ceph_keyring:
    description: rbd only. The keyring librbd reads on the host.
    type: path
  state_dir:
    description: Where the adoption's journal is (read only here).
    type: path
    default: /var/lib/storagepools-libvirt
  migration_peers:
    description:
      - libvirt URIs of the hosts this one's instances live-migrate to (for example
        C(qemu+ssh://root@compute2/system)). Each is checked, read only, as live_migration_check does - the disks
        pool there (an adopted instance's disks must already be at the same pool paths on the destination), and
        for every instance already adopted what the destination lacks; each finding is a V(warning).
    type: list
    elements: str
    default: []
  option_variables:
    description:
      - "{module option: variable name}: the risks name these variables instead of the options (the roles
        pass their own), so a fix reads in the operator's terms."
    type: dict
    default: {}
seealso:
  - module: storagepools.libvirt.legacy_disk_adopt
  - module: storagepools.libvirt.transition_report
'''

EXAMPLES = r'''
- name: Preflight of a compute host (nothing changes)
  storagepools.libvirt.transition_preflight:
    instances_path: /var/lib/nova/instances
    disks_pool: nova-disks-pool
  register: preflight

- name: Stop before the transition when the host cannot go through it
  ansible.builtin.assert:
    that: not preflight.blocked
    fail_msg: "{{ preflight.risks | selectattr('severity', 'eq', 'blocking') | map(attribute='message') }}"
'''

RETURN = r'''
blocked:
  description: A risk of severity V(blocking) was found; the transition refuses the host.
  returned: success
  type: bool
risks:
  description: What may go wrong, blocking ones first.
  returned: success
  type: list
  elements: dict
  contains:
    severity:
      description: V(blocking) (the transition refuses the host), V(warning) or V(info).
      type: str
    message:
      description: What was found, with its cost.
      type: str
    fix:
      description: The variable or action that removes it (null for an info).
      type: str
    needed:
      description: Bytes needed, for a space risk (else null).
      type: int
    available:
      description: Bytes available, for a space risk (else null).
      type: int
host:
  description: What the host has.
  returned: success
  type: dict
  contains:
    os_family:
      description: Debian or RedHat from /etc/os-release (null for another), for the package names.
      type: str
    python:
      description: The interpreter, and per Python module the transition needs whether it is importable.
      type: dict
    qemu_img:
      description: qemu-img's version (null when missing).
      type: str
    libvirt:
      description: libvirt's version (null when the bindings are missing or libvirt did not answer).
      type: str
filesystems:
  description: What instances_path and a file disks pool's target are on.
  returned: success
  type: dict
  contains:
    instances:
      description: instances_path's filesystem - path, exists, device, mountpoint, fstype, free (bytes), shared
        (NFS, CephFS, ...), volatile (tmpfs, ramfs), xattr (keeps trusted.* attributes; null when unknown).
      type: dict
    disks:
      description: The same of the disks pool's target (null for rbd and logical pools, or without a plan).
      type: dict
nova_conf:
  description: nova_conf_info's facts.
  returned: success
  type: dict
space:
  description: Per destination, what the instances it receives need and what it has free.
  returned: success
  type: list
  elements: dict
  contains:
    where:
      description: The destination in words.
      type: str
    needed:
      description: Bytes the moves into it take (0 for hard links).
      type: int
    available:
      description: Bytes free there.
      type: int
    fits:
      description: Whether the need and its margin fit.
      type: bool
instances:
  description: The plan per instance, as legacy_disk_adopt's check mode returns it (result, reason, disks with
    method and bytes, actions, domain_diff). Absent when no plan could be made (see RV(risks)).
  returned: when a plan was made
  type: dict
summary:
  description: How many instances would end in each result.
  returned: when a plan was made
  type: dict
nova_conf_settings:
  description: rbd and logical pools, the nova.conf values the cutover reports.
  returned: when a plan was made for an rbd or logical pool
  type: dict
'''

import shutil
import sys

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.records import FILE_POOL_TYPES
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge import preflight
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.adoption import (
    adopter_for,
    each_instance,
    uuid_list,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.live_migration import check_destination
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.report import SEVERITIES, in_variables
from ansible_collections.storagepools.libvirt.plugins.module_utils._core import names
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.module import run_module, summarise
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.connection import (
    HAS_LIBVIRT,
    lookup_pool,
    open_connection,
    require_local_uri,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.pool import running_definition
from ansible_collections.storagepools.libvirt.plugins.module_utils._nova import layout as nova_layout

RESULTS = ('adopted', 'already_adopted', 'skipped', 'failed')


def host_facts(params):
    """(facts, risks) of what this host has, read without the libvirt bindings."""
    family = preflight.os_family()
    needed = ['libvirt', 'lxml'] + (['rados', 'rbd'] if params['backend'] == 'rbd' else [])
    found = {name: (HAS_LIBVIRT if name == 'libvirt' else preflight.importable(name)) for name in needed}
    qemu_img = preflight.qemu_img_version()
    risks = preflight.python_requirements(needed, found, family)
    risks += preflight.program_requirements(params['backend'], qemu_img, shutil.which('lvm') is not None,
                                            preflight.device_mapper(), family)
    facts = {'os_family': family, 'python': {'interpreter': sys.executable, 'modules': found},
             'qemu_img': '.'.join(map(str, qemu_img)) if qemu_img else None, 'libvirt': None}
    return facts, risks


def libvirt_version(conn):
    number = conn.getLibVersion()
    return '%d.%d.%d' % (number // 1000000, number // 1000 % 1000, number % 1000)


def make_plan(conn, params, outcome):
    """The adoption's check-mode plan into ``outcome``; the risks of making it."""
    try:
        adopter = adopter_for(conn, params, True)
    except StoragePoolsError as exc:
        pool = lookup_pool(conn, params['disks_pool'])
        if (pool is None or not pool.isActive()) and params['backend'] != 'dir':
            return [preflight.risk(preflight.INFO, 'no plan yet: %s (the pools step makes the %s pool; the plan and '
                                                   'its space check come once it is there)'
                                   % (exc.msg, params['backend']),
                                   'run the pools playbook, then the preflight again')]
        return [preflight.risk(preflight.BLOCKING, 'the adoption cannot start: %s' % exc.msg,
                               'the option named above')]
    adopter.space_needs = []
    try:
        settings = adopter.nova_settings()
        uuids = nova_layout.list_instances(params['instances_path'])
        instances = each_instance(adopter, uuids, set(uuid_list('exclude', params['exclude'])))
    finally:
        adopter.close()
    outcome.update(instances=instances, summary=summarise(instances, RESULTS))
    if settings is not None:
        outcome['nova_conf_settings'] = settings
    outcome['space'], risks = preflight.space_risks(adopter.space_needs)
    copied = sum(disk.get('bytes') or 0 for item in instances.values() for disk in item.get('disks') or []
                 if disk.get('method') == 'copy')
    if adopter.pool.type in FILE_POOL_TYPES and adopter.pool.target:
        disks = preflight.filesystem(adopter.pool.target)
        outcome['filesystems']['disks'] = disks
        risks += preflight.filesystem_risks(outcome['filesystems']['instances'], disks, copied)
    else:
        risks += preflight.filesystem_risks(outcome['filesystems']['instances'], None, 0)
    risks += preflight.plan_risks(instances, params['running'])
    for uri in params['migration_peers']:
        risks += peer_risks(conn, uri, params, adopter.pool, instances)
    return risks


def peer_risks(conn, uri, params, pool, instances):
    """What the migration peer ``uri`` lacks for the live migration of this host's adopted instances."""
    fix = 'run the transition on %s too (its pools step at least), or check it with live_migration_check' % uri
    try:
        peer = open_connection(uri)
    except StoragePoolsError as exc:
        return [preflight.risk(preflight.WARNING, 'migration_peers: %s' % exc.msg.split(': ', 1)[-1], fix)]
    try:
        found = lookup_pool(peer, params['disks_pool'])
        if found is None or not found.isActive():
            return [preflight.risk(preflight.WARNING, "migration peer %s has no active pool '%s': a block live "
                                                      "migration of an adopted instance there fails (its disks must "
                                                      "already be at the same pool paths)" % (uri, params['disks_pool']),
                                   fix)]
        risks = []
        target = running_definition(found).target_path
        if pool.type in FILE_POOL_TYPES and target != pool.target:
            risks.append(preflight.risk(preflight.WARNING, "migration peer %s has pool '%s' at %s, this host at %s: "
                                                           "Nova sends the disks' pool paths unchanged"
                                        % (uri, params['disks_pool'], target, pool.target), fix))
        for uuid in sorted(uuid for uuid, item in instances.items() if item.get('result') == 'already_adopted'):
            try:
                checked = check_destination(conn, peer, uuid, params['instances_path'])
                findings = checked['refused'] + checked['problems']
            except StoragePoolsError as exc:
                findings = ['cannot be checked: %s' % exc.msg]
            risks += [preflight.risk(preflight.WARNING, 'migration peer %s, instance %s: %s' % (uri, uuid, finding),
                                     fix) for finding in findings]
        return risks
    finally:
        peer.close()


def run(module):
    params = dict(module.params, instances=['all'], live_timeout=3600)
    names.check_options(params, {'disks_pool': names.pool_name, 'cache_pool': names.pool_name,
                                 'instances_path': names.path, 'nova_conf': names.path, 'state_dir': names.path,
                                 'ceph_keyring': names.path})
    require_local_uri(params['uri'], 'the preflight reads nova.conf, the instance directories and their filesystems')
    uuid_list('exclude', params['exclude'])
    nova_conf = nova_layout.NovaConf(params['nova_conf'])
    nova_conf.require_found()
    facts, risks = host_facts(params)
    outcome = {'changed': False, 'host': facts, 'nova_conf': nova_conf.facts(), 'space': [],
               'filesystems': {'instances': preflight.filesystem(params['instances_path']), 'disks': None}}
    risks += preflight.nova_conf_risks(outcome['nova_conf'], params['backend'], params['force'])
    if not preflight.blocked(risks):  # without the bindings (or lxml) no plan can be made
        conn = open_connection(params['uri'])  # a libvirt that does not answer fails the task, naming uri
        try:
            facts['libvirt'] = libvirt_version(conn)
            risks += make_plan(conn, params, outcome)
        finally:
            conn.close()
    variables = params['option_variables']
    risks = [dict(item, message=in_variables(item['message'], variables), fix=in_variables(item['fix'], variables))
             for item in risks]
    outcome['risks'] = sorted(risks, key=lambda item: SEVERITIES.index(item['severity']))
    outcome['blocked'] = preflight.blocked(risks)
    return outcome


def main():
    module = AnsibleModule(
        argument_spec=dict(
            backend=dict(type='str', default='dir', choices=['dir', 'logical', 'rbd']),
            instances_path=dict(type='path', default='/var/lib/nova/instances'),
            disks_pool=dict(type='str', default='nova-disks-pool'),
            cache_pool=dict(type='str', default='nova-base-images-pool'),
            planned_pools=dict(type='list', elements='dict'),
            exclude=dict(type='list', elements='str', default=[]),
            running=dict(type='str', default='skip', choices=['skip', 'live']),
            disk_type=dict(type='str', default='file', choices=['file', 'volume']),
            nova_conf=dict(type='path', default='/etc/nova/nova.conf'),
            force=dict(type='bool', default=False),
            finalize=dict(type='bool', default=False),
            ceph_keyring=dict(type='path', no_log=False),  # a path, not a secret
            state_dir=dict(type='path', default='/var/lib/storagepools-libvirt'),
            migration_peers=dict(type='list', elements='str', default=[]),
            option_variables=dict(type='dict', default={}),
            uri=dict(type='str', default='qemu:///system'),
        ),
        supports_check_mode=True,
    )
    run_module(module, run)  # no missing_libraries: telling what is missing is this module's job


if __name__ == '__main__':
    main()
