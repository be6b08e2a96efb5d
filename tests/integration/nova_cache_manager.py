# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Nova's own image cache code, run by Nova's Python (.venv-nova) for test_nova_image_cache_rules.py.

``python -W ignore nova_cache_manager.py '<json>'`` with {"action": ..., ...}; prints one JSON object.

- ``cache_fname``: {image_ids} -> {image id: nova.virt.libvirt.imagecache.get_cache_fname(image id)}
- ``update``: {instances_path, db, instances: [{uuid, image_ref, ...}], image_cache: {option: value}} runs
  ImageCacheManager().update(context, instances) over instances_path as the compute manager's periodic task
  does: Nova's config set through oslo.config, a real sqlite database (Nova's own schema, no block device
  mappings), nova.objects.Instance objects built in memory, privsep in-process (we are root).
- ``lock``: {instances_path, base} -> Nova's lock file path for the base, and whether Nova's external lock
  (oslo.concurrency, prefix 'nova-') can be taken right now.
"""

import json
import os
import sys


def configure(args):
    import nova.conf
    from nova import config
    conf = nova.conf.CONF
    config.parse_args([], configure_db=False, init_rpc=False)
    conf.set_override('instances_path', args['instances_path'])
    conf.set_override('host', 'compute-a')
    for key, value in args.get('image_cache', {}).items():
        conf.set_override(key, value, group='image_cache')
    return conf


def update(args):
    conf = configure(args)
    conf.set_override('connection', 'sqlite:///' + args['db'], group='database')
    from nova.db import migration
    migration.db_sync()
    import nova.privsep
    nova.privsep.sys_admin_pctxt.set_client_mode(False)
    from nova import context as nova_context, objects
    objects.register_all()
    from nova.virt.libvirt import imagecache
    context = nova_context.get_admin_context()
    instances = []
    for number, wanted in enumerate(args['instances'], 1):
        fields = dict(id=number, host='compute-a', kernel_id=None, ramdisk_id=None, task_state=None,
                      vm_state='active', os_type=None)
        fields.update(wanted)
        instances.append(objects.Instance(context, **fields))
    base_dir = os.path.join(args['instances_path'], '_base')
    before = set(os.listdir(base_dir))
    manager = imagecache.ImageCacheManager()
    manager.update(context, instances)
    return {'removed': sorted(before - set(os.listdir(base_dir))),
            'active': sorted(os.path.basename(path) for path in manager.active_base_files)}


def cache_fname(args):
    from nova.virt.libvirt import imagecache
    return dict((image_id, imagecache.get_cache_fname(image_id)) for image_id in args['image_ids'])


def lock(args):
    configure(args)
    from oslo_concurrency import lockutils
    from nova.virt.libvirt import imagecache
    lock_path = imagecache.ImageCacheManager().lock_path
    external = lockutils.external_lock(args['base'], lock_file_prefix='nova-', lock_path=lock_path)
    taken = external.acquire(blocking=False)
    if taken:
        external.release()
    return {'path': external.path if isinstance(external.path, str) else external.path.decode(), 'taken': taken}


if __name__ == '__main__':
    request = json.loads(sys.argv[1])
    print(json.dumps({'cache_fname': cache_fname, 'update': update, 'lock': lock}[request['action']](request)))
