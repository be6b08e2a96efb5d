# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Converging one libvirt storage pool: observe, plan (pure), apply.

``PoolPlanner`` is a pure function of what was observed (an ObservedPool: the
pool's defined and running documents as PoolDefinition, its autostart; the other
pools' definitions, which secrets exist) and the wanted PoolDefinition: it
returns a Plan whose steps call ``PoolWrites``, the apply side, which alone
talks to libvirt. Define, build, start and autostart in that order
(virtinst's order), each step undone when a later one fails. Drift is found
on the model's canonical form (PoolDefinition.canonical_string), never on
raw strings.
"""

from __future__ import annotations

import functools
import os
from typing import Callable, Iterable, List, Optional, Tuple

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import rbd_pool
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.plan import Plan
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.connection import (
    error_code,
    error_text,
    is_local_uri,
    libvirt,
    lookup_pool,
    lookup_secret,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.pool import LivePool
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml import pool as pool_xml
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.base import unified_diff
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.pool import ObservedPool, PoolDefinition

# Pool types whose libvirt backend has a build step at all.
BUILDABLE_TYPES = ('dir', 'fs', 'netfs', 'logical', 'disk', 'zfs')
FILE_TYPES = ('dir', 'fs', 'netfs')


def _remove_empty_dir(path):
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass


def _explain_define(exc):
    text = error_text(exc)
    if 'Storage source conflict' in text or 'same target' in text or 'already in use' in text:
        return ('target', 'Another libvirt pool already uses this target or source '
                          '(two pools on one target are refused); pick another target/source '
                          'or manage that pool instead')
    if error_code(exc) in (libvirt.VIR_ERR_XML_ERROR, libvirt.VIR_ERR_XML_DETAIL):
        return ('xml', 'libvirt rejected the pool document; fix the named element')
    return None


def _explain_build(exc):
    if error_code(exc) == libvirt.VIR_ERR_STORAGE_POOL_BUILT:
        return ('build', 'With build=no_overwrite nothing is made where data already is. '
                         'Use build=never to take the existing filesystem/volume group as it is, '
                         'or build=overwrite to destroy what is on the device')
    return None


class PoolWrites:
    """The apply side: every libvirt write a pool plan makes, on one connection."""

    def __init__(self, conn, pool=None) -> None:
        self.conn = conn
        self.pool = pool
        self._restart_stopped_pool = False

    def define(self, xml: str) -> None:
        self.pool = self.conn.storagePoolDefineXML(xml, 0)

    def redefine(self, xml: str) -> None:
        self.conn.storagePoolDefineXML(xml, 0)

    def undefine(self) -> None:
        self.pool.undefine()

    def build(self, mode: str) -> None:
        """``mode``: 'plain' (a directory), 'overwrite' or 'no_overwrite' (a device)."""
        flags = {'overwrite': libvirt.VIR_STORAGE_POOL_BUILD_OVERWRITE,
                 'no_overwrite': libvirt.VIR_STORAGE_POOL_BUILD_NO_OVERWRITE}.get(mode, 0)
        self.pool.build(flags)

    def start(self) -> None:
        self.pool.create(0)

    def stop(self) -> None:
        self.pool.destroy()

    def set_autostart(self, enabled: bool) -> None:
        self.pool.setAutostart(1 if enabled else 0)

    def delete_storage(self) -> None:
        self.pool.delete(0)

    def restart(self) -> None:
        self.stop()
        self._restart_stopped_pool = True
        self.pool.create(0)
        self._restart_stopped_pool = False

    def restore_definition(self, old_xml: str) -> None:
        self.redefine(old_xml)
        if self._restart_stopped_pool:
            self.pool.create(0)

    def delete_volumes(self) -> None:
        self.pool.refresh(0)
        for volume in self.pool.listAllVolumes(0):
            volume.delete(0)

    @staticmethod
    def remove_empty_dir(path: str) -> None:
        _remove_empty_dir(path)

    explain_define = staticmethod(_explain_define)
    explain_build = staticmethod(_explain_build)


class PoolPlanner:
    """Plans one ``virt_pool_ensure`` task from observations only; writes nothing.

    ``other_pools()`` yields (name, PoolDefinition) of the host's other pools
    and ``has_secret(uuid, usage)`` says whether libvirt has that secret; both
    are asked only when a definition is to be written.
    """

    def __init__(self, name: str, observed: Optional[ObservedPool], writes: PoolWrites, local: bool = True,
                 other_pools: Callable[[], Iterable[Tuple[str, PoolDefinition]]] = tuple,
                 has_secret: Optional[Callable[[Optional[str], Optional[str]], bool]] = None) -> None:
        self.name = name
        self.live = observed
        self.writes = writes
        self.local = local
        self.other_pools = other_pools
        self.has_secret = has_secret
        self.plan = Plan()
        self.warnings: List[str] = []
        self.restart_required = False
        self.drift = False
        self.wanted: Optional[PoolDefinition] = None  # the effective wanted document, once planned

    def plan_present(self, wanted: PoolDefinition, state: str, autostart: bool, build: str, on_drift: str,
                     restart: bool) -> Plan:
        """Plan for state active|inactive|present."""
        live = self.live
        if live is None:
            self.wanted = wanted
            self._plan_new(wanted, state, autostart, build)
            return self.plan
        self.wanted = self._plan_drift(wanted, on_drift)
        if state == 'active' and not live.active:
            self._add_start("start pool '%s'" % self.name)
        elif state == 'inactive' and live.active:
            self.plan.add('stop', "stop pool '%s'" % self.name, self.writes.stop,
                          undo=self.writes.start, option='state')
        elif state != 'inactive' and live.runs_other_than(self.definition_after()):
            if restart:
                self.plan.add('restart', "restart pool '%s' to use its new definition" % self.name,
                              self.writes.restart, option='restart',
                              hint='The new definition does not start; a redefinition made by this run is undone '
                                   '(see rolled_back), and the pool is started with the old one')
            else:
                self.restart_required = True
        if autostart != live.autostart:
            self._plan_autostart(autostart, live.autostart)
        return self.plan

    def plan_absent(self, delete_data: bool) -> Plan:
        live, writes = self.live, self.writes
        if live is None:
            return self.plan
        if delete_data:
            if not live.active:
                self._add_start("start pool '%s' to list its volumes" % self.name, undo=False)
            self.plan.add('delete_volumes', "delete every volume of pool '%s'" % self.name,
                          writes.delete_volumes, option='delete_data')
            self.plan.add('stop', "stop pool '%s'" % self.name, writes.stop, option='state')
            self.plan.add('delete', "delete the storage of pool '%s' (target directory, "
                                    "volume group, ...)" % self.name,
                          writes.delete_storage, option='delete_data')
        elif live.active:
            self.plan.add('stop', "stop pool '%s'" % self.name, writes.stop, undo=writes.start, option='state')
        self.plan.add('undefine', "undefine pool '%s'" % self.name, writes.undefine,
                      undo=functools.partial(writes.define, live.definition.to_xml()), option='state')
        return self.plan

    @property
    def redefining(self) -> bool:
        return any(step.action == 'redefine' for step in self.plan.steps)

    def definition_after(self) -> PoolDefinition:
        """The existing pool's definition once the plan ran: the wanted one if redefined, else as it is."""
        return self.wanted if self.redefining else self.live.definition

    # -- checks before anything is written --------------------------------------------------------

    def _check_before_writing(self, wanted: PoolDefinition) -> None:
        """Refuse, already in check mode, what libvirt refuses as a source conflict, or a missing secret."""
        target = pool_xml.normalize_path(wanted.target_path)
        devices = set(wanted.source.devices)
        for other_name, other in self.other_pools():
            if other_name == self.name:
                continue
            if (target and target == pool_xml.normalize_path(other.target_path) and wanted.type in FILE_TYPES
                    and other.type in FILE_TYPES):
                raise StoragePoolsError(
                    "target: pool '%s' already uses %s; libvirt refuses two pools on one target. "
                    "Pick another target or manage pool '%s' instead" % (other_name, target, other_name))
            shared = devices.intersection(other.source.devices)
            if shared and wanted.type in pool_xml.DEVICE_BUILD_TYPES:
                raise StoragePoolsError(
                    "source.device: pool '%s' already uses %s; pick another device"
                    % (other_name, ', '.join(sorted(shared))))
        auth = wanted.source.auth
        if wanted.type == 'rbd' and auth is not None and self.has_secret is not None:
            rbd_pool.check_secret(auth, self.has_secret)

    # -- the plans ---------------------------------------------------------------------------------

    def _add_start(self, detail: str, undo: bool = True) -> None:
        self.plan.add('start', detail, self.writes.start, undo=self.writes.stop if undo else None,
                      explain=self._explain_start)

    def _plan_new(self, wanted: PoolDefinition, state: str, autostart: bool, build: str) -> None:
        self._check_before_writing(wanted)
        pool_type, writes = wanted.type, self.writes
        if pool_type == 'fs' and build != 'never' and (wanted.source.format or 'auto') == 'auto':
            raise StoragePoolsError(
                "source.format: building an fs pool makes a filesystem on its device; name its "
                "type (ext4, xfs, ...), or give build=never to mount the existing filesystem")
        target = wanted.target_path
        self.plan.add('define', "define pool '%s'" % self.name, functools.partial(writes.define, wanted.to_xml()),
                      undo=writes.undefine, explain=writes.explain_define)
        if build != 'never' and pool_type in BUILDABLE_TYPES:
            mode = build if pool_type in pool_xml.DEVICE_BUILD_TYPES else 'plain'
            # Undo removes only what this build made: a target directory that did
            # not exist (rmdir: never a non-empty one), also when the build itself
            # failed after making it, or a volume group made from nothing.
            undo, cleanup_on_failure = None, False
            if pool_type in FILE_TYPES and target is not None and self.local and not os.path.exists(target):
                undo, cleanup_on_failure = functools.partial(writes.remove_empty_dir, target), True
            elif pool_type == 'logical' and build == 'no_overwrite':
                undo = writes.delete_storage
            detail = "build pool '%s' (%s)" % (self.name, {
                'dir': 'create the target directory',
                'netfs': 'create the mount point',
            }.get(pool_type, 'make its storage; %s' % build.replace('_', '-')))
            self.plan.add('build', detail, functools.partial(writes.build, mode), undo=undo,
                          cleanup_on_failure=cleanup_on_failure, explain=writes.explain_build, option='build')
        if state == 'active':
            self._add_start("start pool '%s'" % self.name)
        if autostart:
            self._plan_autostart(True, False)

    def _plan_drift(self, wanted: PoolDefinition, on_drift: str) -> PoolDefinition:
        """Compare with the defined pool; plan a redefinition, fail or warn.

        Returns the effective wanted document (``wanted`` plus what libvirt
        filled in where the task is silent).
        """
        defined = self.live.definition
        wanted = wanted.with_unset_from(defined)
        if wanted.uuid and wanted.uuid != defined.uuid:
            raise StoragePoolsError(
                "xml: the document's uuid %s differs from pool '%s''s uuid %s; drop <uuid> "
                "or give the pool's own" % (wanted.uuid, self.name, defined.uuid))
        before, after = defined.canonical_string(), wanted.canonical_string()
        if before == after:
            return wanted
        if wanted.type != defined.type:
            raise StoragePoolsError(
                "type: pool '%s' is of type %s, the task wants %s; a pool's type cannot change: "
                "remove it (state=absent) first" % (self.name, defined.type, wanted.type))
        self.drift = True
        change = unified_diff(before, after, 'defined', 'wanted')
        if on_drift == 'fail':
            raise StoragePoolsError(
                "on_drift: pool '%s' differs from the task (on_drift=fail):\n%s" % (self.name, change),
                drift=True, drift_diff=change)
        if on_drift == 'warn':
            self.warnings.append("pool '%s' differs from the task; left as it is "
                                 "(on_drift=warn):\n%s" % (self.name, change))
            return wanted
        self._check_before_writing(wanted)
        wanted = wanted.with_uuid(defined.uuid)  # libvirt redefines a pool by its uuid
        self.plan.add('redefine', "redefine pool '%s'" % self.name,
                      functools.partial(self.writes.redefine, wanted.to_xml()),
                      undo=functools.partial(self.writes.restore_definition, defined.to_xml()),
                      explain=self.writes.explain_define)
        return wanted

    def _plan_autostart(self, wanted: bool, current: bool) -> None:
        self.plan.add('autostart', "%s autostart of pool '%s'" % ('enable' if wanted else 'disable', self.name),
                      functools.partial(self.writes.set_autostart, wanted),
                      undo=functools.partial(self.writes.set_autostart, current), option='autostart')

    def _explain_start(self, exc):
        wanted = self.wanted if self.wanted is not None else self.live.definition
        if wanted.type == 'rbd':
            explained = rbd_pool.explain_start_failure(error_text(exc), wanted)
            if explained:
                return explained
        return ('target', 'libvirt could not start the pool; check that its target and '
                          'source exist and are reachable (build=never skips creating them)')

    # -- results ------------------------------------------------------------------------------------

    def predicted(self, state: str):
        """(definition, state) the plan leaves the pool in; (None, None) when absent."""
        if self.wanted is None:
            return None, None
        live = self.live
        if live is None:
            return self.wanted, 'active' if state == 'active' else 'inactive'
        return self.definition_after(), state if state in ('active', 'inactive') else live.state()

    def diff(self, state: str, autostart: bool) -> dict:
        """Ansible's before/after: canonical XML plus state and autostart."""
        def render(definition, pool_state, pool_autostart):
            if definition is None:
                return ''
            return ('# state: %s, autostart: %s\n' % (pool_state, str(pool_autostart).lower())
                    + definition.canonical_string())

        live = self.live
        before = render(live.definition, live.state(), live.autostart) if live else ''
        definition, after_state = self.predicted(state)
        return {'before': before, 'after': render(definition, after_state, autostart),
                'before_header': 'pool %s (libvirt)' % self.name,
                'after_header': 'pool %s (task)' % self.name}


def _pool_dict(definition: PoolDefinition, state: str, autostart: bool) -> dict:
    result = definition.to_dict()
    result.update(state=state, autostart=autostart)
    return result


class PoolConverger(PoolPlanner):
    """One ``virt_pool_ensure`` task on a connection: observes the pool, then plans (PoolPlanner)."""

    def __init__(self, conn, uri: str, name: str, planned_secrets: tuple = ()) -> None:
        """``planned_secrets``: in check mode, the uuids of secrets an earlier step would define (counted as there)."""
        pool = lookup_pool(conn, name)
        planned = frozenset(planned_secrets)
        super().__init__(name, LivePool(pool) if pool is not None else None, PoolWrites(conn, pool),
                         local=is_local_uri(uri), other_pools=functools.partial(_other_pools, conn),
                         has_secret=lambda uuid, usage: uuid in planned or _has_secret(conn, uuid, usage))
        self.conn = conn

    def result_pool(self, changed: bool, check_mode: bool, state: str, autostart: bool) -> Optional[dict]:
        """The ``pool`` return: read back after a real change, predicted otherwise."""
        if changed and not check_mode and self.wanted is not None:
            live = LivePool(lookup_pool(self.conn, self.name))
            return _pool_dict(live.definition, live.state(), live.autostart)
        definition, after_state = self.predicted(state)
        if definition is None:
            return None
        return _pool_dict(definition, after_state, autostart)


def _other_pools(conn):
    for other in conn.listAllStoragePools(0):
        yield other.name(), LivePool.inactive_definition(other)


def _has_secret(conn, uuid, usage):
    return lookup_secret(conn, uuid=uuid, usage=None if uuid else usage) is not None
