# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""virt_pool_info against the real libvirtd."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

from conftest import run_module

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.file import XATTR_NAME


def info(**args):
    return run_module('virt_pool_info', args)


def ensure(**args):
    result = run_module('virt_pool_ensure', args)
    assert not result.get('failed'), result
    return result


def test_reports_active_and_inactive_pools(pools, workdir):
    active, inactive = pools.new(), pools.new()
    ensure(name=active, type='dir', target=os.path.join(workdir, 'a'))
    ensure(name=inactive, type='dir', target=os.path.join(workdir, 'i'), state='inactive', autostart=False)

    result = info()
    assert result['changed'] is False
    facts = result['pools']
    assert facts[active]['state'] == 'active' and facts[active]['autostart'] is True
    assert facts[active]['type'] == 'dir' and facts[active]['persistent'] is True
    assert facts[active]['target'] == os.path.join(workdir, 'a')
    assert facts[active]['capacity'] > 0 and facts[active]['available'] > 0
    assert facts[active]['uuid'] == pools.lookup(active).UUIDString()
    assert facts[inactive]['state'] == 'inactive' and facts[inactive]['autostart'] is False
    assert facts[inactive]['capacity'] == 0 and facts[inactive]['volumes'] is None


MiB = 1024 * 1024
LONG_AGO = 946684800  # 2000-01-01: relatime updates an atime this old on any read


class Canary:
    """A file hostile headers name; ``untouched()`` says whether it was read since ``reset()``."""

    def __init__(self, workdir):
        self.path = os.path.join(workdir, 'canary')
        with open(self.path, 'wb') as handle:
            handle.write(b'host secret\n' * 1000)

    def reset(self):
        os.utime(self.path, (LONG_AGO, LONG_AGO))

    def untouched(self):
        return os.stat(self.path).st_atime == LONG_AGO


def hostile_pool(pools, workdir, canary):
    """A dir pool holding a recorded qcow2 (8 MiB virtual), a qcow2 adopted as legacy_disk_adopt does it
    (renamed over the raw placeholder libvirt made, recorded 16 MiB virtual), an unrecorded qcow2 whose
    header names the canary as backing file, and a symlink to the canary; libvirt lists them all (its
    refresh read the canary, the canary is reset after it)."""
    name = pools.new()
    target = os.path.join(workdir, 'p')
    ensure(name=name, type='dir', target=target)
    image = os.path.join(workdir, 'image.raw')
    with open(image, 'wb') as handle:
        handle.truncate(8 * MiB)
        handle.write(os.urandom(MiB))
    made = run_module('virt_volume_clone', dict(pool=name, name='recorded.qcow2', format='qcow2',
                                                source={'path': image, 'format': 'raw'}))
    assert made['changed'] is True, made
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', canary.path,
                    os.path.join(target, 'hostile.img'), '1M'], check=True)
    os.symlink(canary.path, os.path.join(target, 'link.img'))
    pools.lookup(name).refresh(0)  # as libvirt's own start of the pool does
    pools.lookup(name).createXML("<volume><name>adopted</name><capacity>1024</capacity>"
                                 "<target><format type='raw'/></target></volume>", 0)
    legacy = os.path.join(workdir, 'legacy.qcow2')
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', legacy, str(16 * MiB)], check=True)
    os.setxattr(legacy, XATTR_NAME, json.dumps({'format': 'qcow2', 'virtual_size': 16 * MiB}).encode())
    os.rename(legacy, os.path.join(target, 'adopted'))
    canary.reset()
    return name, target


def test_file_volumes_are_sized_from_the_file_and_the_record_never_probed(pools, workdir):
    canary = Canary(workdir)
    name, target = hostile_pool(pools, workdir, canary)
    assert sorted(vol.name() for vol in pools.lookup(name).listAllVolumes(0)) == [
        'adopted', 'hostile.img', 'link.img', 'recorded.qcow2']

    volumes = {vol['name']: vol for vol in info(name=name, volumes=True)['pools'][name]['volumes']}
    assert canary.untouched(), 'the backing file a guest-written header names was read'
    assert volumes['adopted']['capacity'] == 16 * MiB  # libvirt, which made it as raw, says its file size
    recorded = volumes['recorded.qcow2']
    status = os.stat(os.path.join(target, 'recorded.qcow2'))
    assert recorded['capacity'] == 8 * MiB and recorded['size'] == status.st_size < 8 * MiB  # virtual, not file
    assert recorded['allocation'] == status.st_blocks * 512 and recorded['type'] == 'file'
    assert recorded['metadata']['format'] == 'qcow2' and recorded['note'] is None
    assert volumes['adopted']['size'] == os.stat(os.path.join(target, 'adopted')).st_size
    hostile = volumes['hostile.img']
    assert hostile['metadata'] is None and hostile['capacity'] is None and 'record' in hostile['note']
    assert hostile['size'] == os.stat(os.path.join(target, 'hostile.img')).st_size  # not libvirt's 1M
    assert 'format' not in hostile and 'backing' not in hostile
    link = volumes['link.img']
    assert link['type'] == 'symlink' and link['size'] is None and link['capacity'] is None
    assert link['metadata'] is None and 'not followed' in link['note']


def test_refresh_is_refused_for_a_pool_holding_guest_disks(conn, pools, workdir):
    canary = Canary(workdir)
    name, _target = hostile_pool(pools, workdir, canary)
    refused = info(name=name, volumes=True, refresh=True)
    assert refused['failed'] is True and refused['msg'].startswith('refresh: '), refused
    assert 'recorded metadata' in refused['msg']
    assert canary.untouched(), 'the refresh ran'
    everywhere = info(volumes=True, refresh=True)  # no pool is refreshed when one is refused
    assert everywhere['failed'] is True and everywhere['msg'].startswith('refresh: ')
    assert canary.untouched()

    # a file some domain uses makes a guest disk too, recorded or not, listed by libvirt or not
    used = pools.new()
    target = os.path.join(workdir, 'used')
    ensure(name=used, type='dir', target=target)
    disk = os.path.join(target, 'disk.img')
    with open(disk, 'wb') as handle:
        handle.truncate(MiB)
    domain = conn.defineXML(
        "<domain type='qemu'><name>%s</name><memory>65536</memory><os><type>hvm</type></os><devices>"
        "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='%s'/>"
        "<target dev='vda' bus='virtio'/></disk></devices></domain>" % (used, disk))
    try:
        refused = info(name=used, volumes=True, refresh=True)
        assert refused['failed'] is True and refused['msg'].startswith('refresh: ')
        assert "'disk.img'" in refused['msg'] and ("domain '%s'" % used) in refused['msg']
    finally:
        domain.undefine()
    listed = info(name=used, volumes=True, refresh=True)  # no guest disk left: refreshed, the file listed
    assert [vol['name'] for vol in listed['pools'][used]['volumes']] == ['disk.img'], listed


def test_orphans_are_looked_for_only_in_the_named_pool(pools, workdir):
    instances = os.path.join(workdir, 'instances')
    os.mkdir(instances)
    asked, other = pools.new(), pools.new()
    volumes = {}
    for pool in (asked, other):
        ensure(name=pool, type='dir', target=os.path.join(workdir, pool))
        volumes[pool] = '%s_disk' % uuid.uuid4()  # no directory in instances: an orphan if looked at
        pools.lookup(pool).createXML("<volume><name>%s</name><capacity>1024</capacity></volume>"
                                     % volumes[pool], 0)
    result = info(name=asked, instances_path=instances)
    assert [orphan['volume'] for orphan in result['orphans']] == [volumes[asked]]
    assert list(result['pools']) == [asked]
    unnamed = info(instances_path=instances)  # every pool on the daemon: another tool's volumes too
    assert unnamed['failed'] is True and unnamed['msg'].startswith('instances_path: '), unnamed
    assert 'name' in unnamed['msg'] and 'orphans' not in unnamed


def test_unreadable_metadata_is_a_clear_failure(pools, workdir):
    name = pools.new()
    target = os.path.join(workdir, 'p')
    ensure(name=name, type='dir', target=target)
    pools.lookup(name).createXML("<volume><name>v.img</name><capacity>1024</capacity></volume>", 0)
    os.setxattr(os.path.join(target, 'v.img'), XATTR_NAME, b'{not json')
    result = info(name=name, volumes=True)
    assert result['failed'] is True and result['msg'].startswith('volumes: ')


def test_an_unknown_pool_name_is_a_clear_failure(pools):
    result = info(name=pools.new())
    assert result['failed'] is True and result['msg'].startswith('name: ')


def test_unreachable_uri_is_a_clear_failure():
    result = info(uri='qemu+unix:///system?socket=/nonexistent/sock')
    assert result['failed'] is True and result['msg'].startswith('uri: ') and result['libvirt_error']
