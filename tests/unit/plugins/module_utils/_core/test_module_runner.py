# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The common end of every module: errors become fail_json (never a traceback), bulk items fail alone.

run_module is tried with a real AnsibleModule (ansible's own patch_module_args gives it its arguments)."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import (
    OptionError,
    StoragePoolsError,
    error_text,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.module import (
    each_item,
    run_module,
    summarise,
)


class LibvirtStyleError(Exception):
    """An exception carrying its own words the way libvirtError does (get_error_message)."""

    def __init__(self, words):
        super().__init__('the long form: %s' % words)
        self.words = words

    def get_error_message(self):
        return self.words


def test_an_error_result_holds_the_message_libvirts_words_and_the_details():
    error = StoragePoolsError('target.path: not a directory', libvirt_error='cannot open', actions=[])
    assert error.result() == {'msg': 'target.path: not a directory', 'libvirt_error': 'cannot open', 'actions': []}
    assert StoragePoolsError('plain').result() == {'msg': 'plain'}


def test_an_option_error_names_its_option_first():
    error = OptionError('source.format', 'unknown format', hint='raw or qcow2')
    expected = ('source.format', 'source.format: unknown format', {'hint': 'raw or qcow2'})
    assert (error.option, error.msg, error.details) == expected
    assert isinstance(error, StoragePoolsError)


def test_error_text_prefers_libvirts_own_words():
    assert error_text(LibvirtStyleError('pool is busy')) == 'pool is busy'
    assert error_text(LibvirtStyleError('')) == 'the long form: '  # no words of its own: its str()
    assert error_text(ValueError('bad value')) == 'bad value'


def test_each_item_fails_one_item_and_goes_on_with_the_others():
    def handle(item):
        if item == 'lost':
            raise StoragePoolsError('disk: gone', libvirt_error='no such file')
        if item == 'plain':
            raise StoragePoolsError('disk: refused')
        if item == 'oserror':
            raise OSError(5, 'Input/output error')
        if item == 'named':
            raise FileNotFoundError(2, 'No such file or directory', '/var/lib/nova/instances/x/disk')
        if item == 'libvirt':
            raise LibvirtStyleError('domain not found')
        return {'result': 'adopted', 'disks': [item]}

    items = ['ok', 'lost', 'plain', 'oserror', 'named', 'libvirt']
    results = each_item(items, handle, {'disks': []})
    assert list(results) == items
    assert results['ok'] == {'result': 'adopted', 'disks': ['ok']}
    reasons = {item: result['reason'] for item, result in results.items() if item != 'ok'}
    assert reasons == {
        'lost': 'disk: gone: no such file',
        'plain': 'disk: refused',
        'oserror': 'item oserror: Input/output error',
        'named': '/var/lib/nova/instances/x/disk: No such file or directory',
        'libvirt': 'domain not found',
    }
    assert all(results[item]['result'] == 'failed' and results[item]['disks'] == [] for item in reasons)
    assert summarise(results, ['adopted', 'failed', 'skipped']) == {'adopted': 1, 'failed': 5, 'skipped': 0}


def module_run(capsys, run, missing_libraries=None, **failure_defaults):
    """Run run_module in a real AnsibleModule: (exit code, the JSON it printed)."""
    with patch_module_args({'name': 'pool-1'}), pytest.raises(SystemExit) as exited:
        module = AnsibleModule(argument_spec={'name': {'type': 'str'}})
        run_module(module, run, missing_libraries, **failure_defaults)
    return exited.value.code, json.loads(capsys.readouterr().out)


def test_a_result_is_exited_with(capsys):
    code, result = module_run(capsys, lambda module: {'changed': True, 'name': module.params['name']})
    assert code == 0 and result['changed'] is True and result['name'] == 'pool-1'


def test_a_storagepools_error_becomes_fail_json_with_its_details_over_the_defaults(capsys):
    def run(module):
        raise StoragePoolsError('target.path: exists', libvirt_error='File exists', actions=['define'])

    code, result = module_run(capsys, run, actions=[], rolled_back=[])
    assert code == 1 and result['failed'] is True
    assert (result['msg'], result['libvirt_error']) == ('target.path: exists', 'File exists')
    assert (result['actions'], result['rolled_back']) == (['define'], [])
    assert 'exception' not in result


def test_missing_bindings_fail_before_anything_runs(capsys):
    def run(module):
        raise AssertionError('must not run without the bindings')

    code, result = module_run(capsys, run, lambda: 'the libvirt Python bindings are missing', actions=[])
    assert code == 1 and result['msg'] == 'the libvirt Python bindings are missing' and result['actions'] == []
    code, result = module_run(capsys, lambda module: {'changed': False}, lambda: None)
    assert code == 0 and result['changed'] is False
