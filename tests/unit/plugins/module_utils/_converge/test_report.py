# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The transition report's text table."""

from __future__ import annotations

import re

import pytest
from nova_instance import changed_lines
from test_adopt_plan import observe

from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.adopt import LINK
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.adopt_plan import plan_adoption
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.report import (
    check_risks,
    host_report,
    human_bytes,
    human_seconds,
    minimal_diff,
    render_text,
    totals,
)

MiB = 1024 * 1024
UUID_A, UUID_B = '0b3b6a2b-5a34-4b8e-9d3e-4f8e6f0e2b11', '6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b'


def adoption(instances, settings=None):
    summary = dict((key, sum(1 for item in instances.values() if item['result'] == key))
                   for key in ('adopted', 'already_adopted', 'skipped', 'failed'))
    result = {'summary': summary, 'instances': instances}
    if settings:
        result['nova_conf_settings'] = settings
    return result


def test_totals_rows_sorted_and_the_nova_conf_values_last():
    reports = [
        host_report('compute2', adoption({UUID_B: {'result': 'skipped', 'reason': 'the domain is running'}},
                                         {'libvirt': {'images_type': 'lvm', 'images_volume_group': 'nova-vg'}})),
        host_report('compute1', adoption({UUID_B: {'result': 'adopted', 'reason': None},
                                          UUID_A: {'result': 'already_adopted', 'reason': None}})),
    ]
    lines = render_text(reports).splitlines()
    assert lines[0] == 'storagepools.libvirt transition report: 2 host(s)'
    assert lines[1] == 'totals: adopted 1, already_adopted 1, skipped 1, failed 0'
    assert lines[3].split() == ['host', 'instance', 'domain', 'result', 'bytes', 'reason']
    rows = [line.split()[:4] for line in lines[4:7]]  # grouped by result within a host: what needs a look first
    assert rows == [['compute1', UUID_B, '-', 'adopted'], ['compute1', UUID_A, '-', 'already_adopted'],
                    ['compute2', UUID_B, '-', 'skipped']]
    assert lines[6].endswith('the domain is running')
    assert lines[-3].startswith('nova.conf on compute2 must hold')
    assert lines[-2:] == ['  [libvirt] images_type = lvm', '  [libvirt] images_volume_group = nova-vg']


def test_an_empty_play_is_a_report_too():
    assert render_text([]).splitlines()[:2] == ['storagepools.libvirt transition report: 0 host(s)',
                                                'totals: adopted 0, already_adopted 0, skipped 0, failed 0']


ROLE_VARIABLES = {'running': 'storagepools_running', 'disks_pool': 'storagepools_disks_pool',
                  'force': 'storagepools_force'}


def test_reasons_name_the_role_variables_a_role_passes():
    instances = {UUID_A: {'result': 'skipped', 'reason': 'the domain is running (running: skip)'},
                 UUID_B: {'result': 'failed', 'reason': "disks_pool: pool 'p' is full; force=true would not help"}}
    report = host_report('compute1', adoption(instances), ROLE_VARIABLES)
    assert report['instances'][UUID_A]['reason'] == 'the domain is running (storagepools_running: skip)'
    assert report['instances'][UUID_B]['reason'] == ("storagepools_disks_pool: pool 'p' is full; "
                                                     "storagepools_force=true would not help")
    assert instances[UUID_A]['reason'] == 'the domain is running (running: skip)'  # the module's result stays
    assert host_report('compute1', adoption(instances))['instances'] == instances


def test_only_whole_option_names_are_replaced():
    text = '/srv/running: a path, pre_running: x, my.force: y, running_total: z'
    assert host_report('h', adoption({UUID_A: {'result': 'failed', 'reason': text}}),
                       ROLE_VARIABLES)['instances'][UUID_A]['reason'] == text


def adopted(domain='instance-00000001', diff=None, rebase=False, seconds=1.5, **bytes_per_disk):
    disks = [{'name': name.replace('_', '.'), 'method': 'copy', 'bytes': count, 'to': '/pool/%s' % name}
             for name, count in sorted(bytes_per_disk.items())]
    actions = [{'action': 'copy', 'disk': disk['name']} for disk in disks]
    if rebase:
        actions.append({'action': 'rebase', 'disk': 'disk'})
    return {'result': 'adopted', 'reason': None, 'domain': domain, 'disks': disks, 'actions': actions,
            'domain_diff': diff, 'seconds': seconds}


def test_bytes_and_seconds_add_up_per_host_and_the_longest_host_is_the_duration():
    one = host_report('compute1', adoption({UUID_A: adopted(disk=3 * MiB, disk_local=MiB, seconds=2.0),
                                            UUID_B: dict(adopted(disk=5 * MiB, seconds=1.0), result='failed')}))
    two = host_report('compute2', adoption({UUID_A: adopted(disk=MiB, seconds=7.25)}))
    assert one['bytes'] == 4 * MiB and one['seconds'] == 3.0  # a failed instance moved nothing that stays
    assert totals([one, two]) == {'hosts': 2, 'adopted': 2, 'already_adopted': 0, 'skipped': 0, 'failed': 1,
                                  'bytes': 5 * MiB, 'seconds': 7.25}
    assert render_text([one, two]).splitlines()[2] == 'bytes moved: 5.0 MiB in 7.2 s (longest host)'


# the canonical diff of data/nova-instance.xml adopted (see test_adopt_plan): three context lines around each change
DOMAIN_DIFF = '''\
--- domain instance-00000001 (before)
+++ domain instance-00000001 (after)
@@ -40,7 +40,10 @@
     <disk device="disk" type="file">
       <driver cache="none" name="qemu" type="qcow2"/>
-      <source file="/var/lib/nova/instances/u/disk"/>
+      <source file="/var/lib/nova/disks/u_disk"/>
+      <backingStore type="file">
+        <format type="raw"/>
+      </backingStore>
       <target bus="virtio" dev="vda"/>
@@ -60,3 +63,3 @@
       <driver cache="none" name="qemu" type="raw"/>
-      <source file="/var/lib/nova/instances/u/disk.local"/>
+      <source file="/var/lib/nova/disks/u_disk.local"/>
       <target bus="virtio" dev="vdb"/>
'''


def test_the_minimal_diff_keeps_only_the_changed_lines():
    assert minimal_diff(DOMAIN_DIFF) == [  # dedented: the six spaces every changed line has are gone
        '-<source file="/var/lib/nova/instances/u/disk"/>', '+<source file="/var/lib/nova/disks/u_disk"/>',
        '+<backingStore type="file">', '+  <format type="raw"/>', '+</backingStore>', '...',
        '-<source file="/var/lib/nova/instances/u/disk.local"/>', '+<source file="/var/lib/nova/disks/u_disk.local"/>']
    assert minimal_diff(None) == [] and minimal_diff('') == []


def test_the_minimal_diff_of_a_real_plan_is_its_changed_lines():
    plan = plan_adoption(observe(LINK), 'nova-disks-pool', 'file')
    kept = [line for line in minimal_diff(plan.domain_diff()) if line != '...']
    assert [line[0] + line[1:].strip() for line in kept] == [
        line[0] + line[1:].strip() for line in changed_lines(plan.domain_diff())] and kept
    assert len(minimal_diff(plan.domain_diff())) < len(plan.domain_diff().splitlines())


def test_a_plan_is_titled_so_and_lists_per_instance_disks_header_rewrites_and_the_domain_changes():
    report = host_report('compute1', adoption({UUID_A: adopted(diff=DOMAIN_DIFF, rebase=True, disk=2 * MiB)}))
    text = render_text([report], plan=True)
    lines = text.splitlines()
    assert lines[0] == 'storagepools.libvirt transition PLAN (check mode, nothing was changed): 1 host(s)'
    assert lines[2].startswith('bytes to move: 2.0 MiB')
    assert lines[4].split()[:4] == ['compute1', UUID_A, 'instance-00000001', 'adopted']
    assert lines[5].split() == ['disk', 'copy', '2.0', 'MiB', '->', '/pool/disk']
    assert 'disk         header gains its backing format' in lines[6]
    assert lines[7] == '    domain XML:'
    assert lines[8:] == ['      ' + line for line in minimal_diff(DOMAIN_DIFF)]
    assert 'domain XML' not in render_text([report])  # the real run's table stays a table


def test_control_characters_from_a_hostile_name_never_reach_the_terminal():
    report = host_report('compute1', adoption({UUID_A: {'result': 'skipped', 'reason': 'bad \x1b[2J\nname\x07'}}))
    text = render_text([report])
    assert '\x1b' not in text and '\x07' not in text and 'bad \\x1b[2J\\x0aname\\x07' in text
    assert len(text.splitlines()) == 5  # the newline in the reason made no row of its own


@pytest.mark.parametrize('risks, message', [
    ({'message': 'x'}, 'give a list'),
    ([{'severity': 'warning'}], 'item 0 needs a message'),
    ([{'message': 'x', 'severity': 'fatal'}], "severity is one of blocking, warning, info, not 'fatal'"),
    ([{'message': 'x', 'sevrity': 'info'}], 'item 0 has unknown keys sevrity'),
])
def test_wrong_risks_are_refused_naming_what_is_wrong(risks, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        check_risks(risks)


def test_risks_come_blocking_first_and_are_in_the_text():
    risks = check_risks([{'message': 'tmpfs', 'severity': 'info', 'host': 'compute2'},
                         {'message': 'too small', 'severity': 'blocking', 'host': 'compute1', 'fix': 'grow it'},
                         {'message': 'old libvirt'}])
    assert [(risk['severity'], risk['message']) for risk in risks] == [
        ('blocking', 'too small'), ('warning', 'old libvirt'), ('info', 'tmpfs')]
    lines = render_text([], risks=risks).splitlines()
    assert lines[-3:] == ['risk blocking compute1: too small (fix: grow it)', 'risk warning  all hosts: old libvirt',
                          'risk info     compute2: tmpfs']


def test_sizes_and_durations_read_as_people_say_them():
    assert [human_bytes(count) for count in (None, 0, 1023, 1024, 5 * MiB // 2, 3 * 1024 ** 4, 2048 * 1024 ** 4)] == [
        '-', '0 B', '1023 B', '1.0 KiB', '2.5 MiB', '3.0 TiB', '2048.0 TiB']
    assert [human_seconds(seconds) for seconds in (0, 59.94, 61, 3725)] == ['0.0 s', '59.9 s', '1m 01s', '1h 02m 05s']


PRUNE = {'summary': {'kept': 1, 'quarantined': 1, 'purged': 1, 'quarantined_bytes': 2 * MiB, 'purged_bytes': MiB},
         'reclaimed': [{'pool': 'disks', 'volume': UUID_A + '_disk', 'action': 'kept', 'bytes': MiB,
                        'reason': 'orphan: ...; orphans is false'},
                       {'pool': 'disks', 'volume': UUID_B + '_disk.local', 'action': 'purged', 'bytes': MiB,
                        'reason': 'quarantine expired at 2026-01-01T00:00:00Z'},
                       {'pool': 'disks', 'volume': UUID_B + '_disk', 'action': 'quarantined', 'bytes': 2 * MiB,
                        'reason': 'orphan: no domain, instance directory or record uses it'}],
         'ignored': ['/var/lib/nova/instances/' + UUID_B]}


def test_a_maintain_report_lists_every_volume_reclaimed_first_with_the_bytes():
    report = host_report('compute1', adoption({UUID_A: {'result': 'already_adopted', 'reason': None}}), None, PRUNE)
    reclaim = report['reclaim']
    assert [entry['action'] for entry in reclaim['volumes']] == ['quarantined', 'purged', 'kept']
    assert reclaim['summary'] == {'failed': 0, 'quarantined': 1, 'purged': 1, 'restored': 0, 'kept': 1,
                                  'quarantined_bytes': 2 * MiB, 'purged_bytes': MiB, 'restored_bytes': 0}
    lines = render_text([report], name='maintain').splitlines()
    assert lines[0] == 'storagepools.libvirt maintain report: 1 host(s)'
    assert lines[3] == 'reclaimed: quarantined 1 (2.0 MiB), purged 1 (1.0 MiB), restored 0, kept 1, failed 0'
    rows = [line.split(None, 5) for line in lines if line.startswith('compute1') and 'disks' in line]
    assert [(row[2], row[3]) for row in rows] == [(UUID_B + '_disk', 'quarantined'), (UUID_B + '_disk.local', 'purged'),
                                                  (UUID_A + '_disk', 'kept')]
    assert rows[0][5].endswith('orphan: no domain, instance directory or record uses it')
    assert any('ignored' in line and UUID_B in line for line in lines)
    assert 'reclaimed:' not in render_text([host_report('compute1', adoption({}))])  # a transition report: none


def test_a_failed_prune_is_named_in_the_report_in_role_variables():
    failed = {'failed': True, 'msg': 'peers: instances_path /x is on a shared filesystem', 'reclaimed': []}
    report = host_report('compute1', adoption({}), {'peers': 'storagepools_prune_peers'}, failed)
    assert report['reclaim']['error'].startswith('storagepools_prune_peers: instances_path /x')
    assert 'compute1             prune failed: storagepools_prune_peers: ' in render_text([report], name='maintain')
