# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""legacy_disk_adopt on a fake legacy Nova host, against the real libvirtd."""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import time

import pytest
from conftest import REPO, fill, libvirt, run_module, start_module
from nova_host import NovaHost

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.records import read_file_metadata
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml import tree as xml_tree

XML_FLAGS = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE


@pytest.fixture
def host(conn, pools, workdir):
    nova = NovaHost(conn, os.path.join(workdir, 'nova'), pools.new())
    disks, cache = pools.new(), pools.new()
    nova.disks_dir = os.path.join(workdir, 'nova', 'disks')
    for name, target in ((disks, nova.disks_dir), (cache, nova.base_dir)):
        made = run_module('virt_pool_ensure', dict(name=name, type='dir', target=target, autostart=False))
        assert not made.get('failed'), made
    nova.disks_pool, nova.cache_pool = disks, cache
    nova.state_dir = os.path.join(workdir, 'state')
    yield nova
    nova.cleanup()


def adopt(host, check=False, diff=False, env=None, **args):
    params = dict(instances_path=host.instances, disks_pool=host.disks_pool, cache_pool=host.cache_pool,
                  state_dir=host.state_dir, nova_conf=host.nova_conf)
    params.update(args)
    return run_module('legacy_disk_adopt', params, check=check, diff=diff, env=env)


def without_adopted_disk_sources(xml):
    """The document with every disk's type, <source> and <backingStore> removed: what must not change."""
    root = xml_tree.parse(xml)
    for disk in root.findall('devices/disk'):
        disk.attrib.pop('type', None)
        for tag in ('source', 'backingStore'):
            for node in disk.findall(tag):
                disk.remove(node)
    return xml_tree.to_string(root)


def test_adopt_a_shut_off_instance_end_to_end(conn, host):
    instance = host.instance()
    domain = conn.lookupByUUIDString(instance)
    before_xml = domain.XMLDesc(XML_FLAGS)
    before = host.checksums(instance)
    legacy = host.disk_paths(instance)

    check = adopt(host, check=True, diff=True)
    assert check['changed'] is True and check['instances'][instance]['result'] == 'adopted'
    assert domain.XMLDesc(XML_FLAGS) == before_xml and not os.path.islink(legacy['disk'])
    assert os.listdir(host.disks_dir) == []
    # the diff holds only the real changes: per disk its source, and the overlay's backingStore (5 lines)
    planned = check['instances'][instance]
    changed = [line for line in planned['domain_diff'].splitlines()
               if line[:1] in '+-' and not line.startswith(('+++', '---'))]
    assert len(changed) == 2 * 3 + 5, planned['domain_diff']
    assert [entry['before_header'] for entry in check['diff']] == ['domain %s (before)' % instance]
    assert "'" not in check['diff'][0]['before']  # canonical: one quote style, attributes sorted

    result = adopt(host, diff=True)
    assert result['changed'] is True, result
    outcome = result['instances'][instance]
    assert outcome['result'] == 'adopted' and result['summary']['adopted'] == 1
    assert {disk['name']: disk['method'] for disk in outcome['disks']} == {
        'disk': 'link', 'disk.local': 'link', 'disk.config': 'link'}
    # check mode planned exactly what the real run did
    assert outcome['actions'] == planned['actions'] and outcome['domain_diff'] == planned['domain_diff']
    assert [step['action'] for step in outcome['actions'] if step.get('disk') == 'disk'] == [
        'register', 'link', 'record', 'swap']
    assert outcome['actions'][-2:] == [{'action': 'disk_info'}, {'action': 'domain'}]
    assert result['diff'] == check['diff']

    after_xml = domain.XMLDesc(XML_FLAGS)
    assert without_adopted_disk_sources(after_xml) == without_adopted_disk_sources(before_xml)
    before_root, after_root = xml_tree.parse(before_xml), xml_tree.parse(after_xml)
    assert [xml_tree.to_string(node) for node in before_root.iter('address')] == \
        [xml_tree.to_string(node) for node in after_root.iter('address')]
    assert [node.tag for node in before_root.find('devices')] == [node.tag for node in after_root.find('devices')]
    assert after_root.find('os/type').get('machine') == before_root.find('os/type').get('machine')
    assert xml_tree.to_string(after_root.find('cpu')) == xml_tree.to_string(before_root.find('cpu'))

    sources = {node.find('target').get('dev'): node for node in after_root.findall('devices/disk')}
    vda = sources['vda']
    assert vda.get('type') == 'file' and vda.find('driver').get('type') == 'qcow2'
    assert vda.find('source').get('file') == os.path.join(host.disks_dir, '%s_disk' % instance)
    assert vda.find('backingStore/source').get('file') == host.base
    assert vda.find('backingStore/format').get('type') == 'raw'
    assert sources['vdb'].find('driver').get('type') == 'raw'

    assert host.checksums(instance) == before  # through the legacy paths (symlinks)
    for name, path in legacy.items():
        volume = os.path.join(host.disks_dir, '%s_%s' % (instance, name))
        assert os.readlink(path) == volume
        record = read_file_metadata(volume)
        assert record['source']['path'] == path and record['format'] in ('raw', 'qcow2')
    assert read_file_metadata(os.path.join(host.disks_dir, '%s_disk' % instance))['backing'] == {
        'pool': host.cache_pool, 'volume': os.path.basename(host.base), 'path': host.base, 'format': 'raw'}
    same = subprocess.run(['qemu-img', 'compare', '-q', '-f', 'qcow2', '-F', 'qcow2', legacy['disk'],
                           os.path.join(host.disks_dir, '%s_disk' % instance)], check=False)
    assert same.returncode == 0
    with open(os.path.join(host.instances, instance, 'disk.info')) as handle:
        info = json.load(handle)
    for name, path in legacy.items():
        volume = os.path.join(host.disks_dir, '%s_%s' % (instance, name))
        assert info[path] == info[volume] == ('qcow2' if name == 'disk' else 'raw')
    assert os.path.exists(host.base)
    pools_volume = conn.storagePoolLookupByName(host.disks_pool).storageVolLookupByName('%s_disk' % instance)
    assert pools_volume.path() == os.path.join(host.disks_dir, '%s_disk' % instance)

    rerun = adopt(host)
    assert rerun['changed'] is False and rerun['instances'][instance]['result'] == 'already_adopted', rerun
    assert adopt(host, check=True)['changed'] is False

    # The adopted domain starts, and so does one defined the way Nova's hard reboot would (legacy paths).
    domain.create()
    domain.destroy()
    nova_xml = after_xml
    for name, path in legacy.items():
        nova_xml = nova_xml.replace(os.path.join(host.disks_dir, '%s_%s' % (instance, name)), path)
    nova_root = xml_tree.parse(nova_xml)
    for disk in nova_root.findall('devices/disk'):
        for node in disk.findall('backingStore'):
            disk.remove(node)
    domain.undefine()
    nova_domain = conn.defineXML(xml_tree.to_string(nova_root))  # same uuid: host.cleanup removes it
    nova_domain.create()
    assert nova_domain.isActive()
    nova_domain.destroy()
    assert host.checksums(instance) == before


def test_orphaned_volumes_are_reported_when_nova_deletes_an_adopted_instance(conn, host):
    kept, deleted = host.instance(config=False), host.instance(config=False)
    assert adopt(host)['summary']['adopted'] == 2
    shutil.rmtree(os.path.join(host.instances, deleted))  # what Nova's delete_instance_files does
    info = run_module('virt_pool_info', dict(name=host.disks_pool, instances_path=host.instances))
    assert sorted((orphan['volume'], orphan['instance_uuid']) for orphan in info['orphans']) == [
        ('%s_disk' % deleted, deleted), ('%s_disk.local' % deleted, deleted)]
    flags = {volume['name']: volume['orphaned'] for volume in info['pools'][host.disks_pool]['volumes']}
    assert flags['%s_disk' % kept] is False and flags['%s_disk' % deleted] is True


def test_volume_disk_type(conn, host):
    instance = host.instance(config=False)
    result = adopt(host, disk_type='volume')
    assert result['instances'][instance]['result'] == 'adopted', result
    root = xml_tree.parse(conn.lookupByUUIDString(instance).XMLDesc(XML_FLAGS))
    vdb = [disk for disk in root.findall('devices/disk') if disk.find('target').get('dev') == 'vdb'][0]
    assert vdb.get('type') == 'volume'
    assert vdb.find('source').attrib == {'pool': host.disks_pool, 'volume': '%s_disk.local' % instance}
    conn.lookupByUUIDString(instance).create()
    conn.lookupByUUIDString(instance).destroy()
    assert adopt(host, disk_type='volume')['changed'] is False


def test_cross_filesystem_copy_is_verified_and_the_source_goes(conn, pools, workdir, loop_device):
    nova = NovaHost(conn, os.path.join(workdir, 'nova'), pools.new())
    try:
        device = loop_device(mkfs='mkfs.ext4', size_mib=128)
        mount = os.path.join(workdir, 'other-fs')
        os.mkdir(mount)
        disks = pools.new()
        made = run_module('virt_pool_ensure', dict(name=disks, type='fs', target=mount, build='never',
                                                   source={'device': [device]}, autostart=False))
        assert not made.get('failed'), made
        instance = nova.instance()
        before = nova.checksums(instance)
        result = run_module('legacy_disk_adopt', dict(instances_path=nova.instances, disks_pool=disks,
                                                      state_dir=os.path.join(workdir, 'state'),
                                                      nova_conf=nova.nova_conf))
        outcome = result['instances'][instance]
        assert outcome['result'] == 'adopted', result
        assert {disk['method'] for disk in outcome['disks']} == {'copy'}
        assert nova.checksums(instance) == before
        for name, path in nova.disk_paths(instance).items():
            assert os.readlink(path) == os.path.join(mount, '%s_%s' % (instance, name))
        volume = os.path.join(mount, '%s_disk.local' % instance)
        assert os.stat(volume).st_blocks * 512 < 2 * 1024 * 1024, 'the copy is not sparse'
    finally:
        nova.cleanup()


@pytest.mark.parametrize('problem, reason', [
    ('disk.info disagrees', "disk.info says raw, the domain's <driver type> says qcow2"),
    ('not qcow2', 'recorded as qcow2 but'),
    ('backing outside _base', 'outside'),
    ('missing base', 'which is missing'),
    ('name taken', 'already has a volume'),
])
def test_refusals_touch_nothing(conn, host, workdir, problem, reason):
    instance = host.instance()
    directory = os.path.join(host.instances, instance)
    disk = os.path.join(directory, 'disk')
    if problem == 'disk.info disagrees':
        with open(os.path.join(directory, 'disk.info')) as handle:
            info = json.load(handle)
        info[disk] = 'raw'
        with open(os.path.join(directory, 'disk.info'), 'w') as handle:
            json.dump(info, handle)
    elif problem == 'not qcow2':
        with open(disk, 'wb') as handle:
            handle.write(os.urandom(4096))
    elif problem == 'backing outside _base':
        elsewhere = os.path.join(workdir, 'elsewhere.raw')
        with open(elsewhere, 'wb') as handle:
            handle.truncate(16 * 1024 * 1024)
        subprocess.run(['qemu-img', 'rebase', '-u', '-f', 'qcow2', '-b', elsewhere, '-F', 'raw', disk], check=True)
    elif problem == 'missing base':
        subprocess.run(['qemu-img', 'rebase', '-u', '-f', 'qcow2', '-b', os.path.join(host.base_dir, 'f' * 40),
                        '-F', 'raw', disk], check=True)
    else:
        conn.storagePoolLookupByName(host.disks_pool).createXML(
            "<volume><name>%s_disk.local</name><capacity>1024</capacity></volume>" % instance, 0)
    xml = conn.lookupByUUIDString(instance).XMLDesc(XML_FLAGS)
    files = {name: os.stat(path) for name, path in host.disk_paths(instance).items()}
    result = adopt(host)
    outcome = result['instances'][instance]
    assert outcome['result'] == 'skipped' and reason in outcome['reason'], outcome
    assert result['changed'] is False
    assert conn.lookupByUUIDString(instance).XMLDesc(XML_FLAGS) == xml
    for name, path in host.disk_paths(instance).items():
        assert not os.path.islink(path) and os.stat(path).st_mtime_ns == files[name].st_mtime_ns


def test_a_raw_guest_disk_with_a_qcow2_header_is_adopted_strictly_as_raw(conn, host, workdir):
    canary = os.path.join(workdir, 'canary')
    with open(canary, 'wb') as handle:
        handle.write(b'host secret\n')
    os.utime(canary, (946684800, 946684800))
    hostile = os.path.join(workdir, 'hostile.qcow2')
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', canary, hostile, '1M'], check=True)
    with open(hostile, 'rb') as handle:
        header = handle.read(64 * 1024)
    assert os.stat(canary).st_atime == 946684800
    instance = host.instance(raw_local=header)
    before = host.checksums(instance)
    os.utime(canary, (946684800, 946684800))  # checksumming read only the instance's own files, as raw
    result = adopt(host)
    assert result['instances'][instance]['result'] == 'adopted', result
    assert os.stat(canary).st_atime == 946684800, 'the canary was read'
    root = xml_tree.parse(conn.lookupByUUIDString(instance).XMLDesc(XML_FLAGS))
    vdb = [disk for disk in root.findall('devices/disk') if disk.find('target').get('dev') == 'vdb'][0]
    assert vdb.find('driver').get('type') == 'raw' and vdb.find('backingStore') is None
    assert host.checksums(instance) == before
    assert read_file_metadata(os.path.join(host.disks_dir, '%s_disk.local' % instance))['format'] == 'raw'


NOVA_UID = 4242  # the nova user of these tests (root chowns to it; no account is needed)


def make_shadow_canary(workdir):
    """A stand-in for /etc/shadow (root's, 0600, an old atime); returns a check that it is unchanged."""
    path = os.path.join(workdir, 'shadow')
    content = b'root:$6$secret:19000:0:99999:7:::\n'
    with open(path, 'wb') as handle:
        handle.write(content)
    os.chmod(path, 0o600)
    os.utime(path, (946684800, 946684800))

    def unchanged():
        info = os.stat(path)
        assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid, info.st_atime) == (0o600, 0, 0, 946684800)
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NOATIME), 'rb') as handle:  # keeps the atime it checks
            assert handle.read() == content, 'the canary was overwritten'

    unchanged.path = path
    return unchanged


def test_the_nova_users_symlink_at_the_old_disk_info_temporary_reaches_nothing(conn, host, workdir):
    """nova plants <uuid>/.disk.info.spl-tmp -> "/etc/shadow": root must not write, chmod or chown it."""
    instance = host.instance()
    directory = os.path.join(host.instances, instance)
    disk_info = os.path.join(directory, 'disk.info')
    for path in (directory, disk_info):
        os.chown(path, NOVA_UID, NOVA_UID)  # nova's, as on a compute host
    canary = make_shadow_canary(workdir)
    for name in ('.disk.info.spl-tmp', '.disk.spl-link', '.disk.local.spl-link'):  # every name once predictable
        planted = os.path.join(directory, name)
        os.symlink(canary.path, planted)
        os.lchown(planted, NOVA_UID, NOVA_UID)
    before = host.checksums(instance)
    result = adopt(host)
    assert result['instances'][instance]['result'] == 'adopted', result
    canary()
    info = os.lstat(disk_info)
    assert stat.S_ISREG(info.st_mode) and (info.st_uid, stat.S_IMODE(info.st_mode)) == (NOVA_UID, 0o644)
    with open(disk_info) as handle:
        assert os.path.join(host.disks_dir, '%s_disk' % instance) in json.load(handle)
    assert host.checksums(instance) == before
    assert sorted(name for name in os.listdir(directory) if name.startswith('.')) == [
        '.disk.info.spl-tmp', '.disk.local.spl-link', '.disk.spl-link']  # nova's, left alone; none of ours


def test_an_old_runs_journal_does_not_claim_a_volume_made_after_a_rollback(conn, host, workdir):
    """adopt, roll back by hand (docs/adoption.md), a new <uuid>_disk by virt_volume_clone, adopt again:
    the finished run's journal must not make that volume look like our placeholder."""
    instance = host.instance()
    domain = conn.lookupByUUIDString(instance)
    legacy_xml = domain.XMLDesc(XML_FLAGS)
    directory = os.path.join(host.instances, instance)
    with open(os.path.join(directory, 'disk.info')) as handle:
        legacy_info = handle.read()
    before = host.checksums(instance)
    assert adopt(host)['instances'][instance]['result'] == 'adopted'

    for name, path in host.disk_paths(instance).items():  # the rollback, step by step as documented
        os.unlink(path)
        os.rename(os.path.join(host.disks_dir, '%s_%s' % (instance, name)), path)
    with open(os.path.join(directory, 'disk.info'), 'w') as handle:
        handle.write(legacy_info)
    conn.defineXML(legacy_xml)
    conn.storagePoolLookupByName(host.disks_pool).refresh(0)  # the pool forgets the moved-away volumes
    assert host.checksums(instance) == before

    other = os.path.join(workdir, 'other.raw')  # somebody else's data under the name adoption would take
    with open(other, 'wb') as handle:
        handle.truncate(4 * 1024 * 1024)
        handle.write(b'OTHER DATA' * 1000)
    made = run_module('virt_volume_clone', dict(pool=host.disks_pool, instance_uuid=instance, disk='disk',
                                                source={'path': other, 'format': 'raw'}, mode='copy'))
    assert made.get('changed') is True, made
    volume = os.path.join(host.disks_dir, '%s_disk' % instance)
    with open(volume, 'rb') as handle:
        volume_data = handle.read()

    rerun = adopt(host)
    outcome = rerun['instances'][instance]
    assert outcome['result'] == 'skipped' and "'%s_disk' with other data" % instance in outcome['reason'], outcome
    with open(volume, 'rb') as handle:
        assert handle.read() == volume_data, 'the volume made after the rollback was overwritten'
    assert not os.path.samefile(volume, os.path.join(directory, 'disk'))
    assert host.checksums(instance) == before
    assert domain.XMLDesc(XML_FLAGS) == legacy_xml


def test_rsync_transport_is_refused_unless_forced(host):
    instance = host.instance()
    with open(host.nova_conf, 'a') as handle:
        handle.write('remote_filesystem_transport = rsync\n')
    refused = adopt(host)
    assert refused['failed'] is True and refused['msg'].startswith('force: ') and 'rsync' in refused['msg']
    assert not os.path.islink(host.disk_paths(instance)['disk'])
    assert adopt(host, force=True)['instances'][instance]['result'] == 'adopted'


def test_a_running_instance_is_skipped(conn, host):
    instance = host.instance()
    domain = conn.lookupByUUIDString(instance)
    domain.create()
    try:
        outcome = adopt(host)['instances'][instance]
        assert outcome['result'] == 'skipped' and 'running' in outcome['reason']
    finally:
        domain.destroy()


def adopt_process(host, env):
    """Start the module as a process (it may be SIGKILLed): Popen."""
    args = dict(instances_path=host.instances, disks_pool=host.disks_pool, cache_pool=host.cache_pool,
                state_dir=host.state_dir, nova_conf=host.nova_conf)
    return start_module('legacy_disk_adopt', args, env)


@pytest.mark.parametrize('step', ['register:1', 'link:1', 'record:1', 'swap:1', 'register:2', 'link:2',
                                  'swap:3', 'rebase:1', 'disk_info:1', 'domain:1'])
def test_sigkill_at_every_journalled_step_then_rerun_converges(conn, host, step):
    instance = host.instance(backing_format=None)  # header without backing format: a rebase step too
    before = host.checksums(instance)
    killed = adopt_process(host, {'STORAGEPOOLS_KILL_AT': step})
    killed.communicate()
    assert killed.returncode == -9, 'the module was not killed at %s' % step
    result = adopt(host)
    assert result['instances'][instance]['result'] in ('adopted', 'already_adopted'), result
    assert adopt(host)['instances'][instance]['result'] == 'already_adopted'
    assert host.checksums(instance) == before
    volumes = sorted('%s_%s' % (instance, name) for name in ('disk', 'disk.local', 'disk.config'))
    assert sorted(os.listdir(host.disks_dir)) == volumes  # no orphan, no leftover temporary
    assert sorted(name for name in os.listdir(os.path.join(host.instances, instance))
                  if name.startswith('.')) == []
    info = subprocess.run(['qemu-img', 'info', '--output=json', '-f', 'qcow2',
                           os.path.join(host.disks_dir, '%s_disk' % instance)], capture_output=True, text=True,
                          check=True)
    assert json.loads(info.stdout)['backing-filename-format'] == 'raw'


def test_two_concurrent_runs_serialise_to_the_same_end_state(conn, host):
    instances = [host.instance() for _index in range(3)]
    before = {instance: host.checksums(instance) for instance in instances}
    first, second = adopt_process(host, None), adopt_process(host, None)
    outputs = [json.loads(proc.communicate()[0]) for proc in (first, second)]
    results = sorted(output['summary']['adopted'] for output in outputs)
    assert results == [0, 3], outputs
    for instance in instances:
        assert host.checksums(instance) == before[instance]
    assert adopt(host)['changed'] is False


@pytest.mark.parametrize('step', ['register:1', 'copy:1', 'verify:1', 'swap:1', 'copy:2',
                                  'swap:3', 'disk_info:1', 'domain:1'])
def test_sigkill_during_a_cross_filesystem_copy_then_rerun_converges(conn, pools, workdir, loop_device, step):
    nova = NovaHost(conn, os.path.join(workdir, 'nova'), pools.new())
    try:
        device = loop_device(mkfs='mkfs.ext4', size_mib=128)
        mount = os.path.join(workdir, 'other-fs')
        os.mkdir(mount)
        nova.disks_pool = pools.new()
        made = run_module('virt_pool_ensure', dict(name=nova.disks_pool, type='fs', target=mount, build='never',
                                                   source={'device': [device]}, autostart=False))
        assert not made.get('failed'), made
        nova.cache_pool, nova.disks_dir = 'unused', mount
        nova.state_dir = os.path.join(workdir, 'state')
        instance = nova.instance()
        before = nova.checksums(instance)
        killed = adopt_process(nova, {'STORAGEPOOLS_KILL_AT': step})
        killed.communicate()
        assert killed.returncode == -9, 'the module was not killed at %s' % step
        assert nova.checksums(instance) == before  # also in the middle: every legacy path reads the data
        result = adopt(nova)
        assert result['instances'][instance]['result'] in ('adopted', 'already_adopted'), result
        assert adopt(nova)['instances'][instance]['result'] == 'already_adopted'
        assert nova.checksums(instance) == before
        volumes = sorted('%s_%s' % (instance, name) for name in ('disk', 'disk.local', 'disk.config'))
        assert sorted(name for name in os.listdir(mount) if name != 'lost+found') == volumes
    finally:
        nova.cleanup()


def qemu_pid(domain):
    with open('/run/libvirt/qemu/%s.pid' % domain.name()) as handle:
        return int(handle.read().strip())


NOVA_UID = NOVA_GID = 64123  # an unprivileged owner, as the nova user is


def test_live_adoption_keeps_the_guest_running(conn, host):
    instance = host.instance()
    before = host.checksums(instance)
    for path in host.disk_paths(instance).values():
        os.chown(path, NOVA_UID, NOVA_GID)
    resting = {name: (info.st_uid, info.st_gid, info.st_mode) for name, info in
               ((name, os.stat(path)) for name, path in host.disk_paths(instance).items())}
    domain = conn.lookupByUUIDString(instance)
    before_xml = domain.XMLDesc(XML_FLAGS)
    domain.create()
    try:
        pid = qemu_pid(domain)
        assert adopt(host)['instances'][instance]['result'] == 'skipped'  # running: skip by default
        check = adopt(host, check=True, running='live')
        assert check['instances'][instance]['result'] == 'adopted' and os.listdir(host.disks_dir) == []
        result = adopt(host, running='live')
        outcome = result['instances'][instance]
        assert outcome['result'] == 'adopted', result
        assert {disk['method'] for disk in outcome['disks']} == {'live-copy'}
        assert domain.isActive() and qemu_pid(domain) == pid, 'the guest was restarted'
        running = xml_tree.parse(domain.XMLDesc(0))
        for disk in running.findall('devices/disk'):
            assert os.path.dirname(disk.find('source').get('file')) == host.disks_dir
        persistent = domain.XMLDesc(XML_FLAGS)
        assert without_adopted_disk_sources(persistent) == without_adopted_disk_sources(before_xml)
        vda = [disk for disk in xml_tree.parse(persistent).findall('devices/disk')
               if disk.find('target').get('dev') == 'vda'][0]
        assert vda.find('source').get('file') == os.path.join(host.disks_dir, '%s_disk' % instance)
        assert vda.find('backingStore/source').get('file') == host.base
        for name, path in host.disk_paths(instance).items():
            assert os.readlink(path) == os.path.join(host.disks_dir, '%s_%s' % (instance, name))
        assert adopt(host, running='live')['instances'][instance]['result'] == 'already_adopted'
    finally:
        domain.destroy()
    assert host.checksums(instance) == before
    for name, (uid, gid, mode) in resting.items():  # the shut-off guest's volumes are the nova user's again
        info = os.stat(os.path.join(host.disks_dir, '%s_%s' % (instance, name)))
        if name == 'disk.config':  # read-only: libvirt never gives those back, the legacy file neither
            uid, gid = pwd.getpwnam('libvirt-qemu').pw_uid, grp.getgrnam('libvirt-qemu').gr_gid
        assert (info.st_uid, info.st_gid, info.st_mode) == (uid, gid, mode), name


@pytest.mark.parametrize('step', ['register:1', 'blockcopy:1', 'swap:1', 'blockcopy:2', 'swap:2',
                                  'disk_info:1', 'domain:1'])
def test_sigkill_during_a_live_adoption_then_rerun_converges(conn, host, step):
    instance = host.instance(config=False)
    before = host.checksums(instance)
    domain = conn.lookupByUUIDString(instance)
    domain.create()
    try:
        pid = qemu_pid(domain)
        args = dict(instances_path=host.instances, disks_pool=host.disks_pool, cache_pool=host.cache_pool,
                    state_dir=host.state_dir, nova_conf=host.nova_conf, running='live')
        killed = start_module('legacy_disk_adopt', args, {'STORAGEPOOLS_KILL_AT': step})
        killed.communicate()
        assert killed.returncode == -9, 'the module was not killed at %s' % step
        result = adopt(host, running='live')
        assert result['instances'][instance]['result'] in ('adopted', 'already_adopted'), result
        assert adopt(host, running='live')['instances'][instance]['result'] == 'already_adopted'
        assert domain.isActive() and qemu_pid(domain) == pid
        for name, legacy in host.disk_paths(instance).items():
            assert os.readlink(legacy) == os.path.join(host.disks_dir, '%s_%s' % (instance, name))
        with open(os.path.join(host.instances, instance, 'disk.info')) as handle:
            info = json.load(handle)
        assert all(os.path.join(host.disks_dir, '%s_%s' % (instance, name)) in info
                   for name in ('disk', 'disk.local'))
    finally:
        domain.destroy()
    assert host.checksums(instance) == before
    assert sorted(os.listdir(host.disks_dir)) == sorted('%s_%s' % (instance, name) for name in ('disk', 'disk.local'))


def restart_libvirtd():
    """Stop the system libvirtd (running guests survive it), known by its pidfile, and start it again with the
    suite's script; any other libvirtd on the machine is left alone."""
    with open('/run/libvirtd.pid') as handle:
        pid = int(handle.read().strip())
    os.kill(pid, 15)
    while os.path.exists('/proc/%d' % pid):
        time.sleep(0.05)
    subprocess.run([os.path.join(REPO, 'scripts', 'start-libvirtd.sh')], check=True)


@pytest.mark.parametrize('step', ['link:2', 'domain:1'])
def test_libvirtd_restarted_under_a_run_then_rerun_converges(host, step):
    instance = host.instance()
    before = host.checksums(instance)
    paused = adopt_process(host, {'STORAGEPOOLS_PAUSE_AT': step})
    time.sleep(2)
    restart_libvirtd()
    out, _err = paused.communicate()
    result = json.loads(out)
    outcome = result['instances'][instance]
    assert outcome['result'] in ('adopted', 'failed'), result  # a clear error, or success
    if outcome['result'] == 'failed':
        assert outcome['reason'] and 'Traceback' not in out
    rerun = adopt(host)
    assert rerun['instances'][instance]['result'] in ('adopted', 'already_adopted'), rerun
    assert adopt(host)['instances'][instance]['result'] == 'already_adopted'
    assert host.checksums(instance) == before
    volumes = sorted('%s_%s' % (instance, name) for name in ('disk', 'disk.local', 'disk.config'))
    assert sorted(os.listdir(host.disks_dir)) == volumes


MiB = 1024 * 1024


@pytest.fixture
def other_fs_host(conn, pools, workdir, loop_device):
    """A Nova host whose disks pool is an ext4 of ``size_mib`` on a loop device (another filesystem)."""
    made = []

    def make(size_mib):
        nova = NovaHost(conn, os.path.join(workdir, 'nova'), pools.new())
        made.append(nova)
        device = loop_device(mkfs='mkfs.ext4', size_mib=size_mib)
        nova.disks_dir = os.path.join(workdir, 'other-fs')
        os.mkdir(nova.disks_dir)
        nova.disks_pool, nova.cache_pool = pools.new(), 'unused'
        result = run_module('virt_pool_ensure', dict(name=nova.disks_pool, type='fs', target=nova.disks_dir,
                                                     build='never', source={'device': [device]}, autostart=False))
        assert not result.get('failed'), result
        nova.state_dir = os.path.join(workdir, 'state')
        return nova

    yield make
    for nova in made:
        nova.cleanup()


def pool_files(host):
    return sorted(name for name in os.listdir(host.disks_dir) if name != 'lost+found')


def wait_for_journal(host, instance, step, disk):
    """Until the run journalled ``step`` of ``disk`` (then it pauses there 5 s)."""
    path = os.path.join(host.state_dir, 'journal', '%s.json' % instance)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with open(path) as handle:
                current = json.load(handle).get('current') or {}
        except (OSError, ValueError):
            current = {}
        if current.get('step') == step and current.get('disk') == disk:
            return
        time.sleep(0.05)
    raise AssertionError('the run never reached %s of %s' % (step, disk))


def test_a_run_onto_a_too_small_filesystem_is_refused_before_the_first_byte(conn, other_fs_host):
    host = other_fs_host(32)
    instances = [host.instance(raw_local=os.urandom(64 * MiB)) for _index in range(3)]  # 64 MiB of real data
    before = {instance: host.checksums(instance) for instance in instances}
    free = os.statvfs(host.disks_dir).f_bavail
    result = adopt(host)
    assert result['failed'] is True and result['summary']['failed'] == 3, result
    for instance in instances:
        reason = result['instances'][instance]['reason']
        assert re.match(r"disks_pool: copying instance %s \(3 disks\) needs 6\d\.\d MiB \(\d+ bytes\) plus a "
                        r"margin of .*, but pool '%s' \(%s\) has only \d+\.\d MiB \(\d+ bytes\) available; nothing "
                        r"was written" % (instance, host.disks_pool, host.disks_dir), reason), reason
    assert pool_files(host) == []
    assert conn.storagePoolLookupByName(host.disks_pool).listVolumes() == ['lost+found']  # no placeholder
    assert abs(os.statvfs(host.disks_dir).f_bavail - free) * os.statvfs(host.disks_dir).f_frsize < MiB
    for instance in instances:
        assert host.checksums(instance) == before[instance]
        assert not any(os.path.islink(path) for path in host.disk_paths(instance).values())


def test_enospc_during_a_cross_filesystem_copy_removes_the_copy_and_keeps_the_legacy_file(conn, other_fs_host):
    host = other_fs_host(64)
    instance = host.instance(raw_local=os.urandom(8 * MiB))
    before = host.checksums(instance)
    legacy = host.disk_paths(instance)['disk.local']
    paused = adopt_process(host, {'STORAGEPOOLS_PAUSE_AT': 'copy:2'})  # the space check passed: disk.local
    wait_for_journal(host, instance, 'copy', 'disk.local')
    filler = fill(host.disks_dir)
    out, err = paused.communicate(timeout=120)
    assert 'Traceback' not in out + err, out + err
    outcome = json.loads(out)['instances'][instance]
    copy = os.path.join(host.disks_dir, '%s_disk.local' % instance)
    assert outcome['result'] == 'failed', outcome
    assert outcome['reason'] == ('disks_pool: copying %s into %s failed: No space left on device; the partial '
                                 'copy was removed, %s is as it was' % (legacy, copy, legacy)), outcome
    assert pool_files(host) == sorted(['%s_disk' % instance, 'filler'])  # the first disk was done before
    assert '%s_disk.local' % instance not in conn.storagePoolLookupByName(host.disks_pool).listVolumes()
    assert not os.path.islink(legacy) and host.checksums(instance) == before
    os.unlink(filler)
    assert adopt(host)['instances'][instance]['result'] == 'adopted'
    assert host.checksums(instance) == before
    assert pool_files(host) == sorted('%s_%s' % (instance, name) for name in ('disk', 'disk.local', 'disk.config'))


def test_a_domain_started_before_the_swap_keeps_its_legacy_file(conn, other_fs_host):
    host = other_fs_host(128)
    instance = host.instance()
    before = host.checksums(instance)
    legacy = host.disk_paths(instance)['disk']
    domain = conn.lookupByUUIDString(instance)
    paused = adopt_process(host, {'STORAGEPOOLS_PAUSE_AT': 'swap:1'})  # disk is copied and verified
    wait_for_journal(host, instance, 'swap', 'disk')
    domain.create()  # as Nova would, meanwhile
    try:
        out, err = paused.communicate(timeout=120)
        assert 'Traceback' not in out + err, out + err
        outcome = json.loads(out)['instances'][instance]
        assert outcome['result'] == 'failed', outcome
        assert outcome['reason'].startswith('running: the domain was started while %s was being copied' % legacy)
        assert not os.path.islink(legacy) and '%s_disk' % instance not in pool_files(host)  # the stale copy went
        vda = [disk for disk in xml_tree.parse(domain.XMLDesc(0)).findall('devices/disk')
               if disk.find('target').get('dev') == 'vda'][0]
        assert vda.find('source').get('file') == legacy
        pid = qemu_pid(domain)
        opened = [os.readlink('/proc/%d/fd/%s' % (pid, fd)) for fd in os.listdir('/proc/%d/fd' % pid)]
        assert legacy in opened and legacy + ' (deleted)' not in opened, opened
    finally:
        domain.destroy()
    assert host.checksums(instance) == before
    assert adopt(host)['instances'][instance]['result'] == 'adopted'
    assert os.readlink(legacy) == os.path.join(host.disks_dir, '%s_disk' % instance)
    assert host.checksums(instance) == before
