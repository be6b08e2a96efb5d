# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which of an instance's disks are legacy disks, and every reason one is skipped.

The instance directories are real directories with real qemu-img images; the
domain documents are written the way ``virsh dumpxml --inactive`` writes a
Nova guest's.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess

import pytest

from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._nova import layout
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.domain import DomainDocument

UUID = '0f5a3c5e-8c1b-4d8e-9a55-3c1d2b4e6f70'
BASE = 'a' * 40
MiB = 1024 * 1024

DOMAIN = """<domain type='kvm'>
  <name>instance-00000001</name>
  <uuid>%(uuid)s</uuid>
  <memory unit='KiB'>524288</memory>
  <os>
    <type arch='x86_64' machine='pc-i440fx-8.2'>hvm</type>
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
%(disks)s
    <interface type='bridge'>
      <source bridge='br-int'/>
      <model type='virtio'/>
    </interface>
  </devices>
</domain>
"""

DISK = """    <disk type='file' device='disk'>
      <driver name='qemu' type='%(format)s' cache='none'/>
      <source file='%(path)s'/>
      <target dev='%(target)s' bus='virtio'/>
    </disk>"""


def qemu_img(*args):
    subprocess.run(('qemu-img',) + args, check=True, capture_output=True)


def strip_backing_format(path):
    """An overlay as qemu before 6.1 wrote them, with no backing format in the header (qemu-img no longer makes
    one): the backing-format header extension becomes a type qemu ignores."""
    with open(path, 'r+b') as handle:
        header = handle.read(4096)
        handle.seek(header.index(struct.pack('>I', 0xE2792ACA)))
        handle.write(struct.pack('>I', 0x6E6F6E65))


class Host:
    """An instances_path with one instance directory, ``_base`` and a nova-style pool directory."""

    def __init__(self, root):
        self.instances = root / 'instances'
        self.directory = self.instances / UUID
        self.base_dir = self.instances / '_base'
        self.pool = root / 'pool'
        for path in (self.directory, self.base_dir, self.pool):
            path.mkdir(parents=True)
        self.disks = []
        self.disk_info = {}

    def base(self, name=BASE, image_format='raw'):
        path = self.base_dir / name
        qemu_img('create', '-f', image_format, str(path), '16M')
        return str(path)

    def disk(self, name, image_format='qcow2', target='vda', backing=None, backing_format='raw', record=True,
             domain_format=None):
        path = self.directory / name
        if backing is None:
            qemu_img('create', '-f', image_format, str(path), '16M')
        else:
            qemu_img('create', '-f', 'qcow2', '-b', backing, '-F', backing_format or 'raw', str(path), '16M')
            if not backing_format:
                strip_backing_format(path)
        self.disks.append(DISK % {'format': domain_format or image_format, 'path': path, 'target': target})
        if record:
            self.disk_info[str(path)] = image_format
        return str(path)

    def document(self):
        (self.directory / 'disk.info').write_text(json.dumps(self.disk_info))
        return DomainDocument(DOMAIN % {'uuid': UUID, 'disks': '\n'.join(self.disks)})

    def legacy(self, force_raw_images=True):
        conf = self.instances.parent / 'nova.conf'
        conf.write_text('[DEFAULT]\nforce_raw_images = %s\n' % force_raw_images)
        document = self.document()
        with layout.InstanceFiles(str(self.instances), UUID) as files:
            disks = layout.legacy_disks(UUID, files, document, layout.NovaConf(str(conf)), str(self.pool))
            try:
                return [(disk.name, disk.target, disk.format, disk.backing, disk.backing_format,
                         disk.needs_backing_format, disk.moved) for disk in disks]
            finally:
                layout.close_disks(disks)

    def skipped(self, **kwargs):
        with pytest.raises(layout.Skip) as raised:
            self.legacy(**kwargs)
        return str(raised.value)


@pytest.fixture
def host(tmp_path):
    return Host(tmp_path)


def test_an_overlay_and_a_raw_disk_are_legacy_disks_with_their_recorded_formats(host):
    base = host.base()
    host.disk('disk', backing=base)
    host.disk('disk.local', image_format='raw', target='vdb')
    assert host.legacy() == [('disk', 'vda', 'qcow2', base, 'raw', False, False),
                             ('disk.local', 'vdb', 'raw', None, None, False, False)]


def test_an_overlay_without_a_backing_format_gets_raw_where_nova_forces_raw_images(host):
    host.disk('disk', backing=host.base(), backing_format=None)
    assert host.legacy()[0][4:6] == ('raw', True)
    assert 'force_raw_images=False' in host.skipped(force_raw_images=False)


def test_disks_outside_the_instance_directory_are_not_legacy_disks(host):
    host.disks.append(DISK % {'format': 'raw', 'path': '/var/lib/libvirt/images/other.img', 'target': 'vdc'})
    assert host.legacy() == []


@pytest.mark.parametrize('change, reason', [
    (dict(record=False), 'disk.info has no entry'),
    (dict(domain_format='raw'), "disk.info says qcow2, the domain's <driver type> says raw"),
    (dict(image_format='vmdk'), 'this version adopts raw and qcow2 disks'),
])
def test_a_disk_whose_format_is_not_recorded_consistently_is_skipped(host, change, reason):
    host.disk('disk', **change)
    assert reason in host.skipped()


def test_a_disk_without_a_driver_type_is_skipped(host):
    host.disk('disk')
    host.disks[-1] = host.disks[-1].replace(" type='qcow2'", '')
    assert 'has no <driver type>' in host.skipped()


def test_a_disk_name_nova_does_not_use_is_skipped(host):
    host.disk('root.img')
    assert 'not a Nova disk name' in host.skipped()


def test_a_missing_disk_is_skipped(host):
    os.unlink(host.disk('disk'))
    assert 'is missing' in host.skipped()


def test_a_symlinked_disk_is_followed_only_to_its_own_pool_volume(host):
    path = host.disk('disk', image_format='raw')
    os.rename(path, host.pool / ('%s_disk' % UUID))
    os.symlink(host.pool / ('%s_disk' % UUID), path)
    assert host.legacy() == [('disk', 'vda', 'raw', None, None, False, True)]
    os.unlink(path)
    os.symlink('/etc/shadow', path)
    assert 'not to its pool volume' in host.skipped()


def test_a_disk_that_is_a_directory_is_skipped(host):
    path = host.disk('disk', image_format='raw')
    os.unlink(path)
    os.mkdir(path)
    assert 'is not a regular file' in host.skipped()


def test_an_overlay_backing_onto_anything_but_a_base_in_base_is_skipped(host, tmp_path):
    elsewhere = tmp_path / 'elsewhere.raw'
    qemu_img('create', '-f', 'raw', str(elsewhere), '16M')
    host.disk('disk', backing=str(elsewhere))
    assert 'outside %s' % host.base_dir in host.skipped()


def test_an_overlay_backing_onto_a_base_with_a_name_nova_never_gives_is_skipped(host):
    host.disk('disk', backing=host.base(name='not-a-hash'))
    assert 'which is not a base of' in host.skipped()


def test_an_overlay_whose_base_is_missing_or_a_symlink_is_skipped(host):
    base = host.base()
    host.disk('disk', backing=base)
    os.unlink(base)
    assert 'which is missing' in host.skipped()
    os.symlink('/etc/shadow', base)
    assert 'which is a symlink' in host.skipped()


def test_a_base_with_a_backing_file_of_its_own_is_skipped(host, tmp_path):
    deeper = tmp_path / 'deeper.raw'
    qemu_img('create', '-f', 'raw', str(deeper), '16M')
    base = str(host.base_dir / BASE)
    qemu_img('create', '-f', 'qcow2', '-b', str(deeper), '-F', 'raw', base, '16M')
    host.disk('disk', backing=base, backing_format='qcow2')
    assert 'refused as a qcow2 base' in host.skipped()


def test_a_base_declared_raw_that_is_qcow2_is_skipped(host):
    host.disk('disk', backing=host.base(image_format='qcow2'), backing_format='raw')
    assert 'refused as a raw base' in host.skipped()


def test_a_vmdk_base_is_skipped(host):
    host.disk('disk', backing=host.base(image_format='vmdk'), backing_format='vmdk')
    assert 'backs onto a vmdk base' in host.skipped()


def test_a_disk_recorded_as_qcow2_that_is_raw_is_skipped(host):
    path = host.disk('disk', image_format='raw', record=False)
    host.disk_info[path] = 'qcow2'
    host.disks[-1] = host.disks[-1].replace("type='raw'", "type='qcow2'")
    assert 'is recorded as qcow2 but' in host.skipped()


def test_an_instance_directory_or_base_that_is_a_symlink_is_not_opened(tmp_path):
    instances = tmp_path / 'instances'
    (tmp_path / 'real').mkdir()
    instances.mkdir()
    os.symlink(tmp_path / 'real', instances / UUID)
    with pytest.raises(layout.Skip) as raised:
        layout.InstanceFiles(str(instances), UUID)
    assert 'is a symlink' in str(raised.value)
    os.unlink(instances / UUID)
    (instances / UUID).mkdir()
    os.symlink(tmp_path / 'real', instances / '_base')
    with pytest.raises(layout.Skip) as raised:
        layout.InstanceFiles(str(instances), UUID)
    assert '_base is a symlink' in str(raised.value)


def test_an_instance_without_base_has_no_base_to_open(tmp_path):
    (tmp_path / UUID).mkdir()
    with layout.InstanceFiles(str(tmp_path), UUID) as files:
        assert files.base_fd is None
        assert files.lstat('disk') is None
        with pytest.raises(layout.Skip) as raised:
            files.open_base(os.path.join(str(tmp_path), '_base', BASE))
        assert 'which is missing' in str(raised.value)
    assert files.fd is None


def test_a_disk_info_that_is_a_symlink_or_not_utf8_skips_the_instance(tmp_path):
    os.symlink('/etc/hostname', tmp_path / 'disk.info')
    with pytest.raises(layout.Skip) as raised:
        layout.read_disk_info(str(tmp_path))
    assert 'disk.info is a symlink' in str(raised.value)
    os.unlink(tmp_path / 'disk.info')
    (tmp_path / 'disk.info').write_bytes(b'{"\xff": 1}')
    with pytest.raises(layout.Skip) as raised:
        layout.read_disk_info(str(tmp_path))
    assert 'not UTF-8' in str(raised.value)


def test_listing_instances_of_a_missing_instances_path_names_the_option(tmp_path):
    with pytest.raises(StoragePoolsError) as raised:
        layout.list_instances(str(tmp_path / 'missing'))
    assert raised.value.msg.startswith('instances_path: cannot list')


@pytest.mark.parametrize('exc_errno, words', [(40, 'is a symlink'), (22, 'is not a regular file'),
                                              (13, 'cannot be opened: Permission denied')])
def test_why_a_file_was_not_opened_is_said_in_an_operators_words(exc_errno, words):
    assert layout.why_not_opened(OSError(exc_errno, os.strerror(exc_errno))) == words


def test_why_a_directory_was_not_opened_is_said_in_an_operators_words():
    assert layout.why_directory_not_opened(OSError(20, os.strerror(20))) == 'is a symlink'
    assert layout.why_directory_not_opened(OSError(13, os.strerror(13))) == 'cannot be opened: Permission denied'


def test_nova_conf_settings_adoption_reads(tmp_path):
    conf = tmp_path / 'nova.conf'
    conf.write_text('[DEFAULT]\nforce_raw_images = False\n[libvirt]\nremote_filesystem_transport = RSYNC\n')
    settings = layout.NovaConf(str(conf))
    assert settings.found and not settings.force_raw_images
    assert settings.remote_filesystem_transport == 'rsync'
    missing = layout.NovaConf(str(tmp_path / 'none.conf'))
    assert not missing.found and missing.force_raw_images and missing.remote_filesystem_transport == 'ssh'
