# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The transition report's text table."""

from __future__ import annotations

from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.report import host_report, render_text

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
    rows = [line.split()[:3] for line in lines[4:7]]
    assert rows == [['compute1', UUID_A, 'already_adopted'], ['compute1', UUID_B, 'adopted'],
                    ['compute2', UUID_B, 'skipped']]
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
