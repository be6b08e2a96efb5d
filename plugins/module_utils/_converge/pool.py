# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Converging one libvirt storage pool: read what is, plan, apply.

Define, build, start and autostart in that order (virtinst's order), each
step undone when a later one fails. Drift is found on the canonical form
(pool_xml.canonical), never on raw strings.
"""

from __future__ import annotations

import copy
import functools
import os

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import rbd_pool
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.plan import Plan
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.connection import (
    error_code,
    error_text,
    is_local_uri,
    libvirt,
    lookup_pool,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.pool import LivePool
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml import pool as pool_xml, tree as xml_tree

# Pool types whose libvirt backend has a build step at all.
BUILDABLE_TYPES = ('dir', 'fs', 'netfs', 'logical', 'disk', 'zfs')


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


def _explain_start(wanted, exc):
    if wanted is not None and wanted.get('type') == 'rbd':
        explained = rbd_pool.explain_start_failure(error_text(exc), wanted)
        if explained:
            return explained
    return ('target', 'libvirt could not start the pool; check that its target and '
                      'source exist and are reachable (build=never skips creating them)')


class PoolConverger:
    """Plans and applies one ``virt_pool_ensure`` task."""

    def __init__(self, conn, uri, name):
        self.conn = conn
        self.uri = uri
        self.name = name
        pool = lookup_pool(conn, name)
        self.live = LivePool(pool) if pool is not None else None
        self.pool = pool
        self.plan = Plan()
        self.warnings = []
        self.restart_required = False
        self.drift = False
        self._restart_stopped_pool = False
        self.wanted = None  # the effective wanted document, once planned

    # -- planning -----------------------------------------------------------

    def plan_present(self, wanted, state, autostart, build, on_drift, restart):
        """Plan for state active|inactive|present with ``wanted`` a <pool> element."""
        live = self.live
        if live is None:
            self.wanted = wanted
            self._plan_new(wanted, state, autostart, build)
            return self.plan
        self.wanted = self._plan_drift(wanted, on_drift)
        if state == 'active' and not live.active:
            self.plan.add('start', "start pool '%s'" % self.name, self._start,
                          undo=self._stop, explain=self._explain_start)
        elif state == 'inactive' and live.active:
            self.plan.add('stop', "stop pool '%s'" % self.name, self._stop,
                          undo=self._start, option='state')
        elif state != 'inactive' and live.runs_other_than(self._definition_after()):
            if restart:
                self.plan.add('restart', "restart pool '%s' to use its new definition" % self.name,
                              self._restart, option='restart',
                              hint='The new definition does not start; a redefinition made by this run is undone '
                                   '(see rolled_back), and the pool is started with the old one')
            else:
                self.restart_required = True
        if autostart != live.autostart:
            self._plan_autostart(autostart, live.autostart)
        return self.plan

    def plan_absent(self, delete_data):
        live = self.live
        if live is None:
            return self.plan
        if delete_data:
            if not live.active:
                self.plan.add('start', "start pool '%s' to list its volumes" % self.name,
                              self._start, explain=self._explain_start)
            self.plan.add('delete_volumes', "delete every volume of pool '%s'" % self.name,
                          self._delete_volumes, option='delete_data')
            self.plan.add('stop', "stop pool '%s'" % self.name, self._stop,
                          option='state')
            self.plan.add('delete', "delete the storage of pool '%s' (target directory, "
                                    "volume group, ...)" % self.name,
                          self._delete_storage, option='delete_data')
        elif live.active:
            self.plan.add('stop', "stop pool '%s'" % self.name, self._stop,
                          undo=self._start, option='state')
        old_xml = xml_tree.to_string(live.definition)
        self.plan.add('undefine', "undefine pool '%s'" % self.name, self._undefine,
                      undo=functools.partial(self._define, old_xml), option='state')
        return self.plan

    @property
    def redefining(self):
        return any(step.action == 'redefine' for step in self.plan.steps)

    def _check_conflicts(self, wanted):
        """Refuse, already in check mode, what libvirt refuses as a source conflict."""
        file_types = ('dir', 'fs', 'netfs')
        target = pool_xml.normalize_path(xml_tree.child_text(wanted, 'target/path'))
        devices = set(wanted.xpath('source/device/@path'))
        for other in self.conn.listAllStoragePools(0):
            if other.name() == self.name:
                continue
            definition = xml_tree.parse(other.XMLDesc(libvirt.VIR_STORAGE_XML_INACTIVE), 'pool')
            other_target = pool_xml.normalize_path(xml_tree.child_text(definition, 'target/path'))
            if (target and target == other_target and wanted.get('type') in file_types
                    and definition.get('type') in file_types):
                raise StoragePoolsError(
                    "target: pool '%s' already uses %s; libvirt refuses two pools on one target. "
                    "Pick another target or manage pool '%s' instead" % (other.name(), target, other.name()))
            shared = devices.intersection(definition.xpath('source/device/@path'))
            if shared and wanted.get('type') in pool_xml.DEVICE_BUILD_TYPES:
                raise StoragePoolsError(
                    "source.device: pool '%s' already uses %s; pick another device"
                    % (other.name(), ', '.join(sorted(shared))))

    def _plan_new(self, wanted, state, autostart, build):
        self._check_conflicts(wanted)
        rbd_pool.check_secret(self.conn, wanted)
        xml = xml_tree.to_string(wanted)
        pool_type = wanted.get('type')
        if pool_type == 'fs' and build != 'never' and wanted.xpath("not(source/format[@type != 'auto'])"):
            raise StoragePoolsError(
                "source.format: building an fs pool makes a filesystem on its device; name its "
                "type (ext4, xfs, ...), or give build=never to mount the existing filesystem")
        target = xml_tree.child_text(wanted, 'target/path')
        self.plan.add('define', "define pool '%s'" % self.name, functools.partial(self._define, xml),
                      undo=self._undefine, explain=_explain_define)
        if build != 'never' and pool_type in BUILDABLE_TYPES:
            flags = 0
            if pool_type in pool_xml.DEVICE_BUILD_TYPES:
                flags = (libvirt.VIR_STORAGE_POOL_BUILD_OVERWRITE if build == 'overwrite'
                         else libvirt.VIR_STORAGE_POOL_BUILD_NO_OVERWRITE)
            # Undo removes only what this build made: a target directory that did
            # not exist (rmdir: never a non-empty one), also when the build itself
            # failed after making it, or a volume group made from nothing.
            undo, cleanup_on_failure = None, False
            if (pool_type in ('dir', 'fs', 'netfs') and target is not None
                    and is_local_uri(self.uri) and not os.path.exists(target)):
                undo, cleanup_on_failure = functools.partial(_remove_empty_dir, target), True
            elif pool_type == 'logical' and build == 'no_overwrite':
                undo = self._delete_storage
            detail = "build pool '%s' (%s)" % (self.name, {
                'dir': 'create the target directory',
                'netfs': 'create the mount point',
            }.get(pool_type, 'make its storage; %s' % build.replace('_', '-')))
            self.plan.add('build', detail, functools.partial(self._build, flags), undo=undo,
                          cleanup_on_failure=cleanup_on_failure, explain=_explain_build, option='build')
        if state == 'active':
            self.plan.add('start', "start pool '%s'" % self.name, self._start,
                          undo=self._stop, explain=self._explain_start)
        if autostart:
            self._plan_autostart(True, False)

    def _plan_drift(self, wanted, on_drift):
        """Compare with the defined pool; plan a redefinition, fail or warn.

        Returns the effective wanted document (``wanted`` plus what libvirt
        filled in where the task is silent).
        """
        live = self.live
        wanted = pool_xml.inherit_unset(wanted, live.definition)
        live_uuid = xml_tree.child_text(live.definition, 'uuid')
        wanted_uuid = xml_tree.child_text(wanted, 'uuid')
        if wanted_uuid and wanted_uuid != live_uuid:
            raise StoragePoolsError(
                "xml: the document's uuid %s differs from pool '%s''s uuid %s; drop <uuid> "
                "or give the pool's own" % (wanted_uuid, self.name, live_uuid))
        before = pool_xml.canonical_string(live.definition)
        after = pool_xml.canonical_string(wanted)
        if before == after:
            return wanted
        if wanted.get('type') != live.definition.get('type'):
            raise StoragePoolsError(
                "type: pool '%s' is of type %s, the task wants %s; a pool's type cannot change: "
                "remove it (state=absent) first" % (self.name, live.definition.get('type'),
                                                    wanted.get('type')))
        self.drift = True
        change = xml_tree.unified_diff(before, after, 'defined', 'wanted')
        if on_drift == 'fail':
            raise StoragePoolsError(
                "on_drift: pool '%s' differs from the task (on_drift=fail):\n%s" % (self.name, change),
                drift=True, drift_diff=change)
        if on_drift == 'warn':
            self.warnings.append("pool '%s' differs from the task; left as it is "
                                 "(on_drift=warn):\n%s" % (self.name, change))
            return wanted
        self._check_conflicts(wanted)
        rbd_pool.check_secret(self.conn, wanted)
        wanted = self._with_uuid(wanted, live_uuid)  # libvirt redefines a pool by its uuid
        old_xml = xml_tree.to_string(live.definition)
        self.plan.add('redefine', "redefine pool '%s'" % self.name,
                      functools.partial(self._redefine, xml_tree.to_string(wanted)),
                      undo=functools.partial(self._restore_definition, old_xml), explain=_explain_define)
        return wanted

    def _plan_autostart(self, wanted, current):
        self.plan.add('autostart', "%s autostart of pool '%s'" % ('enable' if wanted else 'disable',
                                                                  self.name),
                      functools.partial(self._set_autostart, wanted),
                      undo=functools.partial(self._set_autostart, current), option='autostart')

    def _definition_after(self):
        """The existing pool's definition once the plan ran: the wanted one if redefined, else as it is."""
        return self.wanted if self.redefining else self.live.definition

    @staticmethod
    def _with_uuid(wanted, uuid):
        root = copy.deepcopy(wanted)
        node = root.find('uuid')
        if node is None:
            node = xml_tree.etree.Element('uuid')
            root.find('name').addnext(node)
        node.text = uuid
        return root

    def _explain_start(self, exc):
        return _explain_start(self.wanted if self.wanted is not None else self.live.definition, exc)

    # -- the writes ---------------------------------------------------------

    def _define(self, xml):
        self.pool = self.conn.storagePoolDefineXML(xml, 0)

    def _redefine(self, xml):
        self.conn.storagePoolDefineXML(xml, 0)

    def _undefine(self):
        self.pool.undefine()

    def _build(self, flags):
        self.pool.build(flags)

    def _start(self):
        self.pool.create(0)

    def _stop(self):
        self.pool.destroy()

    def _set_autostart(self, enabled):
        self.pool.setAutostart(1 if enabled else 0)

    def _delete_storage(self):
        self.pool.delete(0)

    def _restart(self):
        self._stop()
        self._restart_stopped_pool = True
        self.pool.create(0)
        self._restart_stopped_pool = False

    def _restore_definition(self, old_xml):
        self._redefine(old_xml)
        if self._restart_stopped_pool:
            self.pool.create(0)

    def _delete_volumes(self):
        self.pool.refresh(0)
        for volume in self.pool.listAllVolumes(0):
            volume.delete(0)

    # -- results ------------------------------------------------------------

    def predicted(self, state):
        """(definition, state) the plan leaves the pool in; (None, None) when absent."""
        if self.wanted is None:
            return None, None
        live = self.live
        if live is None:
            return self.wanted, 'active' if state == 'active' else 'inactive'
        return self._definition_after(), state if state in ('active', 'inactive') else live.state()

    def diff(self, state, autostart):
        """Ansible's before/after: canonical XML plus state and autostart."""
        def render(definition, pool_state, pool_autostart):
            if definition is None:
                return ''
            return ('# state: %s, autostart: %s\n' % (pool_state, str(pool_autostart).lower())
                    + pool_xml.canonical_string(definition))

        live = self.live
        before = render(live.definition, live.state(), live.autostart) if live else ''
        definition, after_state = self.predicted(state)
        return {'before': before, 'after': render(definition, after_state, autostart),
                'before_header': 'pool %s (libvirt)' % self.name,
                'after_header': 'pool %s (task)' % self.name}

    def result_pool(self, changed, check_mode, state, autostart):
        """The ``pool`` return: read back after a real change, predicted otherwise."""
        if changed and not check_mode and self.wanted is not None:
            live = LivePool(lookup_pool(self.conn, self.name))
            return self._pool_dict(live.definition, live.state(), live.autostart)
        definition, after_state = self.predicted(state)
        if definition is None:
            return None
        return self._pool_dict(definition, after_state, autostart)

    @staticmethod
    def _pool_dict(definition, state, autostart):
        return {
            'name': xml_tree.child_text(definition, 'name'),
            'uuid': xml_tree.child_text(definition, 'uuid'),
            'type': definition.get('type'),
            'state': state,
            'autostart': autostart,
            'xml': xml_tree.to_string(definition),
        }
