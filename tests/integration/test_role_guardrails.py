# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Wrong settings an operator walk-through found finishing green: each is refused by the roles, before they
touch the host, naming the variable (and the values) at fault."""

from __future__ import annotations

import os
import sys

import pytest
from conftest import libvirt
from nova_host import NovaHost
from test_roles import run_playbook


@pytest.fixture
def host(conn, pools, workdir):
    """A fake compute host and an inventory for it: {nova, inventory, cache, disks}."""
    root = os.path.join(workdir, 'guardhost')
    nova = NovaHost(conn, root, pools.new())
    nova.instance(config=False)
    cache, disks = pools.new(), pools.new()
    inventory = os.path.join(workdir, 'guard-inventory.ini')
    with open(inventory, 'w') as handle:
        handle.write(' '.join([
            'guardhost', 'ansible_connection=local', 'ansible_python_interpreter=%s' % sys.executable,
            'storagepools_instances_path=%s' % nova.instances, 'storagepools_disks_path=%s/disks' % root,
            'storagepools_cache_pool=%s' % cache, 'storagepools_disks_pool=%s' % disks,
            'storagepools_nova_conf=%s' % nova.nova_conf, 'storagepools_state_dir=%s/state' % root,
            'storagepools_report_dir=%s' % os.path.join(workdir, 'report')]) + '\n')
    yield {'nova': nova, 'inventory': inventory, 'cache': cache, 'disks': disks, 'root': root}
    nova.cleanup()


def untouched(pools, host):
    return pools.lookup(host['cache']) is None and pools.lookup(host['disks']) is None \
        and not os.path.exists(os.path.join(host['root'], 'disks'))


@pytest.mark.parametrize('playbook', ['pools', 'image_cache', 'transition', 'maintain'])
def test_an_unknown_storagepools_variable_is_reported_by_name(installed, pools, host, playbook):
    code, out = run_playbook(installed, playbook, host['inventory'], '-e', 'storagepools_cache_pol=typo',
                             '-e', 'storagepools_disk_path=/elsewhere')
    assert code != 0, out
    assert 'unknown variable(s) storagepools_cache_pol, storagepools_disk_path' in out, out
    assert untouched(pools, host)


def test_an_instances_path_nova_does_not_use_is_refused_naming_both(installed, pools, host, workdir):
    typo = os.path.join(workdir, 'guardhost', 'instance')  # exists neither; a typo of Nova's
    for playbook in ('transition', 'image_cache'):
        code, out = run_playbook(installed, playbook, host['inventory'], '-e', 'storagepools_instances_path=%s' % typo)
        assert code != 0, out
        assert 'storagepools_instances_path is %s, but %s has instances_path = %s' % (
            typo, host['nova'].nova_conf, host['nova'].instances) in ' '.join(out.split()), out
        assert untouched(pools, host)


def test_nova_conf_instances_path_from_state_path(installed, pools, host):
    """nova.conf without instances_path: Nova's default, $state_path/instances, is what is compared."""
    nova = host['nova']
    with open(nova.nova_conf, 'w') as handle:
        handle.write('[DEFAULT]\nstate_path = %s\n' % os.path.dirname(nova.instances))
    code, out = run_playbook(installed, 'transition', host['inventory'], '--check')
    assert code == 0, out
    with open(nova.nova_conf, 'w') as handle:
        handle.write('[DEFAULT]\nstate_path = /var/lib/nova\n')
    code, out = run_playbook(installed, 'transition', host['inventory'], '--check')
    assert code != 0 and 'has instances_path = /var/lib/nova/instances' in ' '.join(out.split()), out


def test_a_nova_conf_that_does_not_exist_is_an_error(installed, pools, host, workdir):
    missing = os.path.join(workdir, 'no-such-nova.conf')
    for playbook in ('transition', 'image_cache'):
        code, out = run_playbook(installed, playbook, host['inventory'], '-e', 'storagepools_nova_conf=%s' % missing)
        assert code != 0, out
        assert 'storagepools_nova_conf: %s does not exist on this host' % missing in ' '.join(out.split()), out
        assert untouched(pools, host)


def test_a_changed_pool_definition_is_refused_unless_allowed_and_restart_required_fails(
        installed, conn, pools, host, workdir):
    code, out = run_playbook(installed, 'pools', host['inventory'])
    assert code == 0, out
    pool = conn.storagePoolLookupByName(host['disks'])
    before = pool.XMLDesc(libvirt.VIR_STORAGE_XML_INACTIVE)
    moved = os.path.join(workdir, 'moved-disks')
    code, out = run_playbook(installed, 'pools', host['inventory'], '-e', 'storagepools_disks_path=%s' % moved)
    assert code != 0, out
    assert "storagepools_allow_pool_redefine: pool '%s' differs from the task" % host['disks'] in out, out
    assert moved in out  # the difference is shown
    assert pool.XMLDesc(libvirt.VIR_STORAGE_XML_INACTIVE) == before and not os.path.exists(moved)

    code, out = run_playbook(installed, 'pools', host['inventory'], '-e', 'storagepools_disks_path=%s' % moved,
                             '-e', 'storagepools_allow_pool_redefine=true')
    assert code != 0, out
    flat = ' '.join(out.split())
    assert 'pool(s) %s were redefined (storagepools_allow_pool_redefine) but run their old definition' % (
        host['disks']) in flat and 'restart_required' in flat, out
    assert moved in pool.XMLDesc(libvirt.VIR_STORAGE_XML_INACTIVE)  # redefined, allowed
    assert moved not in pool.XMLDesc(0)  # still running the old one: the later steps would have used it
