# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""testinfra: the logical disks pool inside the guest."""

from __future__ import annotations

import base64
import json
import re


def test_the_disks_pool_is_the_volume_group_active_and_autostarted(host):
    info = host.check_output('virsh -q pool-info nova-disks-pool')
    assert re.search(r'State:\s+running', info) and re.search(r'Autostart:\s+yes', info), info
    xml = host.check_output('virsh -q pool-dumpxml nova-disks-pool')
    assert "<pool type='logical'>" in xml and '<name>nova-vg</name>' in xml


def test_libvirt_makes_real_logical_volumes_there(host):
    host.check_output('virsh -q vol-create-as nova-disks-pool spl-probe 8M')
    try:
        assert 'spl-probe' in host.check_output('lvs --noheadings -o lv_name nova-vg')
    finally:
        host.check_output('virsh -q vol-delete spl-probe --pool nova-disks-pool')


def test_the_cache_pool_stays_a_directory_pool_on_base(host):
    xml = host.check_output('virsh -q pool-dumpxml nova-base-images-pool')
    assert "<pool type='dir'>" in xml and '/var/lib/nova/instances/_base' in xml


def lv_record(host, lv):
    """The record this collection keeps in the LV's tags (base64 JSON split over numbered tags)."""
    tags = host.check_output('lvs --noheadings -o lv_tags nova-vg/%s' % lv).strip().split(',')
    parts = dict(tag[len('storagepools.libvirt.'):].split('=', 1) for tag in tags
                 if tag.startswith('storagepools.libvirt.'))
    return json.loads(base64.b64decode(''.join(parts[key] for key in sorted(parts, key=int))))


def test_copies_into_lvs_hold_the_images_data_and_zeroes_elsewhere(host):
    # prepare filled the VG's free space with 0xff first: holes and tails must read as zeroes
    assert host.run('cmp /var/tmp/spl-image.raw /dev/nova-vg/spl-base').rc == 0
    assert host.run('cmp -n 20971520 /var/tmp/spl-image.raw /dev/nova-vg/spl-from-qcow2').rc == 0
    tail = host.run('cmp -i 20971520 /dev/nova-vg/spl-from-qcow2 /dev/zero')
    assert 'EOF on /dev/nova-vg/spl-from-qcow2' in tail.stderr + tail.stdout, tail


def test_records_in_lv_tags(host):
    base = lv_record(host, 'spl-base')
    assert base['format'] == 'raw' and base['virtual_size'] == 20971520
    assert base['source'] == {'path': '/var/tmp/spl-image.raw', 'image_id': 'spl-image'}
    assert base['method'] == 'qemu-img-convert'
    converted = lv_record(host, 'spl-from-qcow2')
    assert converted['virtual_size'] == 33554432 and converted['source'] == {'path': '/var/tmp/spl-image.qcow2'}


def test_the_cow_clone_is_an_lvm_snapshot_of_the_base(host):
    lv = '6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b_disk'
    assert host.check_output('lvs --noheadings -o origin nova-vg/%s' % lv).strip() == 'spl-base'
    record = lv_record(host, lv)
    assert record['method'] == 'lvm-snapshot'
    assert record['backing'] == {'pool': 'nova-disks-pool', 'volume': 'spl-base', 'format': 'raw',
                                 'path': '/dev/nova-vg/spl-base'}
    assert host.run('cmp /dev/nova-vg/spl-base /dev/nova-vg/%s' % lv).rc == 0


def checksums(host):
    return json.loads(host.file('/root/checksums.json').content_string)


def test_the_legacy_instances_are_on_lvs_holding_the_guest_view(host):
    for uuid, sums in checksums(host).items():
        for name in ('disk', 'disk.local'):
            lv = '%s_%s' % (uuid, name)
            record = lv_record(host, lv)
            assert record['method'] == 'lvm-import' and record['format'] == 'raw'
            assert record['source']['path'] == '/var/lib/nova/instances/%s/%s' % (uuid, name)
            assert record['source']['format'] == ('qcow2' if name == 'disk' else 'raw')
            # the overlay was flattened with its _base file
            assert ('flattened_from' in record['source']) == (name == 'disk')
            data = host.check_output('head -c %d /dev/nova-vg/%s | sha256sum' % (record['virtual_size'], lv))
            assert data.split()[0] == sums[name], lv


def test_the_domains_point_at_the_lvs_and_start(host):
    for uuid, sums in checksums(host).items():
        xml = host.check_output('virsh dumpxml %s' % uuid)
        for name in ('disk', 'disk.local'):
            assert "<source dev='/dev/nova-vg/%s_%s'/>" % (uuid, name) in xml
        assert "type='qcow2'" not in xml and '<backingStore' not in xml
        assert ('/var/lib/nova/instances/%s/disk.config' % uuid in xml) == ('disk.config' in sums)
    uuid = sorted(checksums(host))[0]
    host.check_output('virsh start %s' % uuid)
    try:
        assert host.check_output('virsh domstate %s' % uuid) == 'running'
    finally:
        host.check_output('virsh destroy %s' % uuid)


def test_finalize_removed_the_legacy_files_but_the_config_drive_and_bases(host):
    for uuid, sums in checksums(host).items():
        directory = '/var/lib/nova/instances/%s' % uuid
        assert not host.file('%s/disk' % directory).exists and not host.file('%s/disk.local' % directory).exists
        assert host.file('%s/disk.config' % directory).exists == ('disk.config' in sums)
        info = json.loads(host.file('%s/disk.info' % directory).content_string)
        assert sorted(info) == (['%s/disk.config' % directory] if 'disk.config' in sums else [])
    bases = host.check_output('ls /var/lib/nova/instances/_base').split()
    assert bases, 'a _base file is gone'
    for base in bases:  # the image cache, imported into LVs of the same name
        record = lv_record(host, base)
        assert record['source'] == {'path': '/var/lib/nova/instances/_base/%s' % base, 'nova_base': base}
    assert 'images_type = lvm' in host.file('/var/lib/nova/nova.conf').content_string


def test_copies_survive_a_power_cut_right_after_the_module_returned(host):
    """side_effect.yml cut the power with writeback off: only the module's own fsync kept these."""
    expected = host.check_output('cat /root/powercut.sha256').strip()
    lv = host.check_output('head -c 8M /dev/nova-vg/spl-powercut | sha256sum').split()[0]
    assert lv == expected
    raw = host.check_output('sha256sum /var/lib/spl-powercut/raw').split()[0]
    assert raw == expected
    assert host.check_output('sha256sum /var/tmp/spl-powercut.raw').split()[0] == expected
    for name in ('from-path.qcow2', 'from-volume.qcow2'):
        same = host.run('qemu-img compare -q -f raw -F qcow2 /var/tmp/spl-powercut.raw /var/lib/spl-powercut/%s' % name)
        assert same.rc == 0, (name, same.stdout, same.stderr)
    assert lv_record(host, 'spl-powercut')['format'] == 'raw'


# -- side_effect.yml's prune.yml and revert.yml: what each step returned and what observe.py saw after it --

QUARANTINE_PREFIX = 'storagepools-quarantine.'
EXPIRY_TAG = 'storagepools.quarantine.expires_at='


def side_effect(host, name):
    return json.loads(host.file('/root/side-effect/%s.json' % name).content_string)


def nova_ops(host):
    return json.loads(host.file('/root/nova-ops.json').content_string)


def reclaimed(result, action):
    return sorted(entry['volume'] for entry in result['reclaimed'] if entry['action'] == action)


def instance_lvs(uuid):
    return ['%s_%s' % (uuid, name) for name in ('disk', 'disk.local')]


def outside(files, *directories):
    """The entries of an observed instances_path outside the given instance directories."""
    return dict((path, entry) for path, entry in files.items()
                if not any(path == directory or path.startswith(directory + '/') for directory in directories))


def test_nova_delete_and_resize_confirm_then_the_prune_quarantines_exactly_their_lvs(host):
    ops, results = nova_ops(host), side_effect(host, 'prune')
    before, after = side_effect(host, 'before'), side_effect(host, 'quarantined')  # after: without content
    restored = side_effect(host, 'restored')  # the three still quarantined, with content
    expected = sorted(instance_lvs(ops['deleted']) + instance_lvs(ops['resized']))
    check, quarantined = results['check'], results['quarantined']
    assert quarantined['changed'] is True and reclaimed(quarantined, 'quarantined') == expected, quarantined
    assert check['changed'] is True and check['reclaimed'] == quarantined['reclaimed']
    assert check['actions'] == quarantined['actions'] and check['diff'] == quarantined['diff']
    assert 'quarantined for %d s' % results['quarantine'] in quarantined['diff']['after']
    why = dict((entry['volume'], entry['reason']) for entry in quarantined['reclaimed'])
    for uuid in checksums(host):
        assert all(why[lv].startswith("its instance has domain") for lv in instance_lvs(uuid)), why
    assert why['6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b_disk'].startswith("its instance has domain 'spl-snapshot")
    # each of them renamed with the prefix and tagged with its expiry; same record tags, same content
    hidden = dict((QUARANTINE_PREFIX + lv, lv) for lv in expected)
    assert sorted(after['lvs']) == sorted(set(before['lvs']) - set(expected) | set(hidden))
    expires_at = results['quarantined_at'] + results['quarantine']
    for name, lv in hidden.items():
        tags = after['lvs'][name]['tags']
        marks = [tag for tag in tags if tag.startswith(EXPIRY_TAG)]
        assert len(marks) == 1 and 0 <= int(marks[0][len(EXPIRY_TAG):]) - expires_at <= 60, tags
        assert sorted(set(tags) - set(marks)) == before['lvs'][lv]['tags']
        if name in restored['lvs']:
            assert restored['lvs'][name]['sha256'] == before['lvs'][lv]['sha256'], name
    back = QUARANTINE_PREFIX + '%s_disk' % ops['deleted']  # restored before the observation with content
    assert sorted(hidden) == sorted(set(restored['lvs']) - set(before['lvs']) | {back})
    # every other LV (instances', bases', the snapshot and its origin) and file untouched; libvirt lists
    # none by its name (a logical pool lists every LV of the VG: these under the quarantine name)
    for name in set(after['lvs']) - set(hidden):
        assert after['lvs'][name]['tags'] == before['lvs'][name]['tags'], name
        assert restored['lvs'][name] == before['lvs'][name], name
    assert after['listed'] == sorted(set(before['listed']) - set(expected) | set(hidden))
    gone = ['/var/lib/nova/instances/%s' % ops[role] for role in ('deleted', 'resized')]
    assert outside(after['files'], *gone) == outside(before['files'], *gone)
    assert not any(path.startswith(tuple(gone)) for path in after['files'])
    rerun = results['rerun']
    assert rerun['changed'] is False and reclaimed(rerun, 'quarantined') == [], rerun


def test_a_restore_brings_one_lv_back_byte_equal(host):
    ops, results = nova_ops(host), side_effect(host, 'prune')
    before, restored = side_effect(host, 'before'), side_effect(host, 'restored')
    back = '%s_disk' % ops['deleted']
    assert results['restored']['changed'] is True and reclaimed(results['restored'], 'restored') == [back]
    assert restored['lvs'][back] == before['lvs'][back]  # content, record tags (no expiry left), origin
    assert QUARANTINE_PREFIX + back not in restored['lvs'] and back in restored['listed']
    assert results['restored_again']['changed'] is False, results['restored_again']


def test_a_run_after_the_quarantine_expired_purges_and_reruns_change_nothing(host):
    ops, results = nova_ops(host), side_effect(host, 'prune')
    before, pruned = side_effect(host, 'before'), side_effect(host, 'pruned')
    back = '%s_disk' % ops['deleted']
    expected = sorted(set(instance_lvs(ops['deleted']) + instance_lvs(ops['resized'])) - {back})
    check, purged = results['purge_check'], results['purged']
    assert purged['changed'] is True and reclaimed(purged, 'purged') == expected, purged
    assert check['reclaimed'] == purged['reclaimed'] and check['actions'] == purged['actions']
    assert check['diff'] == purged['diff']
    why = dict((entry['volume'], entry['reason']) for entry in purged['reclaimed'])
    assert 'orphan_min_age' in why[back]  # its orphan clock started afresh with the restore
    assert results['purge_rerun']['changed'] is False, results['purge_rerun']
    # quarantine 0 purges at once
    assert reclaimed(results['at_once'], 'purged') == [back], results['at_once']
    assert results['at_once_rerun']['changed'] is False, results['at_once_rerun']
    everything = set(instance_lvs(ops['deleted']) + instance_lvs(ops['resized']))
    assert not any(name.startswith(QUARANTINE_PREFIX) for name in pruned['lvs'])
    assert pruned['lvs'] == dict((name, lv) for name, lv in before['lvs'].items() if name not in everything)
    assert pruned['listed'] == sorted(set(before['listed']) - everything)
    assert host.run('lvs nova-vg/%s' % back).rc != 0


def test_a_revert_before_finalize_puts_the_domain_back_on_the_unchanged_legacy_files(host):
    uuid = nova_ops(host)['reverted']
    results = side_effect(host, 'revert')
    legacy, imported = side_effect(host, 'revert-legacy'), side_effect(host, 'revert-imported')
    checked, done = side_effect(host, 'revert-check'), side_effect(host, 'revert-done')
    lvs = instance_lvs(uuid)
    assert results['imported']['instances'][uuid]['result'] == 'adopted', results['imported']
    assert all(lv in imported['lvs'] and lv in imported['listed'] for lv in lvs)
    assert all("<source dev='/dev/nova-vg/%s'/>" % lv in imported['domains'][uuid] for lv in lvs)
    assert imported['files'] == legacy['files']  # the import keeps the legacy files as they are

    planned, outcome = results['check']['instances'][uuid], results['reverted']['instances'][uuid]
    assert results['check']['changed'] is True and planned['result'] == 'reverted', results['check']
    assert checked == imported, 'check mode changed something'
    assert results['reverted']['changed'] is True and outcome['result'] == 'reverted', results['reverted']
    assert outcome['actions'] == planned['actions'] and outcome['domain_diff'] == planned['domain_diff']

    assert done['domains'][uuid] == legacy['domains'][uuid]
    directory = '/var/lib/nova/instances/%s' % uuid
    ours = dict((path, entry) for path, entry in done['files'].items() if path.startswith(directory + '/'))
    assert ours == dict((path, entry) for path, entry in legacy['files'].items() if path.startswith(directory + '/'))
    assert not any(name.startswith(uuid) for name in done['lvs']), sorted(done['lvs'])
    assert not any(name.startswith(uuid) for name in done['listed']), done['listed']
    rerun = results['rerun']
    assert rerun['changed'] is False and rerun['instances'][uuid]['result'] == 'not_adopted', rerun
