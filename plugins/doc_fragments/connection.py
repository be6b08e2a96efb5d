# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # The libvirt connection every module of this collection opens.
    DOCUMENTATION = r'''
options:
  uri:
    description:
      - The libvirt connection URI, for example C(qemu:///system) or C(qemu+ssh://root@host/system).
      - A URI with a host part or a network transport (C(tcp), C(tls), C(ssh)) is remote, also when it names
        this machine. Modules that act on the libvirt host's own files (adoption, the image cache, pruning, the
        preflight, cloning into a pool) refuse a remote URI before connecting; run them on that host
        (C(delegate_to) or its own inventory entry) with a local URI. Pools, pool facts and secrets work remotely;
        see the collection's docs/pools.md, "Remote URIs".
    type: str
    default: qemu:///system
requirements:
  - libvirt Python bindings on the managed host (Debian/Ubuntu C(python3-libvirt))
  - lxml on the managed host (Debian/Ubuntu C(python3-lxml))
notes:
  - Failures name the option at fault in C(msg); libvirt's own message, when there is one,
    is returned separately as C(libvirt_error).
'''

    # Each writing module's fragment says what its check mode and --diff do, and only that (plain strings:
    # ansible-test reads fragments without running them).
    POOL_ACTIONS = r'''
attributes:
  check_mode:
    description: Computes the same plan as a real run, returns it in RV(actions), and applies nothing.
    support: full
  diff_mode:
    description: Shows the pool's canonical definition before and after, with state and autostart.
    support: full
'''

    SECRET_ACTIONS = r'''
attributes:
  check_mode:
    description: Computes the same plan as a real run, returns it in RV(actions), and applies nothing.
    support: full
  diff_mode:
    description:
      - Shows the secret's definition before and after, with the key fingerprint in its description masked.
      - The key itself is never shown; a line says whether the secret gets a key, another key or the same key.
    support: full
'''

    VOLUME_ACTIONS = r'''
attributes:
  check_mode:
    description: Computes the same plan as a real run, returns it in RV(actions), and applies nothing.
    support: full
  diff_mode:
    description: Shows the volume's canonical XML and its recorded metadata before and after.
    support: full
'''

    ADOPT_ACTIONS = r'''
attributes:
  check_mode:
    description:
      - Computes the same per-instance plan as a real run (its steps in C(actions), which disks move and
        how) and the domain's diff, and changes nothing; the host lock is not taken.
    support: full
  diff_mode:
    description: Shows, per instance whose domain changes, its inactive XML before and after in a canonical form,
      so only the adopted disks' type, source, backing store (and for rbd and logical pools auth and driver type)
      show as changes.
    support: full
'''

    PRUNE_ACTIONS = r'''
attributes:
  check_mode:
    description: Computes the same decisions as a real run (RV(reclaimed), RV(actions)) and changes nothing; no
      first-seen time is recorded and the host lock is not taken.
    support: full
  diff_mode:
    description: Shows where each reclaimed or restored volume is before and after.
    support: full
'''

    # For the modules that take a pool the play's pools step makes (the transition's check mode).
    PLANNED_POOLS = r'''
options:
  planned_pools:
    description:
      - Check mode only (ignored otherwise). The RV(storagepools.libvirt.virt_pool_ensure#module:pool) results of
        the play's earlier virt_pool_ensure tasks, run in check mode too. When libvirt has no active pool of a
        name the task uses, it plans against the dir pool of that name that those tasks would define and start,
        so check mode on a host that was never transitioned shows the plan the real run makes.
      - A pool that libvirt has and runs is planned against as it is. Only dir pools can be planned before they
        exist; what an fs, netfs, logical or rbd pool would hold is known only once it runs.
    type: list
    elements: dict
'''

    # For read-only modules.
    INFO = r'''
attributes:
  check_mode:
    description: The module only reads; it runs the same in check mode.
    support: full
  diff_mode:
    description: The module changes nothing, so it has no diff.
    support: N/A
'''
