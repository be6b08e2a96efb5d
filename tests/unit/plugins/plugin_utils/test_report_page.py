# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""transition-report.html as markup: every value escaped, nothing external, the plan marked as a plan
(tests/integration/test_report_html.py opens a real run's page in Chromium)."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser

import pytest

from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.report import check_risks, host_report
from ansible_collections.storagepools.libvirt.plugins.plugin_utils.report_html import (
    SCRIPT,
    STYLE,
    Markup,
    element,
    render_html,
)

UUID_A, UUID_B = '0b3b6a2b-5a34-4b8e-9d3e-4f8e6f0e2b11', '6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b'
HOSTILE = '"><script>alert(1)</script><img src=x onerror=alert(2)>{{ lookup("pipe", "id") }}&amp;'


class Page(HTMLParser):
    """Every start tag with its attributes, and the text of each element by id."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.tags, self.text = [], []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def adoption(instances, settings=None):
    summary = {key: sum(1 for item in instances.values() if item['result'] == key)
               for key in ('adopted', 'already_adopted', 'skipped', 'failed')}
    return {'summary': summary, 'instances': instances, 'nova_conf_settings': settings}


def reports(domain='instance-00000001', reason='the domain is running (running: skip)', diff=None):
    return [
        host_report('compute1', adoption({
            UUID_A: {'result': 'adopted', 'domain': domain, 'seconds': 2.5, 'domain_diff': diff,
                     'disks': [{'name': 'disk', 'method': 'copy', 'bytes': 3 << 20, 'to': '/pool/%s_disk' % UUID_A}],
                     'actions': [{'action': 'copy', 'disk': 'disk'}, {'action': 'rebase', 'disk': 'disk'}]},
            UUID_B: {'result': 'skipped', 'reason': reason, 'domain': 'instance-00000002'}})),
        host_report('compute2', adoption({UUID_B: {'result': 'failed', 'reason': 'disks_pool: full'}},
                                         {'libvirt': {'images_type': 'lvm', 'images_volume_group': 'nova-vg'}})),
    ]


def test_values_the_nova_user_chose_are_text_never_markup():
    diff = '--- a\n+++ b\n@@ -1 +1 @@\n-<source file="%s"/>\n+<source file="/pool/x"/>\n' % HOSTILE
    risks = check_risks([{'message': HOSTILE, 'host': HOSTILE, 'fix': HOSTILE}])
    page = render_html(reports(domain=HOSTILE, reason=HOSTILE, diff=diff), plan=True, risks=risks, generated=HOSTILE)
    parsed = Page(page)
    assert [tag for tag, _attrs in parsed.tags if tag in ('img', 'iframe', 'object')] == []
    assert [tag for tag, _attrs in parsed.tags].count('script') == 1  # the page's own sorter only
    assert not [attrs for _tag, attrs in parsed.tags if any(name.startswith('on') for name in attrs)]
    text = ''.join(parsed.text)
    assert text.count(HOSTILE) >= 5  # shown as it is: domain, reason, risk message, host and fix, ...
    assert '-<source file="%s"/>' % HOSTILE in text  # ... and in the diff


def test_a_control_character_is_shown_not_written():
    page = render_html(reports(reason='a\x1b[31mred\x00'))
    assert '\x1b' not in page and '\x00' not in page and 'a\\x1b[31mred\\x00' in page


def test_nothing_external_and_a_policy_that_allows_only_the_page_own_style_and_script():
    page = render_html(reports(), risks=[])
    parsed = Page(page)
    for _tag, attrs in parsed.tags:
        for name in ('src', 'href'):
            assert not attrs.get(name) or attrs[name].startswith('#'), attrs
    assert not re.search(r'url\(|@import|https?://', STYLE + SCRIPT)
    policy = [attrs['content'] for tag, attrs in parsed.tags if attrs.get('http-equiv') == 'Content-Security-Policy']
    assert len(policy) == 1 and "default-src 'none'" in policy[0]
    for inline in (STYLE, SCRIPT):
        digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
        assert "'sha256-%s'" % digest in policy[0] and inline in page


def test_the_page_has_every_host_and_instance_grouped_by_result_with_numbers_right_aligned():
    page = render_html(reports())
    parsed = Page(page)
    rows = [(attrs['data-uuid'], attrs['data-result']) for tag, attrs in parsed.tags
            if tag == 'tr' and 'data-uuid' in attrs]
    assert rows == [(UUID_B, 'skipped'), (UUID_A, 'adopted'), (UUID_B, 'failed')]  # per host, failed/skipped first
    hosts = [(attrs['data-host'], attrs['data-status']) for tag, attrs in parsed.tags
             if tag == 'tr' and 'data-status' in attrs]
    assert hosts == [('compute1', 'attention'), ('compute2', 'failed')]
    assert 'instance-00000002' in page and '3.0 MiB' in page
    numeric = [attrs for tag, attrs in parsed.tags if tag == 'td' and 'data-sort' in attrs and 'num' in attrs.get('class', '')]
    assert len(numeric) >= 2 * 6 + 3 * 2  # the hosts table's counts, bytes, seconds; each instance's bytes, seconds
    assert '[libvirt] images_type = lvm\n[libvirt] images_volume_group = nova-vg' in page
    assert 'PLAN' not in page and 'rebase' not in page  # a real run's page: no plan details


def test_a_plan_is_titled_and_bannered_as_one_and_shows_the_header_rewrite_and_the_changed_lines_only():
    diff = '--- a\n+++ b\n@@ -1,3 +1,3 @@\n <disk>\n-<source file="/old"/>\n+<source file="/new"/>\n </disk>\n'
    page = render_html(reports(diff=diff), plan=True)
    parsed = Page(page)
    assert '<title>PLAN: storagepools.libvirt transition (check mode)</title>' in page
    assert ('div', {'class': 'banner', 'id': 'plan-banner'}) in parsed.tags
    assert 'header of disk gains its backing format' in page
    assert '<span class="del">-&lt;source file=&quot;/old&quot;/&gt;</span>' in page
    assert '&lt;disk&gt;' not in page  # context lines are left out
    assert 'would adopt' in page and 'would skip' in page


def test_the_page_of_no_host_says_so():
    parsed = Page(render_html([]))
    assert 'No preflight risks were given for this run.' in ''.join(parsed.text)
    assert ('section', {'class': 'cards', 'id': 'summary'}) in parsed.tags


@pytest.mark.parametrize('tag, attributes', [('scr ipt', {}), ('td', {'on click': 'x'}), ('td', {'x"': 'y'})])
def test_only_plain_names_can_be_tags_or_attributes(tag, attributes):
    with pytest.raises(ValueError):
        element(tag, **attributes)


def test_only_markup_made_here_passes_unescaped():
    assert element('td', '<b>', Markup('<i>x</i>'), ['&', None]) == '<td>&lt;b&gt;<i>x</i>&amp;</td>'
    assert element('td', title='"x"', hidden=True, data_sort=0) == '<td title="&quot;x&quot;" hidden data-sort="0"></td>'


def test_reclaimed_volumes_are_text_and_the_plan_says_would():
    prune = {'summary': {'quarantined': 1, 'quarantined_bytes': 1 << 20},
             'reclaimed': [{'pool': HOSTILE, 'volume': HOSTILE, 'action': 'quarantined', 'bytes': 1 << 20,
                            'reason': HOSTILE}], 'ignored': [HOSTILE]}
    entries = [host_report('compute1', adoption({}), None, prune)]
    page = render_html(entries, plan=True, name='maintain')
    parsed = Page(page)
    assert [tag for tag, _attrs in parsed.tags if tag in ('img', 'iframe', 'object')] == []
    assert not [attrs for _tag, attrs in parsed.tags if any(name.startswith('on') for name in attrs)]
    assert ''.join(parsed.text).count(HOSTILE) >= 4  # pool, volume, reason, ignored
    assert '<title>PLAN: storagepools.libvirt maintain (check mode)</title>' in page
    assert 'would quarantine' in page and 'maintain-report.html' in page
    assert 'would quarantine' not in render_html(entries, name='maintain')
