#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: transition_report
short_description: Write the transition report of a play on the controller
version_added: 0.1.0
description:
  - "Collects what M(storagepools.libvirt.legacy_disk_adopt) returned on each host (the registered variable
    O(result_var)) and writes, in O(dest) on the controller: C(<host>.json) per host, C(transition-report.json)
    over every host, C(transition-report.txt), a table per host and instance (adopted, already adopted,
    skipped and why, failed and why) followed by the nova.conf values to set for rbd and logical cutovers,
    and C(transition-report.html), the same as one self-contained page (inline CSS and sorting script, nothing
    external) with a summary, the hosts by status, the preflight risks (O(risks)) and per host its instances."
  - "In check mode it writes the plan instead, beside the last real report and never over it:
    C(transition-plan.json), C(transition-plan.txt), C(transition-plan.html) and C(<host>.plan.json), marked
    as a plan, with per instance its disks (method, bytes), header rewrites and the domain XML's changed lines."
  - Every value on the page is escaped text. The files are written atomically, mode 0644, through one
    descriptor of O(dest); a symlink planted at a report's name is replaced, its target untouched. A host name
    that is not plain (or that names an aggregate file) is percent-quoted into C(host-<name>.json).
  - An action plugin. It runs on the controller in-process, so writing the report costs no module run; a
    JSON or text file whose content is unchanged is not rewritten (the page carries the time it was made).
    The report is the play's output, not a change to a host, so it reports RV(ignore:changed=false).
  - "With O(prune_var), each host's entry also gets C(reclaim): what M(storagepools.libvirt.nova_storage_prune)
    returned there (its summary with the bytes quarantined and purged, per volume the action and the reason, the
    entries it ignored), shown as a second table in the text and as a section per host on the page."
  - "O(name) names the files: V(maintain) writes C(maintain-report.*), C(maintain-plan.*),
    C(<host>.maintain.json) and C(<host>.maintain.plan.json), beside the transition's and never over them."
  - The C(storagepools.libvirt.transition) role calls it once per play (C(run_once)), the
    C(storagepools.libvirt.maintain) role with O(name=maintain) and O(prune_var=storagepools_prune).
author:
  - storagepools.libvirt team (@storagepools)
attributes:
  check_mode:
    description: In check mode writes the plan (C(transition-plan.*)) beside the last real report.
    support: full
  diff_mode:
    description: No diff.
    support: none
options:
  dest:
    description: Absolute directory on the controller; created when missing.
    type: path
    required: true
  hosts:
    description: The hosts to report on, for example C(ansible_play_hosts_all). Hosts without the variable are left out.
    type: list
    elements: str
    required: true
  result_var:
    description: The variable each host registered the result of M(storagepools.libvirt.legacy_disk_adopt) in.
    type: str
    default: storagepools_adoption
  option_variables:
    description:
      - Maps options of M(storagepools.libvirt.legacy_disk_adopt) to the variables the operator set them with
        (for example V(running) to V(storagepools_running)); the reasons in the report name those variables.
      - Left out, the reasons name the module's options.
    type: dict
  prune_var:
    description: The variable each host registered the result of M(storagepools.libvirt.nova_storage_prune) in.
      Left out, the report has no reclaim part.
    type: str
  name:
    description: The run the report is of; it names the files and the title.
    type: str
    choices: [transition, maintain]
    default: transition
  risks:
    description:
      - Preflight risks to show on the report, each with a C(message); C(severity) is V(blocking), V(warning)
        (the default) or V(info); C(host) the host it is about (left out, every host); C(fix) the variable or
        action that removes it.
      - Each host's entry in the JSON gets its own risks and those of every host as C(risks).
    type: list
    elements: dict
'''

EXAMPLES = r'''
- name: Adopt every instance of the host
  storagepools.libvirt.legacy_disk_adopt:
  register: storagepools_adoption

- name: The report over every host of the play
  storagepools.libvirt.transition_report:
    dest: /var/tmp/storagepools-report
    hosts: "{{ ansible_play_hosts_all }}"
  run_once: true
  register: report

- name: Show it
  ansible.builtin.debug:
    msg: "{{ report.text }}"
  run_once: true
'''

RETURN = r'''
written:
  description: The files of O(dest) that were (re)written.
  returned: success
  type: list
  elements: str
  sample: [compute1.json, transition-report.json, transition-report.txt, transition-report.html]
hosts:
  description: How many hosts the report covers.
  returned: success
  type: int
text:
  description: The text table, one line per item.
  returned: success
  type: list
  elements: str
html:
  description: The path of the page on the controller (C(transition-report.html), in check mode C(transition-plan.html)).
  returned: success
  type: str
  sample: /var/tmp/storagepools-report/transition-report.html
plan:
  description: Whether this was a check-mode run, which wrote the plan files.
  returned: success
  type: bool
'''
