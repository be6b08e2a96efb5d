# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Nova 34's own live-migration disk steps, run in .venv-nova (``python -W ignore THIS request.json``).

Not a copy of Nova: this imports nova and calls its LibvirtDriver, built on a
real libvirt connection, as nova-compute would on each side of a block live
migration.

``role: source`` (CONF instances_path = the source host's) prints what the
source computes: ``get_instance_disk_info`` (the JSON the conductor hands the
destination), ``_live_migration_copy_disk_paths``' selection rule's inputs,
the block-migration flags, the migration URI and the destination XML from
``migration.get_updated_guest_xml``.

``role: migrate`` runs the source's ``_live_migration_operation`` (libvirt's
migrateToURI3 to ``dest_host``) and prints its error, if any.

``role: destination`` (CONF instances_path = the destination's) runs
``pre_live_migration`` with that disk info for a block migration on a
non-shared instances_path, and prints the files it made.
"""

import json
import os
import sys
import tempfile


def configure(request):
    from nova import config, objects
    conf = os.path.join(tempfile.mkdtemp(dir=request['scratch']), 'nova.conf')
    with open(conf, 'w') as handle:
        handle.write('[DEFAULT]\ninstances_path = %s\nstate_path = %s\n'
                     '[libvirt]\nvirt_type = qemu\nimages_type = qcow2\nconnection_uri = %s\n'
                     '[oslo_concurrency]\nlock_path = %s\n'
                     % (request['instances_path'], request['scratch'], request['uri'],
                        os.path.join(request['scratch'], 'locks')))
    config.parse_args(['nova-compute', '--config-file', conf])
    objects.register_all()
    # We run as root: Nova's privileged helpers run in this process instead of behind a
    # privsep daemon (the same functions; there is no privsep-helper on PATH here).
    import nova.privsep
    nova.privsep.sys_admin_pctxt.set_client_mode(False)


def driver_and_instance(request):
    from nova import context, objects
    from nova.virt import virtapi
    from nova.virt.libvirt import driver
    libvirt_driver = driver.LibvirtDriver(virtapi.VirtAPI(), read_only=False)
    libvirt_driver._parse_migration_flags()  # what init_host does for migrations
    flavor = objects.Flavor(name='m1', memory_mb=64, vcpus=1, root_gb=0, ephemeral_gb=0, swap=0,
                            extra_specs={})
    instance = objects.Instance(
        id=1, uuid=request['uuid'], host='source-host', node='source-host', image_ref=request['image_id'],
        kernel_id='', ramdisk_id='', os_type=None, vm_state='active', task_state='migrating',
        trusted_certs=None, migration_context=None, flavor=flavor, system_metadata={},
        config_drive='', vm_mode=None)
    return libvirt_driver, instance, context.get_admin_context()


def source_migrate_data(request):
    from nova import objects
    return objects.LibvirtLiveMigrateData(
        block_migration=True, is_shared_block_storage=False, is_shared_instance_path=False,
        instance_relative_path=request['uuid'], bdms=[], graphics_listen_addr_vnc='127.0.0.1',
        graphics_listen_addr_spice='127.0.0.1', serial_listen_addr=None, serial_listen_ports=[],
        supported_perf_events=[], target_connect_addr=request.get('dest_host'))


def copied_device_names(guest):
    """``_live_migration_copy_disk_paths``' rule (it reads BDMs from Nova's database first: there are
    none, the instance has no volumes): every file/block disk that is neither readonly nor shareable."""
    return [dev.target_dev for dev in guest.get_all_disks()
            if not (dev.readonly or dev.shareable) and dev.source_type in ('file', 'block')]


def source(request):
    import libvirt
    from nova.virt.libvirt import migration
    libvirt_driver, instance, _context = driver_and_instance(request)
    disk_info = libvirt_driver.get_instance_disk_info(instance)
    guest = libvirt_driver._host.get_guest(instance)
    destination_xml = migration.get_updated_guest_xml(
        instance, guest, source_migrate_data(request), libvirt_driver._get_volume_config)
    flags = libvirt_driver._block_migration_flags
    return {
        'disk_info': disk_info,
        'destination_xml': destination_xml,
        'disks': [{'path': dev.source_path, 'dev': dev.target_dev, 'source_type': dev.source_type,
                   'readonly': bool(dev.readonly), 'shareable': bool(dev.shareable)}
                  for dev in guest.get_all_disks()],
        'copied_devices': copied_device_names(guest),
        'block_migration_flags': flags,
        'non_shared_inc': bool(flags & libvirt.VIR_MIGRATE_NON_SHARED_INC),
        'non_shared_disk': bool(flags & libvirt.VIR_MIGRATE_NON_SHARED_DISK),
        'migration_uri': libvirt_driver._live_migration_uri(request.get('dest_host') or 'dest-host'),
    }


def migrate(request):
    """The source's ``_live_migration_operation`` for a block migration to ``dest_host``: the migration
    URI, flags, destination XML and ``guest.migrate`` call are Nova's."""
    libvirt_driver, instance, admin = driver_and_instance(request)
    guest = libvirt_driver._host.get_guest(instance)
    try:
        libvirt_driver._live_migration_operation(admin, instance, request['dest_host'], True,
                                                 source_migrate_data(request), guest, copied_device_names(guest))
    except Exception as exc:  # the migration's error is the finding
        return {'migrated': False, 'error': str(exc)}
    return {'migrated': True, 'error': None}


def destination(request):
    from nova import objects
    libvirt_driver, instance, admin = driver_and_instance(request)
    migrate_data = objects.LibvirtLiveMigrateData(
        block_migration=True, is_shared_block_storage=False, is_shared_instance_path=False,
        instance_relative_path=instance.uuid)
    libvirt_driver.pre_live_migration(admin, instance, block_device_info=None, network_info=[],
                                      disk_info=request['disk_info'], migrate_data=migrate_data)
    instance_dir = os.path.join(request['instances_path'], instance.uuid)
    made = {}
    for name in sorted(os.listdir(instance_dir)):
        path = os.path.join(instance_dir, name)
        made[name] = {'islink': os.path.islink(path), 'size': os.path.getsize(path)}
    with open(os.path.join(instance_dir, 'disk.info')) as handle:
        written_disk_info = json.load(handle)
    return {'instance_dir': instance_dir, 'files': made, 'disk_info_file': written_disk_info}


def main():
    with open(sys.argv[1]) as handle:
        request = json.load(handle)
    configure(request)
    result = {'source': source, 'destination': destination, 'migrate': migrate}[request['role']](request)
    print(json.dumps(result))


if __name__ == '__main__':
    main()
