# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""transition_report: written on the controller, in-process (no module run per file: a rerun stays fast)."""

from __future__ import annotations

import json
import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.report import host_report, render_text
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.atomic_file import write_atomically


def _write(path, text):
    """Atomically, 0644; untouched when the content is the same. True when written."""
    try:
        with open(path) as handle:
            if handle.read() == text:
                return False
    except OSError:
        pass
    write_atomically(path, text.encode('utf-8'), mode=0o644)
    return True


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(('dest', 'hosts', 'result_var', 'option_variables'))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        dest, hosts = args.get('dest'), args.get('hosts') or []
        variable = args.get('result_var', 'storagepools_adoption')
        option_variables = args.get('option_variables') or {}
        if not isinstance(option_variables, dict):
            raise AnsibleActionFail('option_variables: give a dict {module option: variable name}')
        if not dest or not os.path.isabs(dest):
            raise AnsibleActionFail('dest: give an absolute directory on the controller')
        hostvars = task_vars['hostvars']
        reports = []
        for host in hosts:
            adoption = hostvars[host].get(variable)
            if isinstance(adoption, dict) and 'summary' in adoption and 'instances' in adoption:
                reports.append(host_report(host, adoption, option_variables))
        try:
            os.makedirs(dest, mode=0o755, exist_ok=True)
            written = [name for name, text in
                       [('%s.json' % report['host'], json.dumps(report, indent=4, sort_keys=True) + '\n')
                        for report in reports]
                       + [('transition-report.json', json.dumps(reports, indent=4, sort_keys=True) + '\n'),
                          ('transition-report.txt', render_text(reports))]
                       if _write(os.path.join(dest, name), text)]
        except OSError as exc:
            raise AnsibleActionFail('dest: cannot write the report in %s: %s' % (dest, exc.strerror))
        result.update(changed=False, written=written, hosts=len(reports),
                      text=render_text(reports).splitlines())
        return result
