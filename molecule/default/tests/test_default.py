# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""testinfra: what the transition left inside the guest."""

from __future__ import annotations

import json
import re

DISKS = '/var/lib/nova/disks'
INSTANCES = '/var/lib/nova/instances'


def instance_uuids(host):
    names = host.check_output('ls %s' % INSTANCES).split()
    return [name for name in names if re.match(r'^[0-9a-f-]{36}$', name)]


def test_pools_are_active_and_autostarted(host):
    for pool in ('nova-base-images-pool', 'nova-disks-pool'):
        info = host.check_output('virsh -q pool-info %s' % pool)
        assert re.search(r'State:\s+running', info), info
        assert re.search(r'Autostart:\s+yes', info), info


def test_every_disk_is_a_pool_volume_with_recorded_metadata(host):
    uuids = instance_uuids(host)
    assert len(uuids) == 3
    volumes = host.check_output('virsh -q vol-list nova-disks-pool')
    for uuid in uuids:
        for name in ('disk', 'disk.local'):
            volume = '%s_%s' % (uuid, name)
            assert volume in volumes
            record = json.loads(host.check_output(
                'getfattr --only-values -n trusted.storagepools.libvirt %s/%s' % (DISKS, volume)))
            assert record['format'] == ('qcow2' if name == 'disk' else 'raw')
            assert record['source']['path'] == '%s/%s/%s' % (INSTANCES, uuid, name)


def test_domains_point_at_the_pool_and_legacy_paths_are_links(host):
    for uuid in instance_uuids(host):
        xml = host.check_output('virsh dumpxml --inactive %s' % uuid)
        sources = re.findall(r"<source file='([^']+)'", xml)
        assert sources and all(source.startswith(DISKS + '/') or '/_base/' in source for source in sources)
        link = host.file('%s/%s/disk' % (INSTANCES, uuid))
        assert link.is_symlink and link.linked_to == '%s/%s_disk' % (DISKS, uuid)
        info = json.loads(host.file('%s/%s/disk.info' % (INSTANCES, uuid)).content_string)
        assert info['%s/%s_disk' % (DISKS, uuid)] == 'qcow2'


def test_the_base_images_stay(host):
    assert host.check_output('ls %s/_base' % INSTANCES).strip()
