# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The image cache's planner: functions of what was observed (names, records, overlay headers, nova.conf)."""

from __future__ import annotations

import hashlib

from ansible_collections.storagepools.libvirt.plugins.module_utils._converge import image_cache_plan
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.plan import Plan

SHA1 = hashlib.sha1(b'image').hexdigest()


def test_a_name_nova_never_gives_a_base_is_skipped_saying_so():
    assert image_cache_plan.name_skip_reason(SHA1) is None
    assert image_cache_plan.name_skip_reason(SHA1 + '.part') == 'not a name Nova gives a base (in flight or foreign)'


def test_a_skipped_base_reports_nothing_but_why():
    assert image_cache_plan.skipped('because') == {'result': 'skipped', 'reason': 'because', 'format': None,
                                                   'virtual_size': None, 'volume': None, 'actions': []}


def test_an_overlay_s_backing_file_is_named_as_a_normalised_absolute_path():
    directory = '/var/lib/nova/instances/6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b'
    base = '/var/lib/nova/instances/_base/' + SHA1
    assert image_cache_plan.backing_base(directory, '../_base/' + SHA1) == base
    assert image_cache_plan.backing_base(directory, '/var/lib/nova/instances/./_base//' + SHA1) == base


def test_where_a_format_comes_from_record_then_overlays_then_force_raw_images():
    recorded = {'format': 'qcow2'}
    assert image_cache_plan.format_origin(recorded, {'raw'}, True) == ('qcow2', 'record')
    assert image_cache_plan.format_origin({'format': None}, {'qcow2'}, True) == ('qcow2', 'overlay headers')
    assert image_cache_plan.format_origin(None, set(), True) == ('raw', 'force_raw_images')
    assert image_cache_plan.format_origin(None, set(), False) == (
        None, 'no overlay names its format and nova.conf sets force_raw_images=False')
    assert image_cache_plan.format_origin(None, {'raw', 'qcow2'}, True) == (
        None, 'the overlays that back onto it disagree on its format (qcow2, raw)')


def test_an_import_comes_after_the_in_place_record_then_the_parent_steps():
    plan = Plan()
    plan.add('record', 'record the base', lambda: None)
    imported = Plan()
    imported.add('create', "create rbd image 'b'", lambda: None)
    imported.add('import', "import the base into rbd image 'b'", lambda: None)
    image_cache_plan.add_import(plan, imported, [dict(action='snapshot', detail="protect 'b@base'", do=lambda: None)])
    assert [step.action for step in plan.steps] == ['record', 'create', 'import', 'snapshot']
    result = image_cache_plan.planned_result(dict(image_cache_plan.empty_result(), format='raw'), plan)
    assert result['result'] == 'changed' and result['format'] == 'raw' and len(result['actions']) == 4
    assert image_cache_plan.planned_result(image_cache_plan.empty_result(), Plan())['result'] == 'unchanged'
