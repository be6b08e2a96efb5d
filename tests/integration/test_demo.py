# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""make demo (demo/run): it fails when any of its steps fails, and touches only the objects it made."""

from __future__ import annotations

import os
import subprocess

from conftest import BIN, REPO, RUN_ID, libvirt

DIR_POOL = """<pool type='dir'><name>{name}</name><target><path>{path}</path></target></pool>"""


def run_demo(root, prefix, **extra):
    env = dict(os.environ, STORAGEPOOLS_DEMO_ROOT=root, STORAGEPOOLS_DEMO_PREFIX=prefix,
               PATH=BIN + os.pathsep + os.environ['PATH'], **extra)
    proc = subprocess.run([os.path.join(REPO, 'demo', 'run')], capture_output=True, text=True, env=env,
                          timeout=900, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_the_demo_fails_when_a_step_fails_and_removes_only_what_it_made(conn, pools, workdir):
    root, prefix = os.path.join(workdir, 'demo'), 'spl-%s-demo' % RUN_ID
    made = ['%s-nova-base-images-pool' % prefix, '%s-nova-disks-pool' % prefix]
    pools.made.extend(made)  # removed after the test whatever happens
    foreign = pools.new()  # someone else's pool and domain, with the demo's kind of names
    os.makedirs(os.path.join(workdir, 'foreign'))
    conn.storagePoolDefineXML(DIR_POOL.format(name=foreign, path=os.path.join(workdir, 'foreign')), 0)
    try:
        code, out = run_demo(root, prefix)
        assert code == 0, out
        assert 'demo: second run changed=0' in out
        assert os.path.isfile(out.rsplit('the report to look at: ', 1)[1].split(' ', 1)[0])
        assert 'totals: adopted 4' in out  # the check-mode plan, printed before the transition
        first = set(conn.listDefinedDomains() + [conn.lookupByID(i).name() for i in conn.listDomainsID()])

        code, out = run_demo(root, prefix, STORAGEPOOLS_FAIL_AT='disk_info')  # the transition step fails
        assert code != 0, out
        assert 'demo: the step above failed' in out, out
        assert 'demo: second run changed=0' not in out
        now = set(conn.listDefinedDomains() + [conn.lookupByID(i).name() for i in conn.listDomainsID()])
        assert not {name for name in first if name.startswith('demo-instance-')} & now  # the first demo's, gone
        assert pools.lookup(foreign) is not None, 'the demo removed a pool it did not make'

        conn.storagePoolLookupByName(made[1]).destroy()
        conn.storagePoolLookupByName(made[1]).undefine()
        os.makedirs(os.path.join(workdir, 'elsewhere'))
        conn.storagePoolDefineXML(DIR_POOL.format(name=made[1], path=os.path.join(workdir, 'elsewhere')), 0)
        code, out = run_demo(root, prefix)  # a pool of the demo's name it did not make: refused, kept
        assert code != 0 and 'that the demo did not make' in out, out
        assert pools.lookup(made[1]) is not None
    finally:
        subprocess.run([os.path.join(BIN, 'python'), os.path.join(REPO, 'demo', 'legacy_host.py'), '--reset', root],
                       capture_output=True, check=False)
        for name in conn.listDefinedDomains():
            if name.startswith('demo-instance-'):
                domain = conn.lookupByName(name)
                if os.path.realpath(root) in domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE):
                    domain.undefine()
