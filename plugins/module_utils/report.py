# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The transition report: per host and instance what legacy_disk_adopt did, as JSON and as a text table."""

from __future__ import annotations

RESULTS = ('adopted', 'already_adopted', 'skipped', 'failed')


def host_report(host, adoption):
    """One host's entry: its summary, instances and (rbd/logical) the nova.conf values to set."""
    return {'host': host, 'summary': adoption['summary'], 'instances': adoption['instances'],
            'nova_conf_settings': adoption.get('nova_conf_settings')}


def render_text(reports):
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
