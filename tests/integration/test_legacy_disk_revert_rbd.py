# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""legacy_disk_adopt state: reverted of an rbd cutover before finalize, on real Ceph and the real libvirtd."""

from __future__ import annotations

import os
import subprocess

import pytest
from conftest import start_module
from test_rbd_cutover import XML_FLAGS, adopt, host, switch_nova_conf  # noqa: F401  # pylint: disable=unused-import


def revert(host, check=False, diff=False, **args):
    return adopt(host, check=check, state='reverted', **args)


def instance_images(ceph, instance):
    return sorted(image for image in ceph.rbd_ls() if image.startswith(instance))


def disk_info(host, instance):
    with open(os.path.join(host.instances, instance, 'disk.info'), 'rb') as handle:
        return handle.read()


def test_an_rbd_import_is_reverted_onto_the_unchanged_legacy_files(conn, ceph, host):
    instance = host.instance()
    before = host.checksums(instance)
    legacy_xml = conn.lookupByUUIDString(instance).XMLDesc(XML_FLAGS)
    info = disk_info(host, instance)
    files = {name: os.stat(path) for name, path in host.disk_paths(instance).items()}
    assert adopt(host)['instances'][instance]['result'] == 'adopted'
    assert len(instance_images(ceph, instance)) == 3

    check = revert(host, check=True)
    planned = check['instances'][instance]
    assert check['changed'] is True and planned['result'] == 'reverted', check
    assert len(instance_images(ceph, instance)) == 3, 'check mode removed an image'
    assert [step['action'] for step in planned['actions']] == ['domain'] + ['remove'] * 3

    result = revert(host)
    outcome = result['instances'][instance]
    assert outcome['result'] == 'reverted' and outcome['actions'] == planned['actions'], result
    assert outcome['domain_diff'] == planned['domain_diff']
    assert conn.lookupByUUIDString(instance).XMLDesc(XML_FLAGS) == legacy_xml
    assert instance_images(ceph, instance) == []
    assert host.checksums(instance) == before and disk_info(host, instance) == info
    for name, path in host.disk_paths(instance).items():
        assert os.stat(path).st_mtime_ns == files[name].st_mtime_ns and os.stat(path).st_ino == files[name].st_ino
    assert revert(host)['instances'][instance]['result'] == 'not_adopted'

    again = adopt(host, check=True)  # after the revert, check mode of the import and the real run agree
    imported = adopt(host)
    assert imported['instances'][instance]['result'] == again['instances'][instance]['result'] == 'adopted'
    assert imported['instances'][instance]['actions'] == again['instances'][instance]['actions']


def test_an_image_the_guest_wrote_since_its_import_is_kept(conn, ceph, host):
    instance = host.instance(config=False)
    assert adopt(host)['instances'][instance]['result'] == 'adopted'
    image = '%s/%s_disk.local' % (ceph.pool, instance)
    target = 'rbd:%s:id=admin:conf=%s:keyring=%s' % (image, ceph.conf, ceph.env['CEPH_ADMIN_KEYRING'])
    subprocess.run(['qemu-io', '-f', 'raw', '-c', 'write -P 0x66 1M 64k', target], check=True, capture_output=True)
    on_rbd = conn.lookupByUUIDString(instance).XMLDesc(XML_FLAGS)
    for check in (True, False):
        outcome = revert(host, check=check)['instances'][instance]
        assert outcome['result'] == 'skipped' and 'ran on it since its import' in outcome['reason'], outcome
    assert conn.lookupByUUIDString(instance).XMLDesc(XML_FLAGS) == on_rbd
    assert len(instance_images(ceph, instance)) == 2


def test_after_finalize_a_revert_is_refused(conn, ceph, host):
    instance = host.instance(config=False)
    result = adopt(host)
    switch_nova_conf(host, result['nova_conf_settings'])
    assert adopt(host, finalize=True)['instances'][instance]['result'] == 'adopted'
    outcome = revert(host)['instances'][instance]
    assert outcome['result'] == 'skipped' and 'is gone (removed by finalize?)' in outcome['reason'], outcome
    assert len(instance_images(ceph, instance)) == 2


@pytest.mark.parametrize('step', ['domain:1', 'remove:1', 'remove:3'])
def test_sigkill_during_an_rbd_revert_then_rerun_converges(conn, ceph, host, step):
    instance = host.instance()
    before = host.checksums(instance)
    legacy_xml = conn.lookupByUUIDString(instance).XMLDesc(XML_FLAGS)
    assert adopt(host)['instances'][instance]['result'] == 'adopted'
    args = dict(instances_path=host.instances, disks_pool=host.rbd_pool, ceph_keyring=host.keyring,
                state_dir=host.state_dir, nova_conf=host.nova_conf, state='reverted')
    killed = start_module('legacy_disk_adopt', args, {'STORAGEPOOLS_KILL_AT': step})
    killed.communicate()
    assert killed.returncode == -9, 'the module was not killed at %s' % step
    assert revert(host)['instances'][instance]['result'] == 'reverted'
    assert revert(host)['instances'][instance]['result'] == 'not_adopted'
    assert conn.lookupByUUIDString(instance).XMLDesc(XML_FLAGS) == legacy_xml
    assert instance_images(ceph, instance) == [] and host.checksums(instance) == before
