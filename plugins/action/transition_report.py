# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""transition_report: written on the controller, in-process (no module run per file: a rerun stays fast)."""

from __future__ import annotations

import datetime
import json
import os
import re
import stat
from urllib.parse import quote

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.report import (
    check_risks,
    host_report,
    render_text,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.atomic_file import write_atomically
from ansible_collections.storagepools.libvirt.plugins.plugin_utils.report_html import render_html

NAMES = ('transition', 'maintain')  # the runs that write a report: <name>-report.*, <name>-plan.*
AGGREGATES = frozenset('%s-%s' % (name, kind) for name in NAMES for kind in ('report', 'plan'))
MODE = 0o644
_PLAIN_HOST = re.compile(r'[A-Za-z0-9_][A-Za-z0-9_.:@-]*\Z')


def host_file(host, plan, name='transition'):
    """The per-host file's name: ``<host>.json`` (``<host>.plan.json`` in check mode; a maintain run's
    ``<host>.maintain.json``, ``<host>.maintain.plan.json``), the host percent-quoted when it is not a plain
    name, so no inventory name reaches outside dest or over the aggregate files."""
    plain = _PLAIN_HOST.match(host) and host not in AGGREGATES
    return '%s%s%s.json' % (host if plain else 'host-' + quote(host, safe=''),
                            '' if name == 'transition' else '.' + name, '.plan' if plan else '')


def _same_content(dir_fd, name, data):
    """Whether the regular file ``name`` (never followed, never a FIFO waited on) holds ``data``."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return False
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size != len(data) or stat.S_IMODE(info.st_mode) != MODE:
            return False
        with os.fdopen(os.dup(fd), 'rb') as handle:
            return handle.read(len(data) + 1) == data
    finally:
        os.close(fd)


def write_reports(dest, files):
    """Write ``files`` ({name: text}) into ``dest``, each atomically with MODE, through one descriptor of the
    directory (a symlink planted at a file's name is replaced, its target untouched); unchanged ones are
    left alone. The names written."""
    os.makedirs(dest, mode=0o755, exist_ok=True)
    dir_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        written = []
        for name, text in files.items():
            data = text.encode('utf-8')
            if not _same_content(dir_fd, name, data):
                write_atomically(os.path.join(dest, name), data, mode=MODE, dir_fd=dir_fd)
                written.append(name)
        return written
    finally:
        os.close(dir_fd)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(('dest', 'hosts', 'result_var', 'option_variables', 'risks', 'prune_var', 'name'))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        dest, hosts = args.get('dest'), args.get('hosts') or []
        variable = args.get('result_var', 'storagepools_adoption')
        prune_variable = args.get('prune_var')
        name = args.get('name') or 'transition'
        if name not in NAMES:
            raise AnsibleActionFail('name: one of %s, not %r' % (', '.join(NAMES), name))
        option_variables = args.get('option_variables') or {}
        if not isinstance(option_variables, dict):
            raise AnsibleActionFail('option_variables: give a dict {module option: variable name}')
        if not dest or not os.path.isabs(dest):
            raise AnsibleActionFail('dest: give an absolute directory on the controller')
        try:
            risks = check_risks(args.get('risks'))
        except ValueError as exc:
            raise AnsibleActionFail('risks: %s' % exc)
        plan = bool(self._task.check_mode)
        hostvars = task_vars['hostvars']
        reports = []
        for host in hosts:
            adoption = hostvars[host].get(variable)
            if isinstance(adoption, dict) and 'summary' in adoption and 'instances' in adoption:
                prune = hostvars[host].get(prune_variable) if prune_variable else None
                report = host_report(host, adoption, option_variables,
                                     prune if isinstance(prune, dict) else None)
                if risks:  # a host's own and the play's
                    report['risks'] = [risk for risk in risks if risk['host'] in (None, host)]
                reports.append(report)
        base = '%s-%s' % (name, 'plan' if plan else 'report')
        text = render_text(reports, plan, risks, name)
        generated = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M:%S UTC')
        files = {host_file(report['host'], plan, name): json.dumps(report, indent=4, sort_keys=True) + '\n'
                 for report in reports}
        files.update({base + '.json': json.dumps(reports, indent=4, sort_keys=True) + '\n', base + '.txt': text,
                      base + '.html': render_html(reports, plan, risks, generated, name)})
        try:
            written = write_reports(dest, files)
        except OSError as exc:
            raise AnsibleActionFail('dest: cannot write the report in %s: %s' % (dest, exc.strerror or exc))
        result.update(changed=False, written=written, hosts=len(reports), text=text.splitlines(), plan=plan,
                      html=os.path.join(dest, base + '.html'))
        return result
