# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The no-op record's key: the code as zipped, the task, libvirt's answers; and who may have written it."""

from __future__ import annotations

import os
import zipfile
import zipimport

from ansible_collections.storagepools.libvirt.plugins.module_utils._core.noop_memo import NoopMemo, code_digest

ANSWERS = ["<pool type='dir'><name>p</name></pool>", True, True, "<pool type='dir'><name>p</name></pool>"]


def payload(path, files, date_time=(2026, 1, 1, 0, 0, 0)):
    with zipfile.ZipFile(path, 'w') as archive:
        for name, text in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time), text)
    return {'__loader__': zipimport.zipimporter(str(path))}


CODE = {'ansible/module_utils/basic.py': 'x = 1\n',
        'ansible_collections/storagepools/libvirt/plugins/modules/virt_pool_ensure.py': 'y = 2\n'}


def test_the_code_digest_is_the_zipped_code_and_nothing_else(tmp_path):
    digest = code_digest(payload(tmp_path / 'a.zip', CODE))
    assert digest is not None
    assert code_digest(payload(tmp_path / 'b.zip', CODE, date_time=(2027, 2, 2, 2, 2, 2))) == digest  # rebuilt
    bootstrap = dict(CODE, **{'sitecustomize.py': 'per run\n'})
    assert code_digest(payload(tmp_path / 'c.zip', bootstrap)) == digest  # AnsiballZ's per-run bootstrap
    changed = dict(CODE, **{'ansible_collections/storagepools/libvirt/plugins/modules/virt_pool_ensure.py': 'y = 3\n'})
    assert code_digest(payload(tmp_path / 'd.zip', changed)) != digest
    added = dict(CODE, **{'ansible/module_utils/new.py': ''})
    assert code_digest(payload(tmp_path / 'e.zip', added)) != digest


def test_a_module_outside_a_zip_keeps_no_record():
    assert code_digest({'__loader__': None}) is None
    assert code_digest(globals()) is None


def memo(state_dir, task=('options',)):
    return NoopMemo(str(state_dir), ['qemu:///system', 'p'], 'code', list(task))


def test_a_record_is_found_only_for_the_same_task_and_answers(tmp_path):
    memo(tmp_path).store(ANSWERS, {'changed': False})
    assert memo(tmp_path).lookup(ANSWERS) == {'changed': False}
    assert memo(tmp_path).lookup(ANSWERS[:2] + [False, ANSWERS[3]]) is None
    assert memo(tmp_path, task=('other options',)).lookup(ANSWERS) is None
    assert NoopMemo(str(tmp_path), ['qemu:///system', 'p'], 'other code', ['options']).lookup(ANSWERS) is None
    records = os.listdir(tmp_path / 'noop')
    assert len(records) == 1 and os.stat(tmp_path / 'noop' / records[0]).st_mode & 0o777 == 0o600


def test_a_record_is_forgotten_with_its_pool(tmp_path):
    memo(tmp_path).store(ANSWERS, {'changed': False})
    memo(tmp_path).forget()
    assert os.listdir(tmp_path / 'noop') == [] and memo(tmp_path).lookup(ANSWERS) is None
    memo(tmp_path).forget()  # nothing to forget: no error
    memo(tmp_path / 'missing').forget()


def test_a_record_others_could_write_or_that_is_no_record_is_ignored(tmp_path):
    memo(tmp_path).store(ANSWERS, {'changed': False})
    record = tmp_path / 'noop' / os.listdir(tmp_path / 'noop')[0]
    os.chmod(record, 0o620)
    assert memo(tmp_path).lookup(ANSWERS) is None
    os.chmod(record, 0o600)
    record.write_text('{not json')
    assert memo(tmp_path).lookup(ANSWERS) is None
    os.unlink(record)
    os.symlink('/etc/hostname', record)
    assert memo(tmp_path).lookup(ANSWERS) is None


def test_an_unusable_state_dir_keeps_no_record_and_fails_nothing(tmp_path):
    blocked = tmp_path / 'file'
    blocked.write_text('')
    memo(blocked).store(ANSWERS, {'changed': False})
    os.chmod(tmp_path, 0o777)
    try:
        memo(tmp_path).store(ANSWERS, {'changed': False})
        assert not (tmp_path / 'noop').exists()
    finally:
        os.chmod(tmp_path, 0o755)
