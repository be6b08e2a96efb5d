# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The transition report: per host and instance what legacy_disk_adopt did, as JSON and as a text table."""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional

RESULTS = ('adopted', 'already_adopted', 'skipped', 'failed')


def in_variables(text: str, variables: Optional[Dict[str, Any]]) -> str:
    """``text`` with every module option it names (``running: skip``, ``force=true``) replaced by the
    variable ``variables`` ({option: variable}) says an operator set it with, e.g. a role variable."""
    if not text or not variables:
        return text
    options = '|'.join(re.escape(option) for option in sorted(variables, key=len, reverse=True))
    return re.sub(r'(?<![\w./-])(%s)(?=[:=])' % options, lambda match: variables[match.group(1)], text)


def host_report(host: str, adoption: Dict[str, Any], variables: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """One host's entry: its summary, instances and (rbd/logical) the nova.conf values to set.

    ``variables`` ({module option: variable}): the reasons name those variables instead of the options."""
    instances = {uuid: dict(outcome, reason=in_variables(outcome.get('reason'), variables))
                 for uuid, outcome in adoption['instances'].items()}
    return {'host': host, 'summary': adoption['summary'], 'instances': instances,
            'nova_conf_settings': adoption.get('nova_conf_settings')}


def render_text(reports: List[Dict[str, Any]]) -> str:
    """The readable table over ``reports`` (host entries), totals first, nova.conf values last."""
    reports = sorted(reports, key=lambda report: report['host'])
    totals = ', '.join('%s %d' % (key, sum(report['summary'].get(key, 0) for report in reports)) for key in RESULTS)
    lines = ['storagepools.libvirt transition report: %d host(s)' % len(reports), 'totals: %s' % totals, '',
             '%-20s %-36s %-16s %s' % ('host', 'instance', 'result', 'reason')]
    for report in reports:
        for uuid, outcome in sorted(report['instances'].items()):
            lines.append(('%-20s %-36s %-16s %s' % (report['host'], uuid, outcome['result'],
                                                    outcome.get('reason') or '')).rstrip())
    for report in reports:
        if report.get('nova_conf_settings'):
            lines += ['', 'nova.conf on %s must hold (then restart nova-compute; storagepools_finalize=true '
                          'removes the legacy files):' % report['host']]
            for section, values in sorted(report['nova_conf_settings'].items()):
                lines += ['  [%s] %s = %s' % (section, key, value) for key, value in sorted(values.items())]
    return '\n'.join(lines) + '\n'
