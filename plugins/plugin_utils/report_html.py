# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""transition-report.html: the transition report as one self-contained page (inline CSS and a few lines of
inline JavaScript for sorting; no external script, style, font or image, so it opens on an air-gapped host).

Every value is text: ``element`` escapes each child and attribute value it is given (html.escape), and only
what ``element`` itself made (``Markup``) passes through unescaped, so an instance name, path or reason the
nova user chose can never become markup. Tag and attribute names come from this file only. The page's
Content-Security-Policy allows nothing but its own inline style and script (by their sha256), so even a
value that got through could load nothing.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from typing import Any, Dict, Iterable, List, Optional

from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.report import (
    RESULTS,
    header_rewrites,
    host_status,
    human_bytes,
    human_seconds,
    instance_bytes,
    minimal_diff,
    nova_conf_lines,
    printable,
    reclaim_totals,
    sorted_instances,
    totals,
)

_NAME = re.compile(r'[a-z][a-z0-9-]*\Z')
VOID = frozenset(('meta', 'br'))
RESULT_LABELS = {'adopted': 'adopted', 'already_adopted': 'already adopted', 'skipped': 'skipped', 'failed': 'failed'}
PLAN_LABELS = {'adopted': 'would adopt', 'already_adopted': 'already adopted', 'skipped': 'would skip',
               'failed': 'would fail'}
RECLAIM_LABELS = {'quarantined': 'quarantined', 'purged': 'purged', 'restored': 'restored', 'kept': 'kept',
                  'failed': 'failed'}
RECLAIM_PLAN_LABELS = {'quarantined': 'would quarantine', 'purged': 'would purge', 'restored': 'would restore',
                       'kept': 'kept', 'failed': 'failed'}
STATUS_LABELS = {'ok': 'ok', 'attention': 'needs a look', 'failed': 'failed'}
METHODS = {'link': 'hard link on the same filesystem: nothing is copied',
           'copy': 'copied to the pool, verified byte for byte, then the legacy file goes',
           'live-copy': 'block copy of the running guest, then pivot',
           'rbd-import': 'imported as a raw rbd image, compared with its source',
           'lvm-import': 'imported into a logical volume, compared with its source'}


class Markup(str):
    """Markup ``element`` made: the only text written into the page unescaped."""


def _text(child: Any) -> str:
    if isinstance(child, Markup):
        return child
    return html.escape(printable(child, keep='\n'), quote=True)


def element(tag: str, *children: Any, **attributes: Any) -> Markup:
    """``<tag attributes>children</tag>``; children and attribute values escaped unless Markup, lists of
    children flattened, None left out. ``class_`` gives ``class``; ``data_x`` gives ``data-x``."""
    if not _NAME.match(tag):
        raise ValueError('not an HTML tag name: %r' % tag)
    parts = []
    for name, value in attributes.items():
        if value is None or value is False:
            continue
        name = name.rstrip('_').replace('_', '-')
        if not _NAME.match(name):
            raise ValueError('not an HTML attribute name: %r' % name)
        parts.append(' %s' % name if value is True else ' %s="%s"' % (name, html.escape(printable(value), quote=True)))
    opening = '<%s%s>' % (tag, ''.join(parts))
    if tag in VOID:
        return Markup(opening)
    return Markup(opening + ''.join(_text(child) for child in _flatten(children)) + '</%s>' % tag)


def _flatten(children: Iterable[Any]) -> Iterable[Any]:
    for child in children:
        if isinstance(child, (list, tuple)):
            yield from _flatten(child)
        elif child is not None:
            yield child


STYLE = '''
:root { --ink: #1d2330; --muted: #5b6476; --line: #d9dee7; --band: #f4f6fa; --ok: #1f7a3f; --ok-bg: #e3f4e8;
  --warn: #8a5a00; --warn-bg: #fff1cc; --bad: #a61b1b; --bad-bg: #fde2e2; --info: #1b4f9c; --info-bg: #e2ecfb;
  --plan: #5b2ea6; --plan-bg: #efe7fd; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; font: 14px/1.45 system-ui, -apple-system, "Segoe UI",
  "DejaVu Sans", "Liberation Sans", Arial, sans-serif; }
header.top { padding: 18px 28px 14px; background: #1d2330; color: #fff; }
header.top h1 { margin: 0; font-size: 21px; font-weight: 600; letter-spacing: .2px; }
header.top p { margin: 4px 0 0; color: #b9c1d1; font-size: 13px; }
.banner { padding: 10px 28px; background: var(--plan-bg); color: var(--plan); border-bottom: 2px solid var(--plan);
  font-weight: 600; }
main { padding: 8px 28px 40px; max-width: 1500px; }
h2 { font-size: 17px; margin: 26px 0 10px; }
h2 .sub { color: var(--muted); font-weight: 400; font-size: 13px; margin-left: 8px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin-top: 18px; }
.card { min-width: 128px; padding: 10px 14px; border: 1px solid var(--line); border-radius: 8px; background: var(--band); }
.card .value { font-size: 24px; font-weight: 650; font-variant-numeric: tabular-nums; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .4px; }
.card.failed { background: var(--bad-bg); border-color: #f3b4b4; } .card.failed .value { color: var(--bad); }
.card.skipped { background: var(--warn-bg); border-color: #f0d58a; } .card.skipped .value { color: var(--warn); }
.card.adopted { background: var(--ok-bg); border-color: #a9dcb9; } .card.adopted .value { color: var(--ok); }
table { border-collapse: collapse; width: 100%; margin: 6px 0 4px; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--band); font-size: 12px; text-transform: uppercase; letter-spacing: .4px; color: var(--muted);
  white-space: nowrap; }
th.sortable { cursor: pointer; user-select: none; } th.sortable::after { content: " \\2195"; color: #a0a8b8; }
tbody tr:hover { background: #f9fafc; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.uuid, code, pre { font-family: ui-monospace, "DejaVu Sans Mono", "Liberation Mono", Menlo, monospace; font-size: 12.5px; }
.domain { display: block; color: var(--muted); font-size: 12px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600;
  white-space: nowrap; }
.badge.failed, .badge.blocking { background: var(--bad-bg); color: var(--bad); }
.badge.skipped, .badge.attention, .badge.warning { background: var(--warn-bg); color: var(--warn); }
.badge.adopted, .badge.ok { background: var(--ok-bg); color: var(--ok); }
.badge.already_adopted, .badge.info { background: var(--info-bg); color: var(--info); }
.badge.quarantined, .badge.purged { background: var(--warn-bg); color: var(--warn); }
.badge.restored { background: var(--ok-bg); color: var(--ok); } .badge.kept { background: var(--band); color: var(--muted); }
tr.has-detail td { border-bottom: none; }
tr.detail td { padding-top: 0; padding-left: 26px; }
tr.failed td:first-child { box-shadow: inset 3px 0 var(--bad); }
tr.skipped td:first-child { box-shadow: inset 3px 0 #e0a800; }
.zero { color: #b4bac6; }
.reason { max-width: 520px; }
.disks { margin: 0; padding: 0; list-style: none; }
.disks li { white-space: nowrap; }
.disks .method { color: var(--muted); }
.rewrite { color: var(--plan); font-size: 12.5px; }
details { margin-top: 4px; } summary { cursor: pointer; color: var(--info); font-size: 12.5px; }
pre.diff { margin: 4px 0 0; padding: 6px 8px; background: var(--band); border-radius: 6px; overflow-x: auto; }
pre.diff .add { color: var(--ok); } pre.diff .del { color: var(--bad); } pre.diff .gap { color: #a0a8b8; }
.empty { color: var(--muted); font-style: italic; }
pre.conf { margin: 4px 0 10px; padding: 8px 10px; background: var(--band); border-left: 3px solid var(--info); }
footer { margin-top: 30px; color: var(--muted); font-size: 12px; }
'''

# sorts a table by the clicked column: a cell's data-sort (numbers) or its text
SCRIPT = '''
document.querySelectorAll('th.sortable').forEach(function (th) {
  th.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0], index = th.cellIndex;
    var down = th.dataset.order !== 'asc';
    th.dataset.order = down ? 'asc' : 'desc';
    var key = function (group) {
      var cell = group[0].cells[index];
      return cell.dataset.sort !== undefined ? parseFloat(cell.dataset.sort) : cell.textContent.trim().toLowerCase();
    };
    var groups = [];  // a row with the detail rows after it
    Array.prototype.forEach.call(body.rows, function (row) {
      if (row.classList.contains('detail') && groups.length) { groups[groups.length - 1].push(row); }
      else { groups.push([row]); }
    });
    groups.sort(function (a, b) {
      var x = key(a), y = key(b);
      return (x < y ? -1 : x > y ? 1 : 0) * (down ? 1 : -1);
    }).forEach(function (group) { group.forEach(function (row) { body.appendChild(row); }); });
  });
});
document.body.dataset.sorting = 'on';
'''


def _sha256(text: str) -> str:
    return "'sha256-%s'" % base64.b64encode(hashlib.sha256(text.encode('utf-8')).digest()).decode('ascii')


CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src %s; script-src %s; img-src 'none'; form-action 'none'; "
                           "base-uri 'none'" % (_sha256(STYLE), _sha256(SCRIPT)))


def _number(count: Optional[float], shown: Optional[str] = None) -> Markup:
    """A right-aligned cell sorted by ``count``; a zero is greyed."""
    shown = ('%d' % count if count is not None else '-') if shown is None else shown
    return element('td', shown, class_='num zero' if not count else 'num', data_sort=count or 0)


def _bytes_cell(count: Optional[int]) -> Markup:
    cell = human_bytes(count) if count else ('0' if count == 0 else '-')
    return element('td', cell, class_='num zero' if not count else 'num', data_sort=count or 0,
                   title='%d bytes' % count if count else None)


def _sortable(label: str, numeric: bool = False) -> Markup:
    return element('th', label, class_='sortable num' if numeric else 'sortable')


def _badge(kind: str, label: str) -> Markup:
    return element('span', label, class_='badge %s' % kind)


def _summary_cards(counted: Dict[str, Any], plan: bool, reclaimed: Optional[Dict[str, int]] = None) -> Markup:
    labels = PLAN_LABELS if plan else RESULT_LABELS
    cards = [('hosts', counted['hosts'], 'hosts')]
    cards += [(key, counted[key], labels[key]) for key in RESULTS]
    cards += [('bytes', human_bytes(counted['bytes']), 'bytes to move' if plan else 'bytes moved'),
              ('seconds', human_seconds(counted['seconds']), 'planned in (longest host)' if plan else 'duration (longest host)')]
    if reclaimed is not None:
        reclaim_labels = RECLAIM_PLAN_LABELS if plan else RECLAIM_LABELS
        cards += [('reclaim-%s' % key, reclaimed[key], 'volumes %s' % reclaim_labels[key])
                  for key in ('quarantined', 'purged', 'restored', 'failed')]
        cards += [('reclaim-%s_bytes' % action, human_bytes(reclaimed['%s_bytes' % action]),
                   'bytes %s' % reclaim_labels[action]) for action in ('quarantined', 'purged')]
    return element('section', [element('div', element('div', value, class_='value'), element('div', label, class_='label'),
                                       class_='card %s' % key if key in RESULTS and value else 'card', id='total-%s' % key)
                               for key, value, label in cards], class_='cards', id='summary')


def _hosts_table(reports: List[Dict[str, Any]], plan: bool) -> Markup:
    labels = PLAN_LABELS if plan else RESULT_LABELS
    head = element('tr', _sortable('host'), _sortable('status'), [_sortable(labels[key], True) for key in RESULTS],
                   _sortable('bytes', True), _sortable('seconds', True))
    rows = []
    for index, report in enumerate(reports):
        status = host_status(report)
        rows.append(element(
            'tr', element('td', element('a', report['host'], href='#host-%d' % index)),
            element('td', _badge(status, STATUS_LABELS[status]), data_sort=('failed', 'attention', 'ok').index(status)),
            [_number(report['summary'].get(key, 0)) for key in RESULTS],
            _bytes_cell(report.get('bytes')), _number(report.get('seconds'), human_seconds(report.get('seconds'))),
            class_='host', data_host=report['host'], data_status=status))
    return element('table', element('thead', head), element('tbody', rows), id='hosts')


def _risks(risks: List[Dict[str, Any]]) -> Markup:
    if not risks:
        return element('p', 'No preflight risks were given for this run.', class_='empty', id='risks')
    head = element('tr', _sortable('severity'), _sortable('host'), element('th', 'risk'), element('th', 'what removes it'))
    rows = [element('tr', element('td', _badge(risk['severity'], risk['severity'])),
                    element('td', risk['host'] or 'all hosts'), element('td', risk['message']),
                    element('td', risk['fix'] or '-'), class_='risk %s' % risk['severity'])
            for risk in risks]
    return element('table', element('thead', head), element('tbody', rows), id='risks')


def _nova_conf(reports: List[Dict[str, Any]]) -> List[Markup]:
    hosts = [report for report in reports if report.get('nova_conf_settings')]
    if not hosts:
        return [element('p', 'Nothing to change in nova.conf: file pools keep Nova\'s paths working through the links.',
                        class_='empty', id='nova-conf')]
    parts = [element('p', 'Set these in nova.conf, restart nova-compute, then run the transition again with '
                          'storagepools_finalize=true to remove the legacy files.')]
    for report in hosts:
        parts += [element('h3', report['host']),
                  element('pre', '\n'.join(nova_conf_lines(report['nova_conf_settings'])), class_='conf',
                          data_host=report['host'])]
    return [element('div', parts, id='nova-conf')]


def _diff(lines: List[str]) -> Markup:
    spans = []
    for line in lines:
        kind = {'+': 'add', '-': 'del'}.get(line[:1], 'gap')
        spans += [element('span', line, class_=kind), '\n']
    return element('pre', spans, class_='diff')


def _disks(outcome: Dict[str, Any]) -> Markup:
    items = [element('li', element('code', disk.get('name')), ' ',
                     element('span', disk.get('method') or '-', class_='method', title=METHODS.get(disk.get('method'))),
                     ' ', human_bytes(disk.get('bytes')) if disk.get('bytes') else '',
                     title=disk.get('to'))
             for disk in outcome.get('disks') or []]
    return element('ul', items, class_='disks') if items else Markup('')


def _plan_details(outcome: Dict[str, Any]) -> List[Markup]:
    parts = [element('div', 'header of %s gains its backing format (qemu-img rebase -u, header only)' % disk,
                     class_='rewrite') for disk in header_rewrites(outcome)]
    diff = minimal_diff(outcome.get('domain_diff'))
    if diff:
        parts.append(element('details', element('summary', 'domain XML: %d changed line(s)' % sum(
            1 for line in diff if line != '...')), _diff(diff), open=True))
    return parts


def _reclaim_section(report: Dict[str, Any], plan: bool) -> List[Markup]:
    """The host's volumes: what nova_storage_prune did (would do) with each, and why."""
    reclaim = report.get('reclaim')
    if reclaim is None:
        return []
    labels = RECLAIM_PLAN_LABELS if plan else RECLAIM_LABELS
    summary = reclaim['summary']
    parts = [element('h3', 'Reclaimed volumes', element('span', '%d quarantined (%s), %d purged (%s), %d restored, '
                                                        '%d kept, %d failed' % (
                                                            summary['quarantined'], human_bytes(summary['quarantined_bytes']),
                                                            summary['purged'], human_bytes(summary['purged_bytes']),
                                                            summary['restored'], summary['kept'], summary['failed']),
                                                        class_='sub'))]
    if reclaim.get('error'):
        parts.append(element('p', 'prune failed: %s' % reclaim['error'], class_='reclaim-error'))
    head = element('tr', _sortable('pool'), _sortable('volume'), _sortable('action'), _sortable('bytes', True),
                   element('th', 'reason'))
    rows = [element('tr', element('td', entry.get('pool')), element('td', element('code', entry.get('volume'))),
                    element('td', _badge(entry.get('action') or '', labels.get(entry.get('action'), entry.get('action')))),
                    _bytes_cell(entry.get('bytes')), element('td', entry.get('reason') or '', class_='reason'),
                    class_='volume %s' % entry.get('action'), data_volume=entry.get('volume'),
                    data_action=entry.get('action'))
            for entry in reclaim['volumes']]
    parts.append(element('table', element('thead', head), element('tbody', rows), class_='reclaim') if rows
                 else element('p', 'No volumes in the disks pool.', class_='empty'))
    parts += [element('p', 'ignored (not a real directory; nothing it points at counts): ', element('code', path),
                      class_='ignored') for path in reclaim.get('ignored') or []]
    return parts


def _host_section(index: int, report: Dict[str, Any], plan: bool) -> Markup:
    labels = PLAN_LABELS if plan else RESULT_LABELS
    head = element('tr', _sortable('instance'), _sortable('result'), element('th', 'reason'),
                   element('th', 'disks (method, bytes)'), _sortable('bytes', True), _sortable('seconds', True))
    rows = []
    for uuid, outcome in sorted_instances(report):
        result = outcome.get('result')
        details = _plan_details(outcome) if plan else []
        rows.append(element(
            'tr',
            element('td', element('span', uuid, class_='uuid'), element('span', outcome.get('domain') or '', class_='domain')),
            element('td', _badge(result, labels.get(result, result)),
                    data_sort=RESULTS.index(result) if result in RESULTS else len(RESULTS)),
            element('td', outcome.get('reason') or '', class_='reason'),
            element('td', _disks(outcome)),
            _bytes_cell(instance_bytes(outcome)),
            _number(outcome.get('seconds'), human_seconds(outcome.get('seconds'))),
            class_='instance %s%s' % (result, ' has-detail' if details else ''), data_uuid=uuid, data_result=result))
        if details:  # the plan of the instance, full width under its row (sorted with it)
            rows.append(element('tr', element('td', details, colspan=6), class_='detail %s' % result,
                                data_uuid=uuid, data_result=result))
    body = (element('table', element('thead', head), element('tbody', rows)) if rows
            else element('p', 'No instances on this host.', class_='empty'))
    status = host_status(report)
    return element('section', element('h2', report['host'], ' ', _badge(status, STATUS_LABELS[status]),
                                      element('span', ', '.join('%d %s' % (report['summary'].get(key, 0), labels[key])
                                                                for key in RESULTS), class_='sub')),
                   body, _reclaim_section(report, plan), class_='host', id='host-%d' % index, data_host=report['host'])


def render_html(reports: List[Dict[str, Any]], plan: bool = False, risks: Optional[List[Dict[str, Any]]] = None,
                generated: str = '', name: str = 'transition') -> str:
    """The page over ``reports`` (host entries of report.host_report), ``risks`` (report.check_risks).

    ``plan``: a check-mode report, titled and bannered as the plan it is. ``name``: the run's name in the
    title and in the file names it mentions (transition, maintain)."""
    reports = sorted(reports, key=lambda report: report['host'])
    counted = totals(reports)
    title = ('PLAN: storagepools.libvirt %s (check mode)' % name if plan
             else 'storagepools.libvirt %s report' % name)
    head = element('head', element('meta', charset='utf-8'),
                   element('meta', http_equiv='Content-Security-Policy', content=CONTENT_SECURITY_POLICY),
                   element('meta', name='viewport', content='width=device-width, initial-scale=1'),
                   element('title', title), element('style', Markup(STYLE)))
    top = element('header', element('h1', title),
                  element('p', '%d host(s), %d instance(s)%s' % (
                      counted['hosts'], sum(counted[key] for key in RESULTS),
                      ', generated %s' % generated if generated else '')), class_='top')
    banner = (element('div', 'PLAN: this is what a real run would do. Check mode changed nothing; the last real '
                             'report (%s-report.html) is unchanged.' % name, class_='banner', id='plan-banner')
              if plan else None)
    main = element('main', _summary_cards(counted, plan, reclaim_totals(reports)),
                   element('h2', 'Hosts', element('span', 'click a column to sort', class_='sub')),
                   _hosts_table(reports, plan),
                   element('h2', 'Preflight risks'), _risks(risks or []),
                   element('h2', 'nova.conf values to set'), _nova_conf(reports),
                   [_host_section(index, report, plan) for index, report in enumerate(reports)],
                   element('footer', 'Methods: ', '; '.join('%s: %s' % item for item in METHODS.items()), '.'))
    body = element('body', top, banner, main, element('script', Markup(SCRIPT)),
                   class_='plan' if plan else 'report')
    return '<!DOCTYPE html>\n' + element('html', head, body, lang='en') + '\n'
