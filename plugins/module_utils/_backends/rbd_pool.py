# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What is particular to rbd (Ceph) pools: a bounded connect, the secret they
name, and telling apart why libvirt could not reach the cluster.

libvirt reports an unreachable monitor and a refused cephx key with the same
words ("failed to connect to the RADOS monitor"), after waiting
``client_mount_timeout`` either way. The module bounds that wait in the
pool's own Ceph options, and after a failure probes the monitors' TCP ports
to say which of the two it was.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError

if TYPE_CHECKING:  # annotations only: nothing more is imported at run time
    from collections.abc import Callable

    from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.pool import PoolAuth, PoolDefinition

MOUNT_TIMEOUT_OPTION = 'client_mount_timeout'
DEFAULT_MON_PORT = 6789


def with_connect_timeout(definition: PoolDefinition, seconds: int) -> PoolDefinition:
    """Give an rbd PoolDefinition a bounded connect unless its config_opts set one."""
    options = definition.config_opts
    if definition.type == 'rbd' and seconds and MOUNT_TIMEOUT_OPTION not in options:
        options[MOUNT_TIMEOUT_OPTION] = str(seconds)
        definition.config_opts = options
    return definition


def check_secret(auth: PoolAuth, has_secret: Callable[[str | None, str | None], bool]) -> None:
    """Refuse, already in check mode, an rbd pool's PoolAuth naming a secret libvirt does not have.

    ``has_secret(uuid, usage)`` asks libvirt (the planner's observation).
    """
    uuid, usage = auth.secret_uuid, auth.secret_usage
    if (uuid or usage) and not has_secret(uuid, usage):
        option = 'source.auth.secret_uuid' if uuid else 'source.auth.secret_usage'
        raise StoragePoolsError(
            "%s: libvirt has no ceph secret %s; create it first (storagepools.libvirt.rbd_pool_secret)"
            % (option, uuid or usage))


def _monitors(wanted):
    return [(host.name, host.port or DEFAULT_MON_PORT) for host in wanted.source.hosts]


def reachable_mons(wanted: PoolDefinition, timeout: float = 2.0) -> list[tuple[str, int]]:
    """The (host, port) of the pool's monitors that accept a TCP connection."""
    reachable = []
    for address in _monitors(wanted):
        try:
            socket.create_connection(address, timeout=timeout).close()
        except OSError:
            continue
        reachable.append(address)
    return reachable


def explain_start_failure(text: str, wanted: PoolDefinition) -> tuple[str, str] | None:
    """(option, hint) for libvirt's message ``text`` when an rbd pool (a PoolDefinition) did not start."""
    ceph_pool = wanted.source.name
    if 'Does the pool' in text or 'create the RBD IoCTX' in text:
        return ('source.name', "Ceph has no pool '%s' (or the user may not use it)" % ceph_pool)
    if 'Secret not found' in text:
        return ('source.auth', 'libvirt has no secret with that uuid/usage')
    if 'RADOS monitor' in text:
        if not reachable_mons(wanted):
            return ('source.host', 'No monitor of %s answers on its TCP port; check the addresses and ports'
                    % ', '.join('%s:%s' % address for address in _monitors(wanted)))
        auth = wanted.source.auth
        if auth is None:
            return ('source.auth', 'The monitors answer but refused the connection: the pool has no source.auth')
        return ('source.auth', "The monitors answer but refused the cephx user '%s' or its key: check "
                "source.auth.username and the key in the secret (rbd_pool_secret)" % auth.username)
    return None
