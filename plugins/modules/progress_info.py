#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: progress_info
short_description: Show what the long runs of this collection on a host are doing
version_added: 0.2.0
description:
  - Lists the runs of M(storagepools.libvirt.legacy_disk_adopt) and M(storagepools.libvirt.virt_volume_clone)
    on the managed host with what each is doing now, the phase (V(copy), V(verify), V(import), V(convert)),
    the instance and disk (or the volume) and the bytes done of the disk's total - so that a run started with
    C(async) and C(poll) 0, or from another terminal, can be watched while it copies.
  - Each run keeps its status in C(<state_dir>/progress/<module>-<pid>.json), written when a phase begins and
    then at most once a second; a finished run is kept until the next run of the same module. It changes
    nothing.
  - Only status files root alone can write are read; another file there is listed as V(untrusted) with why.
author:
  - storagepools.libvirt team (@storagepools)
extends_documentation_fragment:
  - storagepools.libvirt.connection.info
options:
  state_dir:
    description: The O(storagepools.libvirt.legacy_disk_adopt#module:state_dir) of the runs to show.
    type: path
    default: /var/lib/storagepools-libvirt
  module:
    description: Only the runs of this module (its short name).
    type: str
    choices: [legacy_disk_adopt, virt_volume_clone]
notes:
  - Not in the C(libvirt) action group; it opens no libvirt connection and takes no O(ignore:uri).
  - "From a shell on the host the same is in the files: C(cat /var/lib/storagepools-libvirt/progress/*.json)."
'''

EXAMPLES = r'''
- name: Adopt the legacy disks in the background
  storagepools.libvirt.legacy_disk_adopt:
    disks_pool: nova-disks-pool
  async: 7200
  poll: 0
  register: adoption

- name: Wait until the adoption shows its first copied bytes
  storagepools.libvirt.progress_info:
    module: legacy_disk_adopt
  register: progress
  until: progress.running | selectattr('bytes_done') | list | length > 0
  retries: 60
  delay: 5

- name: Wait for the adoption to finish
  ansible.builtin.async_status:
    jid: "{{ adoption.ansible_job_id }}"
  register: adopted
  until: adopted.finished
  retries: 720
  delay: 10
'''

RETURN = r'''
runs:
  description: Every run with a status file, oldest first.
  returned: success
  type: list
  elements: dict
  contains:
    module:
      description: The module of the run.
      type: str
      sample: legacy_disk_adopt
    pid:
      description: The process id of the run on the managed host.
      type: int
    state:
      description:
        - V(running); V(finished) or V(failed) (the run stopped with an error; its result says which instances
          failed in either case); V(stale), a run whose process is gone (killed) without finishing; V(untrusted),
          a file someone other than root could have written (see RV(runs[].reason)), not read.
      type: str
      choices: [running, finished, failed, stale, untrusted]
    started:
      description: When the run started (UTC, ISO 8601).
      type: str
      sample: '2026-12-02T16:41:33Z'
    updated:
      description: When the status was last written (UTC).
      type: str
    finished:
      description: When the run ended (UTC); only a finished or failed run has it.
      type: str
    phase:
      description: What the run does to the current disk (V(copy), V(verify), V(import), V(convert)); null
        between phases.
      type: str
    instance:
      description: The Nova instance uuid the run works on (legacy_disk_adopt).
      type: str
    disk:
      description: The disk of the instance (V(disk), V(disk.local), ...), or the volume as C(<pool>/<name>)
        (virt_volume_clone).
      type: str
    bytes_done:
      description: How far into the disk the phase is, in bytes (a hole counts as done once passed). For a
        qemu-img conversion it is qemu-img's own progress, as a share of RV(runs[].bytes_total).
      type: int
    bytes_total:
      description: The size of the disk (for a conversion its virtual size); null when the phase does not
        count bytes.
      type: int
    percent:
      description: RV(runs[].bytes_done) of RV(runs[].bytes_total), in percent with one decimal.
      type: float
    file:
      description: The status file's name in C(<state_dir>/progress).
      type: str
    reason:
      description: Why an V(untrusted) file was not read.
      type: str
running:
  description: The runs of RV(runs) whose state is V(running).
  returned: success
  type: list
  elements: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.storagepools.libvirt.plugins.module_utils._core import names
from ansible_collections.storagepools.libvirt.plugins.module_utils._core import progress as run_progress
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.module import run_module


def _shown(run):
    shown = {key: value for key, value in run.items() if key != 'pid_start'}
    if run.get('bytes_total'):
        shown['percent'] = round(100.0 * (run.get('bytes_done') or 0) / run['bytes_total'], 1)
    return shown


def run(module):
    names.check_options(module.params, {'state_dir': names.path})
    runs = [_shown(run) for run in run_progress.read_runs(module.params['state_dir'])
            if module.params['module'] in (None, run['module'])]
    return dict(changed=False, runs=runs, running=[run for run in runs if run['state'] == run_progress.RUNNING])


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state_dir=dict(type='path', default='/var/lib/storagepools-libvirt'),
            module=dict(type='str', choices=['legacy_disk_adopt', 'virt_volume_clone']),
        ),
        supports_check_mode=True,
    )
    run_module(module, run)


if __name__ == '__main__':
    main()
