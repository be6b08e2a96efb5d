# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One backend per pool type, chosen by backend_for, on pools of libvirt's in-process test driver."""

from __future__ import annotations

import libvirt
import pytest

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.base import (
    BACKENDS,
    StorageBackend,
    backend_class,
    backend_for,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.file import FileBackend
from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.logical import LogicalBackend
from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.rbd import RbdBackend
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.pool import Endpoint
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.domain import DomainDocument
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.volume import VolumeDefinition

INSTANCE = '6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b'
SECRET = '4a5e7c1d-2b3f-4e60-8a7b-9c0d1e2f3a4b'


@pytest.fixture
def conn():
    connection = libvirt.open('test:///default')  # a fresh in-memory driver per open
    yield connection
    for started_pool in connection.listAllStoragePools(0):  # the driver keeps its state for the whole process
        if started_pool.name() != 'default-pool':
            started_pool.destroy()
    connection.close()


def started(conn, xml):
    """An active pool of the test driver defined from libvirt XML (the driver touches no disk)."""
    return conn.storagePoolCreateXML(xml, 0)


def rbd_pool_xml(name, auth=True):
    secret = "<auth type='ceph' username='nova'><secret uuid='%s'/></auth>" % SECRET if auth else ''
    return ("<pool type='rbd'><name>%s</name><source><name>vms</name><host name='10.0.0.1' port='6789'/>"
            "<host name='10.0.0.2'/>%s</source></pool>" % (name, secret))


def test_every_pool_type_this_collection_writes_has_a_backend_class():
    assert backend_class('dir') is backend_class('fs') is backend_class('netfs') is FileBackend
    assert backend_class('logical') is LogicalBackend and backend_class('rbd') is RbdBackend
    assert backend_class('iscsi') is None
    assert all(issubclass(backend_class(kind), StorageBackend) for kind in BACKENDS)


def test_a_dir_pool_gets_the_file_backend(conn, tmp_path):
    started(conn, "<pool type='dir'><name>files</name><target><path>%s</path></target></pool>" % tmp_path)
    backend = backend_for(Endpoint(conn, 'files', 'pool'))
    assert isinstance(backend, FileBackend) and backend.pool_name == 'files'
    assert backend.location('v.img') == backend.qemu_target('v.img') == str(tmp_path / 'v.img')
    assert backend.existing('v.img') is None and backend.compares_as_files()
    backend.define(VolumeDefinition('v.img', 1024 * 1024, 'raw'))  # the test driver keeps it in memory
    volume, record = backend.existing('v.img')
    assert volume.name() == 'v.img' and record is None
    backend.remove('v.img')
    assert backend.volume('v.img') is None
    assert backend.where() == backend.space_where() == "pool 'files' (%s)" % tmp_path


def test_a_pool_type_without_backend_is_refused_naming_the_option(conn):
    started(conn, "<pool type='iscsi'><name>lun</name><source><host name='10.0.0.3'/>"
                  "<device path='iqn.2013-06.com.example:iscsi-pool'/></source>"
                  "<target><path>/dev/disk/by-path</path></target></pool>")
    with pytest.raises(StoragePoolsError) as raised:
        backend_for(Endpoint(conn, 'lun', 'disks_pool'), 'disks_pool')
    assert str(raised.value).startswith("disks_pool: 'lun' is a iscsi pool")


def test_the_logical_backend_names_volumes_and_domains_as_nova_does(conn):
    started(conn, "<pool type='logical'><name>lvm</name><source><name>nova</name><format type='lvm2'/></source>"
                  "<target><path>/dev/nova</path></target></pool>")
    backend = backend_for(Endpoint(conn, 'lvm', 'disks_pool'), 'disks_pool')
    assert isinstance(backend, LogicalBackend) and backend.vg == 'nova'
    assert backend.nova_settings() == {'libvirt': {'images_type': 'lvm', 'images_volume_group': 'nova'}}
    name = backend.volume_name(INSTANCE, 'disk_eph0')
    assert name == INSTANCE + '_disk__eph0' and backend.disk_name(name[len(INSTANCE) + 1:]) == 'disk_eph0'
    assert backend.location(name) == '/dev/nova/' + name and backend.where() == "volume group 'nova'"
    assert backend.space_where() == "volume group 'nova' of pool 'lvm'"
    assert backend.allocation(4096) == 4096  # thick
    document = DomainDocument("<domain type='kvm'><name>i</name><devices><disk type='file' device='disk'>"
                              "<driver name='qemu' type='qcow2'/><source file='/var/lib/nova/instances/%s/disk'/>"
                              "<target dev='vda' bus='virtio'/></disk></devices></domain>" % INSTANCE)
    disk = document.disk('vda')
    assert backend.domain_volume(disk, INSTANCE) is None
    backend.point(disk, INSTANCE + '_disk')
    assert disk.source_block == '/dev/nova/%s_disk' % INSTANCE
    assert backend.domain_volume(disk, INSTANCE) == INSTANCE + '_disk'


def test_the_rbd_backend_points_domains_at_network_disks_with_the_pool_auth(conn):
    started(conn, rbd_pool_xml('ceph'))
    backend = backend_for(Endpoint(conn, 'ceph', 'disks_pool'), 'disks_pool')
    assert isinstance(backend, RbdBackend) and backend.location('x') == 'vms/x'
    assert backend.where() == "Ceph pool 'vms'" and not backend.records_readable(local=True)  # no keyring
    assert backend.nova_settings() == {'libvirt': {'images_type': 'rbd', 'images_rbd_pool': 'vms', 'rbd_user': 'nova',
                                                   'rbd_secret_uuid': SECRET},
                                       'DEFAULT': {'force_raw_images': 'True'}}
    document = DomainDocument("<domain type='kvm'><name>i</name><devices><disk type='file' device='disk'>"
                              "<driver name='qemu' type='raw'/><source file='/var/lib/nova/instances/%s/disk'/>"
                              "<target dev='vda' bus='virtio'/></disk></devices></domain>" % INSTANCE)
    disk = document.disk('vda')
    backend.point(disk, INSTANCE + '_disk')
    assert disk.rbd_image == 'vms/%s_disk' % INSTANCE and backend.domain_volume(disk, INSTANCE) == INSTANCE + '_disk'
    assert SECRET in document.to_xml()
    backend.close()  # nothing was opened: nothing to close


def test_an_rbd_pool_without_auth_is_no_cutover_target(conn):
    started(conn, rbd_pool_xml('bare', auth=False))
    backend = backend_for(Endpoint(conn, 'bare', 'disks_pool'), 'disks_pool')
    with pytest.raises(StoragePoolsError) as raised:
        backend.nova_settings()
    assert str(raised.value).startswith("disks_pool: rbd pool 'bare' has no <auth>")


def test_an_rbd_secret_libvirt_cannot_look_up_is_reported_with_libvirts_words(conn):
    started(conn, rbd_pool_xml('lost').replace("uuid='%s'" % SECRET, "usage='nova-disks'"))
    with pytest.raises(StoragePoolsError) as raised:  # the test driver has no secrets driver at all
        backend_for(Endpoint(conn, 'lost', 'disks_pool'), 'disks_pool').nova_settings()
    assert str(raised.value) == "disks_pool: the secret of rbd pool 'lost' (usage nova-disks) cannot be found"
    assert 'not supported' in raised.value.libvirt_error
