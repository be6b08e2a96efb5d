# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What Nova 34's block live migration does to an adopted instance: Nova's own code, a real migration.

The source is the system libvirtd with a legacy Nova host adopted by
legacy_disk_adopt (disks in a dir pool, legacy paths linked to them, the
domain on the pool paths), its instance running (OS-less). The destination
is a second libvirtd with a host UUID and a filesystem view of its own
(peer_libvirtd.py): the same paths, other files. Nova's code runs in
.venv-nova (nova_live_migration_steps.py): ``get_instance_disk_info`` and
``get_updated_guest_xml`` on the source, ``pre_live_migration`` on the
destination (in the peer's mount namespace, as Nova would run there), then the
source's ``_live_migration_operation`` (libvirt's migrateToURI3, peer to peer).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess

import pytest
from conftest import REPO, RUN_ID, _counter, libvirt, run_module
from nova_host import MiB, NovaHost
from peer_libvirtd import ADDRESS, HOSTS, URI as PEER_URI, running_peer

from ansible_collections.storagepools.libvirt.plugins.module_utils._nova.migration import LIBVIRT_REFUSES_PRECREATE

NOVA_PYTHON = os.path.join(REPO, '.venv-nova', 'bin', 'python')
STEPS = os.path.join(REPO, 'tests', 'integration', 'nova_live_migration_steps.py')

pytestmark = pytest.mark.skipif(not os.path.exists(NOVA_PYTHON), reason='no .venv-nova (scripts/setup.sh makes it)')


@pytest.fixture(scope='module')
def peer():
    with running_peer('/var/tmp/spl-livemig-peer-%s' % RUN_ID) as daemon:
        yield daemon


def run_nova(workdir, request, prefix=()):
    """One role of nova_live_migration_steps.py in .venv-nova; its JSON answer."""
    path = os.path.join(workdir, 'nova-%s-%d.json' % (request['role'], next(_counter)))
    with open(path, 'w') as handle:
        json.dump(dict(request, scratch=workdir), handle)
    proc = subprocess.run(list(prefix) + [NOVA_PYTHON, '-W', 'ignore', STEPS, path], capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout)


class Migration:
    """An adopted, running instance on the source and an empty destination at the same paths."""

    def __init__(self, conn, pools, peer, workdir):
        self.conn, self.peer, self.workdir = conn, peer, workdir
        self.root = os.path.join(HOSTS, '%s-%d' % (RUN_ID, next(_counter)))
        for view in (self.root, peer.private(self.root)):
            os.makedirs(view, mode=0o755)
            os.chmod(view, 0o755)
        self.host = host = NovaHost(conn, os.path.join(self.root, 'nova'), pools.new())
        self.disks_pool, self.cache_pool = pools.new(), pools.new()
        self.disks_dir = os.path.join(self.root, 'nova', 'disks')
        for name, target in ((self.disks_pool, self.disks_dir), (self.cache_pool, host.base_dir)):
            made = run_module('virt_pool_ensure', dict(name=name, type='dir', target=target, autostart=False))
            assert not made.get('failed'), made
        self.uuid = host.instance()
        adopted = run_module('legacy_disk_adopt', dict(
            instances_path=host.instances, disks_pool=self.disks_pool, cache_pool=self.cache_pool,
            state_dir=os.path.join(self.root, 'state'), nova_conf=host.nova_conf))
        assert adopted['instances'][self.uuid]['result'] == 'adopted', adopted
        self.checksums = host.checksums(self.uuid)  # the guest view, before it runs (an OS-less guest writes nothing)
        self.domain = conn.lookupByUUIDString(self.uuid)
        self.domain.create()
        self.peer_conn = libvirt.open(PEER_URI)
        # the destination's Nova image cache has the instance's image (Nova fetches it from Glance otherwise)
        os.makedirs(peer.private(host.base_dir), mode=0o755)
        shutil.copy(host.base, peer.private(host.base))

    def volume(self, disk):
        return os.path.join(self.disks_dir, '%s_%s' % (self.uuid, disk))

    def nova(self, role, **request):
        request = dict(role=role, uuid=self.uuid, image_id='image-1', instances_path=self.host.instances,
                       dest_host=ADDRESS, **request)
        if role == 'destination':
            return run_nova(self.workdir, dict(request, uri=PEER_URI), prefix=self.peer.nsenter())
        return run_nova(self.workdir, dict(request, uri='qemu:///system'))

    def check(self, **args):
        return run_module('live_migration_check', dict(destination_uri=PEER_URI, instances=[self.uuid],
                                                       instances_path=self.host.instances, **args))

    def prepare_destination(self, disk_info):
        """What docs/live-migration.md asks for: the same pools, the volumes precreated, the config drive copied."""
        for name, target in ((self.disks_pool, self.disks_dir), (self.cache_pool, self.host.base_dir)):
            made = run_module('virt_pool_ensure', dict(name=name, type='dir', target=target, autostart=False,
                                                       uri=PEER_URI))
            assert not made.get('failed'), made
        pool = self.peer_conn.storagePoolLookupByName(self.disks_pool)
        for info in disk_info:
            if info['path'] == self.volume('disk.config'):  # readonly: not copied, so its bytes go first
                shutil.copy(info['path'], self.peer.private(info['path']))
                continue
            backing = ("<backingStore><path>%s</path><format type='raw'/></backingStore>"
                       % os.path.join(self.host.base_dir, info['backing_file']) if info['backing_file'] else '')
            pool.createXML("<volume><name>%s</name><capacity unit='bytes'>%d</capacity><target><format type='%s'/>"
                           "</target>%s</volume>" % (os.path.basename(info['path']), info['virt_disk_size'],
                                                     info['type'], backing), 0)
        pool.refresh(0)

    def peer_guest_view(self, path, image_format):
        """SHA-256 of what the guest sees of ``path`` on the destination, read in the destination's view."""
        view = os.path.join(self.workdir, 'view-%d.raw' % next(_counter))
        subprocess.run(self.peer.nsenter() + ['qemu-img', 'convert', '-U', '-f', image_format, '-O', 'raw', path,
                                              view], check=True, capture_output=True, timeout=120)
        with open(view, 'rb') as handle:
            digest = hashlib.sha256(handle.read()).hexdigest()
        os.unlink(view)
        return digest

    def cleanup(self):
        try:
            domain = self.peer_conn.lookupByUUIDString(self.uuid)
            if domain.isActive():
                domain.destroy()
            domain.undefine()
        except libvirt.libvirtError:
            pass  # never migrated
        for name in (self.disks_pool, self.cache_pool):
            try:
                pool = self.peer_conn.storagePoolLookupByName(name)
            except libvirt.libvirtError:
                continue
            if pool.isActive():
                pool.destroy()
            pool.undefine()
        self.peer_conn.close()
        self.host.cleanup()
        for view in (self.root, self.peer.private(self.root)):
            shutil.rmtree(view, ignore_errors=True)


@pytest.fixture
def migration(conn, pools, peer, workdir):
    made = Migration(conn, pools, peer, workdir)
    yield made
    made.cleanup()


def image_info(migration, path):
    proc = subprocess.run(migration.peer.nsenter() + ['qemu-img', 'info', '-U', '--output=json', path],
                          check=True, capture_output=True, text=True, timeout=60)
    return json.loads(proc.stdout)


def test_nova_disk_steps_put_an_adopted_instances_disks_in_the_instance_directory(migration):
    host, uuid = migration.host, migration.uuid
    source = migration.nova('source')
    disk_info = json.loads(source['disk_info'])
    # get_instance_disk_info reads the domain XML: the pool paths, the formats, the base's NAME only
    assert [(info['path'], info['type'], info['virt_disk_size'], info['backing_file']) for info in disk_info] == [
        (migration.volume('disk'), 'qcow2', 32 * MiB, os.path.basename(host.base)),
        (migration.volume('disk.local'), 'raw', 8 * MiB, ''),
        (migration.volume('disk.config'), 'raw', 512 * 1024, '')]
    # the XML Nova sends keeps the pool paths (get_updated_guest_xml rewrites no file disk)
    sent = libvirt_disk_sources(source['destination_xml'])
    assert sent == {'vda': migration.volume('disk'), 'vdb': migration.volume('disk.local'),
                    'hda': migration.volume('disk.config')}
    # incremental block migration; the readonly config drive (a cdrom) is not among the copied disks
    assert (source['non_shared_inc'], source['non_shared_disk']) == (True, False)
    assert source['copied_devices'] == ['vda', 'vdb']
    assert [disk['readonly'] for disk in source['disks']] == [False, False, True]
    assert source['migration_uri'] == 'qemu+tcp://%s/system' % ADDRESS

    made = migration.nova('destination', disk_info=source['disk_info'])
    instance_dir = os.path.join(host.instances, uuid)
    assert made['instance_dir'] == instance_dir
    assert sorted(made['files']) == sorted(['%s_disk' % uuid, '%s_disk.local' % uuid, '%s_disk.config' % uuid,
                                            'disk.info'])
    assert not any(entry['islink'] for entry in made['files'].values())
    assert made['disk_info_file'] == {os.path.join(instance_dir, '%s_%s' % (uuid, name)): kind
                                      for name, kind in (('disk', 'qcow2'), ('disk.local', 'raw'),
                                                         ('disk.config', 'raw'))}
    root = image_info(migration, os.path.join(instance_dir, '%s_disk' % uuid))
    assert (root['format'], root['virtual-size'], root['backing-filename'], root['backing-filename-format']) == (
        'qcow2', 32 * MiB, host.base, 'raw')  # a fresh overlay of the destination's _base: no guest data
    for name, size in (('disk.local', 8 * MiB), ('disk.config', 512 * 1024)):
        info = image_info(migration, os.path.join(instance_dir, '%s_%s' % (uuid, name)))
        assert (info['format'], info['virtual-size']) == ('raw', size)
        with open(migration.peer.private(os.path.join(instance_dir, '%s_%s' % (uuid, name))), 'rb') as handle:
            assert handle.read().strip(b'\0') == b''  # empty: made, not copied
    # ... and nothing at the legacy paths or the pool paths the domain names
    for name in ('disk', 'disk.local', 'disk.config'):
        assert not os.path.lexists(migration.peer.private(os.path.join(instance_dir, name)))
    assert not os.path.exists(migration.peer.private(migration.disks_dir))


def libvirt_disk_sources(xml):
    from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.domain import DomainDocument
    return {disk.target: disk.source_file for disk in DomainDocument(xml).disks()}


def test_block_live_migration_needs_the_volumes_at_the_pool_paths(migration, conn):
    host, uuid = migration.host, migration.uuid
    source = migration.nova('source')
    disk_info = json.loads(source['disk_info'])

    # the collection's preflight: nothing there yet
    check = migration.check()
    report = check['instances'][uuid]
    assert check['changed'] is False and check['ready'] is False and report['refused'] == []
    assert [problem.split(':')[0] for problem in report['problems']] == [
        'disk vda', 'disk vda backing file', 'disk vdb', 'disk hda']
    refused = migration.check(require_ready=True)
    assert refused.get('failed') and 'require_ready' in refused['msg'] and uuid in refused['msg']

    # what Nova does anyway: pre_live_migration, then the migration, which libvirt refuses
    migration.nova('destination', disk_info=source['disk_info'])
    attempt = migration.nova('migrate')
    assert attempt['migrated'] is False and LIBVIRT_REFUSES_PRECREATE in attempt['error'], attempt
    assert migration.domain.isActive()  # the guest still runs on the source
    with pytest.raises(libvirt.libvirtError):
        migration.peer_conn.lookupByUUIDString(uuid)

    # the destination made ready as docs/live-migration.md says; the preflight agrees
    migration.prepare_destination(disk_info)
    check = migration.check(require_ready=True)
    assert check['ready'] is True, check
    report = check['instances'][uuid]
    assert [disk['copied'] for disk in report['disks']] == [True, True, False]
    assert os.path.join(host.instances, uuid, 'disk') in report['after_migration'][0]

    # Nova's rollback removed the destination's instance directory; the migration runs again, and succeeds
    shutil.rmtree(migration.peer.private(os.path.join(host.instances, uuid)))
    migration.nova('destination', disk_info=source['disk_info'])
    done = migration.nova('migrate')
    assert done == {'migrated': True, 'error': None}
    arrived = migration.peer_conn.lookupByUUIDString(uuid)
    assert arrived.isActive()
    assert libvirt_disk_sources(arrived.XMLDesc(0)) == libvirt_disk_sources(source['destination_xml'])
    with pytest.raises(libvirt.libvirtError):
        conn.lookupByUUIDString(uuid)  # VIR_MIGRATE_UNDEFINE_SOURCE
    # the guest's data is on the destination's pool volumes
    for name, image_format in (('disk', 'qcow2'), ('disk.local', 'raw'), ('disk.config', 'raw')):
        assert migration.peer_guest_view(migration.volume(name), image_format) == migration.checksums[name], name
    # and, as the check said, the destination has Nova's unused files but no legacy paths: a hard reboot
    # there (XML rebuilt at instances/<uuid>/disk) would find no disk
    for name in ('disk', 'disk.local', 'disk.config'):
        assert not os.path.lexists(migration.peer.private(os.path.join(host.instances, uuid, name)))
        assert os.path.exists(migration.peer.private(os.path.join(host.instances, uuid, '%s_%s' % (uuid, name))))
