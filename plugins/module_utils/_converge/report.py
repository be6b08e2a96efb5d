# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The transition and maintain reports: per host and instance what legacy_disk_adopt did (or, in check mode,
would do) and, for maintain, per volume what nova_storage_prune reclaimed or kept and why; as JSON and as a
text table; plugins/plugin_utils/report_html.py renders the same entries as HTML."""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional

RESULTS = ('adopted', 'already_adopted', 'skipped', 'failed')
# the order a reader wants them in: what needs a look first
RESULT_ORDER = ('failed', 'skipped', 'adopted', 'already_adopted')
SEVERITIES = ('blocking', 'warning', 'info')
HEADER_REWRITE = 'rebase'  # the step that writes the backing format into an overlay's header
# nova_storage_prune's actions, in the order a reader wants them: what needs a look first, what was kept last
RECLAIM_ACTIONS = ('failed', 'quarantined', 'purged', 'restored', 'kept')
RECLAIM_BYTES = ('quarantined_bytes', 'purged_bytes', 'restored_bytes')


def in_variables(text: str, variables: Optional[Dict[str, Any]]) -> str:
    """``text`` with every module option it names (``running: skip``, ``force=true``) replaced by the
    variable ``variables`` ({option: variable}) says an operator set it with, e.g. a role variable."""
    if not text or not variables:
        return text
    options = '|'.join(re.escape(option) for option in sorted(variables, key=len, reverse=True))
    return re.sub(r'(?<![\w./-])(%s)(?=[:=])' % options, lambda match: variables[match.group(1)], text)


_CONTROL = re.compile(r'[\x00-\x1f\x7f-\x9f]')


def printable(value: Any, keep: str = '') -> str:
    """``value`` as text without control characters but those in ``keep`` (an escape sequence in a path the
    nova user named must not reach the operator's terminal): each is shown as ``\\xNN``."""
    return _CONTROL.sub(lambda match: match.group() if match.group() in keep else '\\x%02x' % ord(match.group()),
                        '' if value is None else str(value))


def instance_bytes(outcome: Dict[str, Any]) -> int:
    """The bytes an instance's disks moved (or would move): a hard link moves none."""
    return sum(disk.get('bytes') or 0 for disk in outcome.get('disks') or [])


def header_rewrites(outcome: Dict[str, Any]) -> List[str]:
    """The disks whose overlay header gets the backing format it lacks (``qemu-img rebase -u``)."""
    return [step['disk'] for step in outcome.get('actions') or [] if step.get('action') == HEADER_REWRITE]


def minimal_diff(diff: Optional[str]) -> List[str]:
    """The changed lines of a unified diff, without its file headers, hunk headers and context lines, and
    without the indentation they all share; a ``...`` line stands for the unchanged lines between two
    changes."""
    lines: List[str] = []
    skipped = False
    for line in (diff or '').splitlines():
        if line.startswith(('---', '+++', '@@')) or line[:1] not in '+-':
            skipped = True
            continue
        if skipped and lines:
            lines.append('...')
        skipped = False
        lines.append(line)
    changed = [line[1:] for line in lines if line != '...']
    shared = min((len(line) - len(line.lstrip(' ')) for line in changed if line.strip()), default=0)
    return [line if line == '...' else line[0] + line[1 + shared:] for line in lines]


def host_report(host: str, adoption: Dict[str, Any], variables: Optional[Dict[str, Any]] = None,
                prune: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """One host's entry: its summary, instances and (rbd/logical) the nova.conf values to set; ``bytes`` and
    ``seconds`` over its instances.

    ``variables`` ({module option: variable}): the reasons name those variables instead of the options.
    ``prune``: what nova_storage_prune returned on the host; the entry gains ``reclaim`` (reclaim_entry)."""
    instances = {uuid: dict(outcome, reason=in_variables(outcome.get('reason'), variables))
                 for uuid, outcome in adoption['instances'].items()}
    report = {'host': host, 'summary': adoption['summary'], 'instances': instances,
              'nova_conf_settings': adoption.get('nova_conf_settings'),
              'bytes': sum(instance_bytes(outcome) for outcome in instances.values()
                           if outcome.get('result') == 'adopted'),
              'seconds': round(sum(outcome.get('seconds') or 0 for outcome in instances.values()), 3)}
    if prune is not None:
        report['reclaim'] = reclaim_entry(prune, variables)
    return report


def reclaim_entry(prune: Dict[str, Any], variables: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """A host's reclaim part: nova_storage_prune's summary (every action and byte count present), its volumes
    (pool, volume, action, bytes, reason) in RECLAIM_ACTIONS order, and the entries it ignored."""
    given = prune.get('summary') or {}
    summary = {key: given.get(key, 0) for key in RECLAIM_ACTIONS + RECLAIM_BYTES}
    volumes = [dict(entry, reason=in_variables(entry.get('reason'), variables))
               for entry in prune.get('reclaimed') or []]
    volumes.sort(key=lambda entry: (RECLAIM_ACTIONS.index(entry['action']) if entry.get('action') in RECLAIM_ACTIONS
                                    else len(RECLAIM_ACTIONS), entry.get('pool') or '', entry.get('volume') or ''))
    entry = {'summary': summary, 'volumes': volumes, 'ignored': list(prune.get('ignored') or [])}
    if prune.get('failed'):  # the whole task failed (a failed volume's reason is in its entry)
        entry['error'] = in_variables(prune.get('msg') or 'failed', variables)
    return entry


def check_risks(risks: Any) -> List[Dict[str, Any]]:
    """The preflight risks a caller gives, each {severity, host, message, fix}; raises ValueError naming
    what is wrong. ``host`` None: the risk is the play's, not one host's."""
    if risks is None:
        return []
    if not isinstance(risks, list):
        raise ValueError('give a list of {severity, host, message, fix}')
    checked = []
    for index, risk in enumerate(risks):
        if not isinstance(risk, dict) or not isinstance(risk.get('message'), str) or not risk['message']:
            raise ValueError('item %d needs a message' % index)
        unknown = sorted(set(risk) - {'severity', 'host', 'message', 'fix'})
        if unknown:
            raise ValueError('item %d has unknown keys %s' % (index, ', '.join(map(str, unknown))))
        severity = risk.get('severity', 'warning')
        if severity not in SEVERITIES:
            raise ValueError('item %d: severity is one of %s, not %r' % (index, ', '.join(SEVERITIES), severity))
        checked.append({'severity': severity, 'host': None if risk.get('host') is None else str(risk['host']),
                        'message': risk['message'], 'fix': None if risk.get('fix') is None else str(risk['fix'])})
    return sorted(checked, key=lambda risk: (SEVERITIES.index(risk['severity']), risk['host'] or ''))


def totals(reports: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Over every host: instances per result, bytes moved, and the longest host's seconds (hosts of a
    batch adopt in parallel, a host's instances one after another)."""
    counted: Dict[str, Any] = {key: sum(report['summary'].get(key, 0) for report in reports) for key in RESULTS}
    counted.update(hosts=len(reports), bytes=sum(report.get('bytes') or 0 for report in reports),
                   seconds=max([report.get('seconds') or 0 for report in reports] or [0]))
    return counted


def reclaim_totals(reports: List[Dict[str, Any]]) -> Optional[Dict[str, int]]:
    """Over every host with a reclaim part: volumes per action and the bytes; None when no host has one."""
    parts = [report['reclaim'] for report in reports if report.get('reclaim')]
    if not parts:
        return None
    return {key: sum(part['summary'].get(key, 0) for part in parts) for key in RECLAIM_ACTIONS + RECLAIM_BYTES}


def reclaim_line(counted: Dict[str, int]) -> str:
    """``reclaimed: quarantined 1 (40.0 MiB), purged 0 (0 B), restored 0, kept 4, failed 0``."""
    return 'reclaimed: quarantined %d (%s), purged %d (%s), restored %d, kept %d, failed %d' % (
        counted['quarantined'], human_bytes(counted['quarantined_bytes']), counted['purged'],
        human_bytes(counted['purged_bytes']), counted['restored'], counted['kept'], counted['failed'])


def host_status(report: Dict[str, Any]) -> str:
    """failed (an instance failed), attention (one was skipped) or ok."""
    summary = report['summary']
    if summary.get('failed'):
        return 'failed'
    return 'attention' if summary.get('skipped') else 'ok'


def sorted_instances(report: Dict[str, Any]) -> List[Any]:
    """(uuid, outcome) pairs grouped by result (failed first), by uuid within a result."""
    return sorted(report['instances'].items(),
                  key=lambda item: (RESULT_ORDER.index(item[1]['result']) if item[1].get('result') in RESULT_ORDER
                                    else len(RESULT_ORDER), item[0]))


def human_bytes(count: Optional[int]) -> str:
    """``count`` bytes in binary units, one decimal (``12.0 MiB``); plain bytes below 1 KiB."""
    if count is None:
        return '-'
    value = float(count)
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if value < 1024 or unit == 'TiB':
            return '%d B' % count if unit == 'B' else '%.1f %s' % (value, unit)
        value /= 1024
    return '%d B' % count  # not reached


def human_seconds(seconds: float) -> str:
    seconds = float(seconds or 0)
    if seconds < 60:
        return '%.1f s' % seconds
    minutes, rest = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return '%dh %02dm %02ds' % (hours, minutes, rest) if hours else '%dm %02ds' % (minutes, rest)


def nova_conf_lines(settings: Dict[str, Dict[str, Any]]) -> List[str]:
    """``[section] key = value`` per nova.conf value, sorted."""
    return ['[%s] %s = %s' % (section, key, value)
            for section, values in sorted(settings.items()) for key, value in sorted(values.items())]


def _instance_plan_lines(outcome: Dict[str, Any]) -> List[str]:
    """The short per-instance plan of a check-mode report: disks, header rewrites, the domain's changes."""
    lines = ['    %-12s %-12s %10s  -> %s' % (disk.get('name'), disk.get('method'), human_bytes(disk.get('bytes')), disk.get('to'))
             for disk in outcome.get('disks') or []]
    lines += ['    %-12s header gains its backing format (qemu-img rebase -u; header only)' % disk
              for disk in header_rewrites(outcome)]
    diff = minimal_diff(outcome.get('domain_diff'))
    if diff:
        lines.append('    domain XML:')
        lines += ['      ' + line for line in diff]
    return lines


def render_text(reports: List[Dict[str, Any]], plan: bool = False, risks: Optional[List[Dict[str, Any]]] = None,
                name: str = 'transition') -> str:
    """The readable table over ``reports`` (host entries), totals first, nova.conf values last; the volumes
    of the hosts with a reclaim part after the instances.

    ``plan``: a check-mode report, titled as the plan it is, each instance followed by what would change.
    ``name``: the run's name in the title (transition, maintain)."""
    reports = sorted(reports, key=lambda report: report['host'])
    counted = totals(reports)
    reclaimed = reclaim_totals(reports)
    title = ('storagepools.libvirt %s PLAN (check mode, nothing was changed)' % name if plan
             else 'storagepools.libvirt %s report' % name)
    lines = ['%s: %d host(s)' % (title, len(reports)),
             'totals: %s' % ', '.join('%s %d' % (key, counted[key]) for key in RESULTS),
             '%s %s in %s (longest host)' % ('bytes to move:' if plan else 'bytes moved:',
                                             human_bytes(counted['bytes']), human_seconds(counted['seconds']))]
    if reclaimed is not None:
        lines.append(('%s (check mode: what a real run would do)' if plan else '%s') % reclaim_line(reclaimed))
    lines.append('%-20s %-36s %-24s %-16s %10s  %s' % ('host', 'instance', 'domain', 'result', 'bytes', 'reason'))
    for report in reports:
        for uuid, outcome in sorted_instances(report):
            lines.append(('%-20s %-36s %-24s %-16s %10s  %s' % (
                report['host'], uuid, outcome.get('domain') or '-', outcome['result'],
                human_bytes(instance_bytes(outcome)), outcome.get('reason') or '')).rstrip())
            if plan:
                lines += _instance_plan_lines(outcome)
    if reclaimed is not None:
        lines += ['', '%-20s %-24s %-44s %-12s %10s  %s' % ('host', 'pool', 'volume', 'action', 'bytes', 'reason')]
        for report in reports:
            for entry in (report.get('reclaim') or {}).get('volumes') or []:
                lines.append(('%-20s %-24s %-44s %-12s %10s  %s' % (
                    report['host'], entry.get('pool'), entry.get('volume'), entry.get('action'),
                    human_bytes(entry.get('bytes')), entry.get('reason') or '')).rstrip())
            for path in (report.get('reclaim') or {}).get('ignored') or []:
                lines.append('%-20s ignored (not a real directory, nothing it points at counts): %s'
                             % (report['host'], path))
            if (report.get('reclaim') or {}).get('error'):
                lines.append('%-20s prune failed: %s' % (report['host'], report['reclaim']['error']))
    for risk in risks or []:
        lines.append('risk %-8s %s: %s%s' % (risk['severity'], risk['host'] or 'all hosts', risk['message'],
                                             ' (fix: %s)' % risk['fix'] if risk['fix'] else ''))
    for report in reports:
        if report.get('nova_conf_settings'):
            lines += ['', 'nova.conf on %s must hold (then restart nova-compute; storagepools_finalize=true '
                          'removes the legacy files):' % report['host']]
            lines += ['  ' + line for line in nova_conf_lines(report['nova_conf_settings'])]
    return '\n'.join(printable(line) for line in lines) + '\n'
