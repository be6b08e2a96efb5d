# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""legacy_disk_adopt into an rbd pool: the two-phase host cutover, on real Ceph and the real libvirtd."""

from __future__ import annotations

import json
import os

import pytest
from canary import Canary
from conftest import libvirt, run_module, start_module, wait_for_step
from nova_host import NovaHost

from ansible_collections.storagepools.libvirt.plugins.module_utils._xml import tree as xml_tree

XML_FLAGS = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE
IMPORT_STEPS = ['import', 'verify', 'record', 'domain']
FINALIZE_STEPS = ['remove', 'disk_info']


@pytest.fixture
def host(conn, pools, workdir, ceph, ceph_user):
    """A fake legacy Nova host and an rbd disks pool on the test Ceph with its own cephx user."""
    user, _key, keyring, _usage, secret_uuid = ceph_user
    nova = NovaHost(conn, os.path.join(workdir, 'nova'), pools.new())
    nova.rbd_pool, nova.keyring, nova.user, nova.secret_uuid = pools.new(), keyring, user, secret_uuid
    nova.state_dir = os.path.join(workdir, 'state')
    made = run_module('virt_pool_ensure', dict(
        name=nova.rbd_pool, type='rbd', connect_timeout=5, autostart=False,
        source={'name': ceph.pool, 'host': [ceph.mon], 'auth': {'username': user, 'secret_uuid': secret_uuid}}))
    assert not made.get('failed'), made
    yield nova
    nova.cleanup()
    for instance in nova.domain_uuids:
        ceph.remove_images(instance)


def adopt(host, check=False, env=None, **args):
    params = dict(instances_path=host.instances, disks_pool=host.rbd_pool, ceph_keyring=host.keyring,
                  state_dir=host.state_dir, nova_conf=host.nova_conf)
    params.update(args)
    return run_module('legacy_disk_adopt', params, check=check, env=env)


def switch_nova_conf(host, settings):
    lines = []
    for section, values in settings.items():
        lines.append('[%s]' % section)
        lines.extend('%s = %s' % item for item in values.items())
    with open(host.nova_conf, 'w') as handle:
        handle.write('\n'.join(lines) + '\n')


def without_disk_sources(xml):
    """The domain with every disk's type, source, backingStore, auth and driver format removed."""
    root = xml_tree.parse(xml)
    for disk in root.findall('devices/disk'):
        disk.attrib.pop('type', None)
        disk.find('driver').attrib.pop('type', None)
        for tag in ('source', 'backingStore', 'auth'):
            for node in disk.findall(tag):
                disk.remove(node)
    return xml_tree.to_string(root)


def rbd_checksums(ceph, instance, names, scratch):
    return {name: ceph.image_sha256('%s_%s' % (instance, name), scratch) for name in names}


def test_rbd_cutover_imports_then_finalize_removes_the_legacy_files(conn, ceph, host, workdir):
    instances = [host.instance(), host.instance(config=False)]
    before = {instance: host.checksums(instance) for instance in instances}
    before_xml = {instance: conn.lookupByUUIDString(instance).XMLDesc(XML_FLAGS) for instance in instances}
    legacy = {instance: host.disk_paths(instance) for instance in instances}

    check = adopt(host, check=True)
    assert check['changed'] is True and check['summary']['adopted'] == 2, check
    assert not any(image.startswith(tuple(instances)) for image in ceph.rbd_ls()), 'check mode imported'

    result = adopt(host)
    assert result['changed'] is True and result['summary']['adopted'] == 2, result
    assert result['nova_conf_settings'] == {
        'libvirt': {'images_type': 'rbd', 'images_rbd_pool': ceph.pool, 'rbd_user': host.user,
                    'rbd_secret_uuid': host.secret_uuid},
        'DEFAULT': {'force_raw_images': 'True'}}
    for instance in instances:
        outcome = result['instances'][instance]
        assert outcome['actions'] == check['instances'][instance]['actions']  # check mode planned the same
        assert [step['action'] for step in outcome['actions'] if step.get('disk') == 'disk'] == [
            'import', 'verify', 'record']
        assert {disk['name']: (disk['method'], disk['to']) for disk in outcome['disks']} == {
            name: ('rbd-import', '%s/%s_%s' % (ceph.pool, instance, name)) for name in legacy[instance]}
        # the images hold the guest's view: the overlay flattened with its base
        assert rbd_checksums(ceph, instance, legacy[instance], workdir) == before[instance]
        record = json.loads(ceph.admin('image-meta', 'get', '%s/%s_disk' % (ceph.pool, instance),
                                       'user.storagepools.libvirt', tool='rbd'))
        assert record['format'] == 'raw' and record['virtual_size'] == 32 * 1024 * 1024
        assert record['source']['flattened_from'] == {'path': host.base, 'format': 'raw'}
        assert 'adopting' not in record and record['imported_from']['size'] == os.stat(legacy[instance]['disk']).st_size
        # the domain: network disks with auth, raw; everything else as libvirt wrote it
        after_xml = conn.lookupByUUIDString(instance).XMLDesc(XML_FLAGS)
        assert without_disk_sources(after_xml) == without_disk_sources(before_xml[instance])
        for disk in xml_tree.parse(after_xml).findall('devices/disk'):
            assert disk.get('type') == 'network' and disk.find('driver').get('type') == 'raw'
            source = disk.find('source')
            assert source.get('protocol') == 'rbd' and source.get('name').startswith('%s/%s_' % (ceph.pool, instance))
            assert source.find('host').get('name') == ceph.mon['name']
            assert disk.find('auth').get('username') == host.user
            assert disk.find('auth/secret').get('uuid') == host.secret_uuid
            assert disk.find('backingStore') is None
        # phase 1 keeps the legacy files as they were
        assert host.checksums(instance) == before[instance]
        assert all(os.path.isfile(path) and not os.path.islink(path) for path in legacy[instance].values())

    # the domain starts on its rbd disks (qemu opens them through Ceph with the secret)
    domain = conn.lookupByUUIDString(instances[0])
    domain.create()
    try:
        live = domain.XMLDesc(0)
        assert "protocol='rbd'" in live and legacy[instances[0]]['disk'] not in live
    finally:
        domain.destroy()

    for rerun in (adopt(host), adopt(host, check=True)):
        assert rerun['changed'] is False and rerun['summary']['already_adopted'] == 2, rerun

    refused = adopt(host, finalize=True)
    assert refused['failed'] is True and refused['msg'].startswith('finalize: ') and 'images_type = rbd' in refused['msg']
    assert all(os.path.isfile(path) for paths in legacy.values() for path in paths.values())

    switch_nova_conf(host, result['nova_conf_settings'])
    check = adopt(host, check=True, finalize=True)
    assert check['changed'] is True and sorted(check['instances'][instances[0]]['removed']) == sorted(
        legacy[instances[0]].values())
    assert all(os.path.isfile(path) for paths in legacy.values() for path in paths.values())

    final = adopt(host, finalize=True)
    assert final['changed'] is True and final['summary']['adopted'] == 2, final
    assert final['instances'][instances[0]]['actions'] == check['instances'][instances[0]]['actions']
    assert final['instances'][instances[0]]['actions'][-1] == {'action': 'disk_info'}
    for instance in instances:
        directory = os.path.join(host.instances, instance)
        assert not any(os.path.lexists(path) for path in legacy[instance].values())
        assert os.path.exists(os.path.join(directory, 'console.log'))
        with open(os.path.join(directory, 'disk.info')) as handle:
            assert json.load(handle) == {}
        assert rbd_checksums(ceph, instance, legacy[instance], workdir) == before[instance]
    assert os.path.isfile(host.base), 'finalize removed a _base file'
    assert adopt(host, finalize=True)['changed'] is False


def test_finalize_keeps_a_legacy_file_that_changed_after_its_import(conn, ceph, host):
    instance, other = host.instance(), host.instance()
    assert adopt(host)['summary']['adopted'] == 2
    local = host.disk_paths(instance)['disk.local']
    with open(local, 'r+b') as handle:  # as if Nova had started the instance on its legacy files
        handle.write(b'written after the import')
    switch_nova_conf(host, adopt(host)['nova_conf_settings'])
    result = adopt(host, finalize=True)
    outcome = result['instances'][instance]
    assert outcome['result'] == 'skipped' and 'changed after its import' in outcome['reason']
    assert all(os.path.isfile(path) for path in host.disk_paths(instance).values())
    assert result['instances'][other]['result'] == 'adopted'
    assert not host.disk_paths(other)


def test_an_image_name_taken_by_other_data_is_refused(conn, ceph, host, workdir):
    instance = host.instance()
    ceph.admin('create', '--size', '1M', '%s/%s_disk.local' % (ceph.pool, instance), tool='rbd')
    before_xml = conn.lookupByUUIDString(instance).XMLDesc(XML_FLAGS)
    result = adopt(host)
    outcome = result['instances'][instance]
    assert outcome['result'] == 'skipped' and "'%s_disk.local' with other data" % instance in outcome['reason']
    assert conn.lookupByUUIDString(instance).XMLDesc(XML_FLAGS) == before_xml
    assert sorted(image for image in ceph.rbd_ls() if image.startswith(instance)) == ['%s_disk.local' % instance]


def test_an_instance_already_on_rbd_only_gains_a_record(conn, ceph, host, workdir):
    """A host that ran Nova with images_type=rbd: the domain already names the images."""
    instance = host.instance(config=False)
    assert adopt(host)['instances'][instance]['result'] == 'adopted'
    image = '%s/%s_disk' % (ceph.pool, instance)
    ceph.admin('image-meta', 'remove', image, 'user.storagepools.libvirt', tool='rbd')
    result = adopt(host)
    assert result['changed'] is True and result['instances'][instance]['result'] == 'adopted'
    assert result['instances'][instance]['disks'] == []
    record = json.loads(ceph.admin('image-meta', 'get', image, 'user.storagepools.libvirt', tool='rbd'))
    assert record['method'] == 'in-place' and record['source'] == {'instance_uuid': instance, 'volume': image}
    assert adopt(host)['changed'] is False


def adopt_process(host, env, **args):
    params = dict(instances_path=host.instances, disks_pool=host.rbd_pool, ceph_keyring=host.keyring,
                  state_dir=host.state_dir, nova_conf=host.nova_conf, **args)
    process = start_module('legacy_disk_adopt', params, env)
    process.communicate()
    return process


@pytest.mark.parametrize('step', IMPORT_STEPS + ['import:2', 'verify:3'] + FINALIZE_STEPS)
def test_sigkill_at_every_cutover_step_then_rerun_converges(conn, ceph, host, workdir, step):
    instance = host.instance()
    before = host.checksums(instance)
    names = list(host.disk_paths(instance))
    finalize = step in FINALIZE_STEPS
    if finalize:
        switch_nova_conf(host, adopt(host)['nova_conf_settings'])
    killed = adopt_process(host, {'STORAGEPOOLS_KILL_AT': step}, finalize=finalize)
    assert killed.returncode == -9, 'the module was not killed at %s' % step
    if not finalize:
        assert host.checksums(instance) == before  # the legacy files are never touched by an import
    rerun = adopt(host, finalize=finalize)
    assert not rerun.get('failed') and rerun['instances'][instance]['result'] == 'adopted', rerun
    assert sorted(image for image in ceph.rbd_ls() if image.startswith(instance)) == sorted(
        '%s_%s' % (instance, name) for name in names), 'an orphan or a missing image'
    assert rbd_checksums(ceph, instance, names, workdir) == before
    for image in names:
        record = json.loads(ceph.admin('image-meta', 'get', '%s/%s_%s' % (ceph.pool, instance, image),
                                       'user.storagepools.libvirt', tool='rbd'))
        assert 'adopting' not in record
    assert adopt(host, finalize=finalize)['changed'] is False


@pytest.mark.parametrize('written', [False, True])
def test_an_unrecorded_image_is_a_killed_import_only_while_untouched(conn, ceph, host, workdir, written):
    """Killed between creating an image and recording it: the rerun redoes that image, but only while it is
    exactly the empty image the import made; one holding data is somebody else's and is never discarded."""
    instance = host.instance()
    before = host.checksums(instance)
    killed = adopt_process(host, {'STORAGEPOOLS_KILL_AT': 'import:1'})
    assert killed.returncode == -9
    image = '%s/%s_disk' % (ceph.pool, instance)
    ceph.admin('create', '--size', '32M', image, tool='rbd')  # the disk's virtual size, as the import makes it
    if written:
        ceph.admin('bench', '--io-type', 'write', '--io-size', '4K', '--io-total', '4K', image, tool='rbd')
        written_sha = ceph.image_sha256('%s_disk' % instance, workdir)
    rerun = adopt(host)
    outcome = rerun['instances'][instance]
    if written:
        assert outcome['result'] == 'skipped' and "'%s_disk' with other data" % instance in outcome['reason'], outcome
        assert ceph.image_sha256('%s_disk' % instance, workdir) == written_sha
    else:
        assert outcome['result'] == 'adopted', rerun
        assert rbd_checksums(ceph, instance, ['disk'], workdir) == {'disk': before['disk']}


def test_a_failed_import_leaves_nothing_and_a_wrong_keyring_fails_up_front(conn, ceph, host):
    instance = host.instance()
    before_xml = conn.lookupByUUIDString(instance).XMLDesc(XML_FLAGS)
    before = host.checksums(instance)
    failed = adopt(host, env={'STORAGEPOOLS_FAIL_AT': 'verify:2'})  # the second disk's compare fails
    outcome = failed['instances'][instance]
    assert failed['failed'] is True and outcome['result'] == 'failed' and 'fault injected' in outcome['reason']
    assert not [image for image in ceph.rbd_ls() if image.startswith(instance)], 'a half import was left'
    assert conn.lookupByUUIDString(instance).XMLDesc(XML_FLAGS) == before_xml
    assert host.checksums(instance) == before

    wrong = adopt(host, ceph_keyring=host.keyring + '.missing')
    assert wrong['failed'] is True and wrong['msg'].startswith('ceph_keyring: ') and 'instances' not in wrong

    assert adopt(host)['instances'][instance]['result'] == 'adopted'  # and then it goes through


def test_an_instance_larger_than_the_ceph_pool_can_take_is_refused_before_any_image(conn, ceph, host):
    instance = host.instance()
    df = json.loads(ceph.admin('df', '--format=json'))
    max_avail = [pool for pool in df['pools'] if pool['name'] == ceph.pool][0]['stats']['max_avail']
    local = host.disk_paths(instance)['disk.local']
    os.truncate(local, max_avail + 1024 ** 3)  # sparse: an rbd import needs the raw size
    before_xml = conn.lookupByUUIDString(instance).XMLDesc(XML_FLAGS)
    files = {name: os.stat(path) for name, path in host.disk_paths(instance).items()}
    result = adopt(host)
    reason = result['instances'][instance]['reason']
    assert result['failed'] is True and result['instances'][instance]['result'] == 'failed', result
    assert reason.startswith('disks_pool: importing instance %s (3 disks) needs ' % instance), reason
    assert "but Ceph pool '%s' has only" % ceph.pool in reason and 'available; nothing was written' in reason
    assert not [image for image in ceph.rbd_ls() if image.startswith(instance)], 'an image was made'
    assert conn.lookupByUUIDString(instance).XMLDesc(XML_FLAGS) == before_xml
    for name, path in host.disk_paths(instance).items():
        assert os.stat(path).st_mtime_ns == files[name].st_mtime_ns and not os.path.islink(path)


def test_finalize_never_removes_a_path_an_image_meta_names(conn, ceph, host, workdir):
    """Any holder of the pool's cephx key (every compute host) can rewrite image-meta: a record pointing
    finalize at a host file, with that file's size and mtime, must remove nothing but the instance's own."""
    canary = Canary(os.path.join(workdir, 'shadow'))
    instance = host.instance(config=False)
    assert adopt(host)['instances'][instance]['result'] == 'adopted'
    image = '%s/%s_disk.local' % (ceph.pool, instance)
    record = json.loads(ceph.admin('image-meta', 'get', image, 'user.storagepools.libvirt', tool='rbd'))
    info = os.stat(canary.path)
    record['source']['path'] = canary.path
    record['imported_from'] = {'size': info.st_size, 'mtime_ns': info.st_mtime_ns}
    ceph.admin('image-meta', 'set', image, 'user.storagepools.libvirt', json.dumps(record), tool='rbd')
    switch_nova_conf(host, adopt(host)['nova_conf_settings'])
    result = adopt(host, finalize=True)
    assert canary.path not in result['instances'][instance]['removed'], result
    assert os.path.isfile(host.disk_paths(instance)['disk.local'])  # its record no longer names it: kept
    assert not os.path.lexists(os.path.join(host.instances, instance, 'disk'))  # the untouched one went
    canary.assert_untouched()


def test_an_overlay_is_flattened_with_the_base_checked_never_a_path_its_header_names(conn, ceph, host, workdir):
    """qemu-img gets the overlay and its base through our descriptors: a base swapped for a symlink to a
    host file between the check and the import cannot bring that file into Ceph."""
    canary = Canary(os.path.join(workdir, 'shadow'), content=os.urandom(16 * 1024 * 1024))
    instance = host.instance(config=False)
    before = host.checksums(instance)
    paused = start_module('legacy_disk_adopt', dict(
        instances_path=host.instances, disks_pool=host.rbd_pool, ceph_keyring=host.keyring,
        state_dir=host.state_dir, nova_conf=host.nova_conf), {'STORAGEPOOLS_PAUSE_AT': 'import:1'})
    wait_for_step(host, instance, 'import')
    os.rename(host.base, host.base + '.aside')
    os.symlink(canary.path, host.base)
    out, _err = paused.communicate(timeout=300)
    assert json.loads(out)['instances'][instance]['result'] == 'adopted', out
    os.unlink(host.base)
    os.rename(host.base + '.aside', host.base)
    assert rbd_checksums(ceph, instance, ['disk'], workdir)['disk'] == before['disk']
    canary.assert_untouched()
