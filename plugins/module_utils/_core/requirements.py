# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a managed host needs for each module: pure data, for docs/managed-hosts.md and a preflight.

``MODULES`` names, per module, the Python modules its code imports (or asks ``missing_libraries`` for)
and the programs it can run; ``PYTHON`` and ``PROGRAMS`` name the package that provides each, per
``ansible_facts.os_family``. tests/unit/plugins/test_managed_host_requirements.py reads every module's
imports from its syntax tree and fails when this table and the code disagree.
"""

from __future__ import annotations

# The families a preflight looks up, by ansible_facts['os_family'] (Ubuntu reports Debian).
FAMILIES = ('Debian', 'RedHat')

# Python module (as imported) -> what it is, when it is needed, and its package per family (pip as last resort).
PYTHON = {
    'libvirt': {'what': 'the libvirt Python bindings', 'needed': 'always',
                'Debian': 'python3-libvirt', 'RedHat': 'python3-libvirt', 'pip': 'libvirt-python'},
    'lxml': {'what': 'lxml', 'needed': 'always',
             'Debian': 'python3-lxml', 'RedHat': 'python3-lxml', 'pip': 'lxml'},
    'rados': {'what': 'the Ceph RADOS bindings', 'needed': 'rbd pools',
              'Debian': 'python3-rados', 'RedHat': 'python3-rados', 'pip': None},
    'rbd': {'what': 'the Ceph RBD bindings', 'needed': 'rbd pools',
            'Debian': 'python3-rbd', 'RedHat': 'python3-rbd', 'pip': None},
}

# Program (argv[0]) -> what it is, when it runs, and its package per family.
PROGRAMS = {
    'qemu-img': {'what': 'qemu-img 5.0 or later', 'needed': 'copies, conversions, overlays',
                 'Debian': 'qemu-utils', 'RedHat': 'qemu-img'},
    'lvm': {'what': 'the LVM tools', 'needed': 'logical pools',
            'Debian': 'lvm2', 'RedHat': 'lvm2'},
}

# Module -> the Python modules and the programs its code reaches.
MODULES = {
    'live_migration_check': {'python': ('libvirt', 'lxml'), 'programs': ()},
    'legacy_disk_adopt': {'python': ('libvirt', 'lxml', 'rados', 'rbd'), 'programs': ('qemu-img', 'lvm')},
    'nova_image_cache': {'python': ('libvirt', 'lxml', 'rados', 'rbd'), 'programs': ('qemu-img', 'lvm')},
    'nova_conf_info': {'python': (), 'programs': ()},
    'progress_info': {'python': (), 'programs': ()},
    'nova_storage_prune': {'python': ('libvirt', 'lxml', 'rados', 'rbd'), 'programs': ('qemu-img', 'lvm')},
    'rbd_pool_secret': {'python': ('libvirt', 'lxml'), 'programs': ()},
    'transition_preflight': {'python': ('libvirt', 'lxml', 'rados', 'rbd'), 'programs': ('qemu-img', 'lvm')},
    'transition_report': {'python': (), 'programs': ()},
    'virt_pool_ensure': {'python': ('libvirt', 'lxml'), 'programs': ()},
    'virt_pool_info': {'python': ('libvirt', 'lxml', 'rados', 'rbd'), 'programs': ('qemu-img', 'lvm')},
    'virt_volume_clone': {'python': ('libvirt', 'lxml', 'rados', 'rbd'), 'programs': ('qemu-img', 'lvm')},
}


def packages_for(module: str, family: str) -> list[str]:
    """The packages ``module`` needs on a host of ``family`` (an os_family), sorted; [] for another family."""
    if family not in FAMILIES:
        return []
    needs = MODULES[module]
    return sorted({PYTHON[name][family] for name in needs['python']}
                  | {PROGRAMS[name][family] for name in needs['programs']})
