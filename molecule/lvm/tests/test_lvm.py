# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""testinfra: the logical disks pool inside the guest."""

from __future__ import annotations

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
