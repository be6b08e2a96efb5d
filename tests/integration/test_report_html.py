# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""transition-report.html of a real run of the transition playbook, opened in a real browser (Debian's
headless Chromium): the rendered DOM holds every host and instance with its result, the page loads nothing
from outside, and a screenshot is left under tests/output/ for a person to look at. Then a check-mode run's
transition-plan.html, beside the real report and never over it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from html.parser import HTMLParser

import pytest
from conftest import REPO
from test_roles import fleet, run_playbook  # noqa: F401  # pylint: disable=unused-import

OUTPUT = os.path.join(REPO, 'tests', 'output')
CHROMIUM_TIMEOUT = 120
# ENVIRONMENT.md's flags: no sandbox (root), and nothing in the background that would go to the network
CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                  '--disable-background-networking', '--disable-component-update', '--disable-sync',
                  '--hide-scrollbars']


def chromium(workdir, *arguments):
    """Run headless Chromium with a fresh profile; its stdout (the console, where a Content-Security-Policy
    violation or a script error would show, is asserted empty)."""
    binary = shutil.which('chromium')
    assert binary, "Debian's chromium is not installed: run scripts/setup.sh"
    profile = os.path.join(workdir, 'chromium-%s' % uuid.uuid4().hex[:8])
    os.mkdir(profile)
    proc = subprocess.run([binary] + CHROMIUM_FLAGS + ['--enable-logging=stderr', '--v=0',
                                                       '--user-data-dir=%s' % profile] + list(arguments),
                          capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [line for line in proc.stderr.splitlines() if ':CONSOLE' in line] == []
    return proc.stdout


class RenderedDom(HTMLParser):
    """The DOM Chromium dumped: its start tags, and the text of each table row by its data-uuid/data-host."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.tags, self.rows, self.current = [], {}, None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == 'tr' and ('data-uuid' in attrs or 'data-status' in attrs):
            key = ('instance', attrs['data-uuid'], attrs['data-result']) if 'data-uuid' in attrs else \
                ('host', attrs['data-host'], attrs['data-status'])
            self.current = self.rows.setdefault(key, [])

    def handle_endtag(self, tag):
        if tag == 'tr':
            self.current = None

    def handle_data(self, data):
        if self.current is not None:
            self.current.append(data)

    def row(self, *key):
        return ' '.join(' '.join(self.rows[key]).split())


def open_in_browser(workdir, page, screenshot):
    """The rendered DOM of ``page``, checked for outside references; the screenshot saved and printed."""
    dom = chromium(workdir, '--dump-dom', 'file://' + page)
    rendered = RenderedDom(dom)
    for tag, attrs in rendered.tags:
        for name in ('src', 'href', 'action', 'srcset', 'poster', 'data'):
            assert not attrs.get(name) or attrs[name].startswith('#'), (tag, attrs)
        if tag == 'link':
            pytest.fail('the page links %r' % attrs)
    assert 'url(' not in dom and '@import' not in dom
    assert ('body', {'class': 'plan' if 'plan' in os.path.basename(page) else 'report', 'data-sorting': 'on'}) in rendered.tags  # ran
    os.makedirs(OUTPUT, exist_ok=True)
    path = os.path.join(OUTPUT, screenshot)
    if os.path.lexists(path):
        os.unlink(path)
    chromium(workdir, '--screenshot=%s' % path, '--window-size=1400,1000', 'file://' + page)
    assert os.path.getsize(path) > 10000  # a rendered page, not a blank one
    print('screenshot of %s: %s' % (os.path.basename(page), path))
    return rendered


def test_the_html_report_of_a_real_run_and_the_plan_of_a_check_mode_run_in_a_browser(
        installed, fleet, workdir, loop_device):
    hosts, inventory = fleet
    # compute1's disks pool on a filesystem of its own: its disks are copied (bytes moved), the others linked
    other_fs = os.path.join(workdir, 'compute1-disks')
    os.mkdir(other_fs)
    subprocess.run(['mount', loop_device('mkfs.ext4', size_mib=128), other_fs], check=True, capture_output=True)
    with open(inventory) as handle:
        lines = handle.read().replace('storagepools_disks_path=%s/compute1/disks' % workdir,
                                      'storagepools_disks_path=%s/disks' % other_fs)
    with open(inventory, 'w') as handle:
        handle.write(lines)
    orphan = str(uuid.uuid4())  # an instance directory libvirt has no domain for: skipped, with its reason
    os.mkdir(os.path.join(hosts['compute2'].instances, orphan))

    report_dir = os.path.join(workdir, 'report')
    code, out = run_playbook(installed, 'transition', inventory, '-e', 'storagepools_batch=3',
                             '-e', 'storagepools_report_dir=%s' % report_dir)
    assert code == 0, out
    page = os.path.join(report_dir, 'transition-report.html')
    assert oct(os.stat(page).st_mode & 0o777) == '0o644'
    with open(os.path.join(report_dir, 'transition-report.json')) as handle:
        report = {entry['host']: entry for entry in json.load(handle)}
    assert report['compute1']['bytes'] > 0 and report['compute0']['bytes'] == 0  # copied vs hard-linked

    dom = open_in_browser(workdir, page, 'transition-report.png')
    for name, nova in hosts.items():
        status = 'attention' if name == 'compute2' else 'ok'
        assert dom.row('host', name, status).startswith(name), dom.rows.keys()
        for instance in nova.uuids:
            row = dom.row('instance', instance, 'adopted')
            domain = '%s-%s' % (nova.prefix, instance[:8])
            assert row.startswith('%s %s adopted' % (instance, domain)), row
            assert ('disk copy' if name == 'compute1' else 'disk link') in row, row
    assert 'libvirt has no domain with this uuid' in dom.row('instance', orphan, 'skipped')
    assert dom.row('host', 'compute1', 'ok').split()[2:6] == ['2', '0', '0', '0']

    # check mode after new instances appeared (one an overlay whose header lacks its backing format): the plan
    real = {name: open(os.path.join(report_dir, name), 'rb').read() for name in os.listdir(report_dir)}
    planned = {name: nova.instance(config=False, backing_format=None if name == 'compute0' else 'raw')
               for name, nova in hosts.items()}
    code, out = run_playbook(installed, 'transition', inventory, '--check', '--diff', '-e', 'storagepools_batch=3',
                             '-e', 'storagepools_report_dir=%s' % report_dir)
    assert code == 0, out
    assert {name: open(os.path.join(report_dir, name), 'rb').read() for name in real} == real
    plan_page = os.path.join(report_dir, 'transition-plan.html')
    dom = open_in_browser(workdir, plan_page, 'transition-plan.png')
    assert ('div', {'class': 'banner', 'id': 'plan-banner'}) in dom.tags
    for name, instance in planned.items():
        row = dom.row('instance', instance, 'adopted')
        assert 'would adopt' in row and 'domain XML' in row, row
        assert ('header of disk gains its backing format' in row) == (name == 'compute0'), row
        assert '<source file="%s/%s/disk"/>' % (hosts[name].instances, instance) in row, row
        for old in hosts[name].uuids:
            assert 'already adopted' in dom.row('instance', old, 'already_adopted')
    for nova, instance in zip(hosts.values(), planned.values()):
        assert not os.path.islink(os.path.join(nova.instances, instance, 'disk'))  # check mode changed nothing
