# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Nova's legacy layout: disk.info, nova.conf, instance directories."""

from __future__ import annotations

import os

import pytest

from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._nova import layout as nova_layout


def test_disk_info_is_read_and_a_missing_one_is_empty(tmp_path):
    assert nova_layout.read_disk_info(str(tmp_path)) == {}
    (tmp_path / 'disk.info').write_text('{"/i/u/disk": "qcow2"}')
    assert nova_layout.read_disk_info(str(tmp_path)) == {'/i/u/disk': 'qcow2'}


@pytest.mark.parametrize('content, reason', [('{not json', 'not JSON'), ('["raw"]', 'not a JSON object')])
def test_a_broken_disk_info_skips_the_instance_rather_than_probing(tmp_path, content, reason):
    (tmp_path / 'disk.info').write_text(content)
    with pytest.raises(nova_layout.Skip) as err:
        nova_layout.read_disk_info(str(tmp_path))
    assert reason in str(err.value)


def test_nova_conf_defaults_and_values(tmp_path):
    missing = nova_layout.NovaConf(str(tmp_path / 'absent.conf'))
    assert missing.force_raw_images is True and missing.remote_filesystem_transport == 'ssh'
    conf = tmp_path / 'nova.conf'
    conf.write_text('[DEFAULT]\nforce_raw_images = False\n[libvirt]\nremote_filesystem_transport = RSYNC\n')
    values = nova_layout.NovaConf(str(conf))
    assert values.force_raw_images is False and values.remote_filesystem_transport == 'rsync'


@pytest.mark.parametrize('content, instances_path', [
    ('[DEFAULT]\ninstances_path = /srv/nova//instances/\n', '/srv/nova/instances'),
    ('[DEFAULT]\nstate_path = /var/lib/nova\n', '/var/lib/nova/instances'),
    ('[DEFAULT]\nstate_path = /srv/n\ninstances_path = ${state_path}/vms\n', '/srv/n/vms'),
    ('[DEFAULT]\ninstances_path = $state_path/instances\n', None),  # rests on $pybasedir: no file says it
    ('[libvirt]\nimages_type = qcow2\n', None),
])
def test_nova_conf_instances_path_as_nova_resolves_it(tmp_path, content, instances_path):
    conf = tmp_path / 'nova.conf'
    conf.write_text(content)
    assert nova_layout.NovaConf(str(conf)).instances_path == instances_path


@pytest.mark.parametrize('content, what', [
    (b'[DEFAULT]\nforce_raw_images = True\n# caf\xe9 (latin-1)\n', 'is not UTF-8 text (line 3'),
    (b'\xff\xfe[\x00D\x00', 'is not UTF-8 text (line 1'),
])
def test_a_nova_conf_that_is_not_utf8_names_the_option_and_the_line(tmp_path, content, what):
    conf = tmp_path / 'nova.conf'
    conf.write_bytes(content)
    with pytest.raises(StoragePoolsError) as err:
        nova_layout.NovaConf(str(conf))
    assert err.value.msg.startswith('nova_conf: ') and what in err.value.msg


def test_a_nova_conf_that_is_a_fifo_or_too_large_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / 'fifo.conf'
    os.mkfifo(str(fifo))
    with pytest.raises(StoragePoolsError) as err:
        nova_layout.NovaConf(str(fifo))
    assert err.value.msg == 'nova_conf: %s is not a regular file' % fifo
    big = tmp_path / 'big.conf'
    with open(str(big), 'wb') as handle:
        handle.write(b'[DEFAULT]\n' + b'#' * nova_layout.NovaConf.MAX_SIZE)
    with pytest.raises(StoragePoolsError) as err:
        nova_layout.NovaConf(str(big))
    assert err.value.msg.startswith('nova_conf: ') and 'larger than' in err.value.msg


def test_an_unparsable_nova_conf_names_the_option(tmp_path):
    conf = tmp_path / 'nova.conf'
    conf.write_text('no section header\n')
    with pytest.raises(StoragePoolsError) as err:
        nova_layout.NovaConf(str(conf))
    assert err.value.msg.startswith('nova_conf: ')


def test_instance_directories_are_those_named_by_a_uuid(tmp_path):
    for name in ('6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b', '_base', 'locks', 'compute_nodes',
                 '6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b_resize'):
        (tmp_path / name).mkdir()
    assert nova_layout.list_instances(str(tmp_path)) == ['6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b']
    with pytest.raises(StoragePoolsError) as err:
        nova_layout.list_instances(str(tmp_path / 'missing'))
    assert err.value.msg.startswith('instances_path: ')
