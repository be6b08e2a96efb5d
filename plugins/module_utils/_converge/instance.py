# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One Nova instance at a time, in three phases (docs/adoption.md): observe, plan, apply.

- observe: the domain's inactive XML, the instance directory and its legacy
  disks (each opened once), records, stat results and the journal: every
  read, no write;
- plan: a pure function of what was observed, giving an ``InstancePlan``:
  the journalled steps in order, what the result reports (disks, removals)
  and the domain before and after;
- apply: each step journalled first (``Journal.step``, where the fault
  switches act), then done. Check mode stops before apply and returns the
  same plan, so it reports the same actions and ``changed`` as a real run.

The file-pool adoption (adopt.py) and the rbd/logical cutover (cutover.py)
are two ``InstanceWorkflow``: they differ in what they observe and plan, not
in this skeleton.
"""

from __future__ import annotations

import functools
import os
import time
from typing import Any, Callable, Dict, List

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import space as limits
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.instance_plan import InstancePlan
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.journal import Journal
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.progress import NO_PROGRESS
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt import domain as libvirt_domain
from ansible_collections.storagepools.libvirt.plugins.module_utils._nova import layout as nova_layout
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.domain import DomainDocument


def load_domain(conn: Any, instance_uuid: str, allow_running: bool) -> Dict[str, Any]:
    """{domain, document (its inactive XML, secure), live}, or {result: skipped, reason}."""
    domain = libvirt_domain.lookup_domain(conn, instance_uuid)
    if domain is None:
        return {'result': 'skipped', 'reason': 'libvirt has no domain with this uuid'}
    live = libvirt_domain.is_active(domain)
    if live and not allow_running:
        return {'result': 'skipped', 'reason': 'the domain is running (running: skip)'}
    return {'domain': domain, 'document': DomainDocument(libvirt_domain.inactive_xml(domain)), 'live': live}


def timed(adopt: Callable[..., Dict[str, Any]]) -> Callable[..., Dict[str, Any]]:
    """The result gains ``seconds``, how long the instance took (the report's durations)."""
    @functools.wraps(adopt)
    def timed_adopt(self: Any, instance_uuid: str) -> Dict[str, Any]:
        started = time.monotonic()
        result = adopt(self, instance_uuid)
        return dict(result, seconds=round(time.monotonic() - started, 3))
    return timed_adopt


class InstanceWorkflow:
    """The skeleton both workflows share: ``adopt(uuid)`` observes, plans, checks space, and applies.

    A subclass gives ``observe`` (raises nova_layout.Skip, or returns a result dict to end early, or what
    ``plan`` takes), ``plan`` (pure) and ``require_space``."""

    result_template: Dict[str, Any] = {'result': None, 'reason': None, 'disks': [], 'actions': [], 'domain_diff': None}
    pool_dir = ''  # where a legacy disk's link may lead (file pools only)
    done_result, nothing_result = 'adopted', 'already_adopted'  # an instance's result: its plan ran, was empty
    forget_when_done: tuple = ()  # the journal's kept facts that go when a run finishes
    progress: Any = NO_PROGRESS  # the run's status file (_core/progress.py); the module sets it
    # A preflight (transition_preflight) sets a list here: each instance's space need lands in it
    # ({where, needed, available}) instead of refusing the instance, so the needs of a whole host add up.
    space_needs: List[Dict[str, Any]] | None = None

    def __init__(self, conn: Any, instances_path: str, state_dir: str, nova_conf: nova_layout.NovaConf,
                 check_mode: bool) -> None:
        self.conn = conn
        self.instances_path = os.path.normpath(instances_path)
        self.nova_conf = nova_conf
        self.check_mode = check_mode
        self.journal = Journal(state_dir, readonly=check_mode)
        self.diffs: List[Dict[str, str]] = []  # Ansible's --diff: one entry per instance whose domain changes

    def allow_running(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def find_disks(self, instance_uuid: str, files: nova_layout.InstanceFiles, document: DomainDocument
                   ) -> List[nova_layout.LegacyDisk]:
        """The instance's legacy disks, each opened (raises nova_layout.Skip)."""
        return nova_layout.legacy_disks(instance_uuid, files, document, self.nova_conf, self.pool_dir)

    def before_apply(self, observed: Any, plan: InstancePlan) -> None:
        """What a real run does before its first step (not in check mode)."""

    def release(self) -> None:
        """Close what ``observe`` opened for the instance."""

    @timed
    def adopt(self, instance_uuid: str) -> Dict[str, Any]:
        """The result dict for one instance; never raises for the instance's own problems."""
        result = dict(self.result_template)
        self.progress.item(instance_uuid)
        loaded = load_domain(self.conn, instance_uuid, self.allow_running())
        if 'result' in loaded:
            return dict(result, **loaded)
        result['domain'] = loaded['document'].name  # the report shows it beside the uuid
        try:
            files = nova_layout.InstanceFiles(self.instances_path, instance_uuid)
        except nova_layout.Skip as exc:
            return dict(result, result='skipped', reason=str(exc))
        with files:
            try:
                disks = self.find_disks(instance_uuid, files, loaded['document'])
            except nova_layout.Skip as exc:
                return dict(result, result='skipped', reason=str(exc))
            try:
                try:
                    observed = self.observe(instance_uuid, files, loaded, disks)
                    if isinstance(observed, dict):
                        return dict(result, **observed)
                    plan = self.plan(observed)
                except nova_layout.Skip as exc:
                    return dict(result, result='skipped', reason=str(exc))
                if not plan:
                    return dict(result, result=self.nothing_result)
                result.update(self.report(plan))
                self.require_space(observed, plan)
                if not self.check_mode:
                    self.before_apply(observed, plan)
                    plan.apply(self.journal, self.done_result, self.forget_when_done)
            finally:
                nova_layout.close_disks(disks)
                self.release()
        if plan.domain_changes:
            self.diffs.append({'before_header': 'domain %s (before)' % instance_uuid, 'before': plan.before.canonical(),
                               'after_header': 'domain %s (after)' % instance_uuid, 'after': plan.after.canonical()})
        return dict(result, result=self.done_result)

    @staticmethod
    def report(plan: InstancePlan) -> Dict[str, Any]:
        return {'disks': plan.disks, 'actions': plan.describe(), 'domain_diff': plan.domain_diff()}

    def observe(self, instance_uuid: str, files: nova_layout.InstanceFiles, loaded: Dict[str, Any],
                disks: List[nova_layout.LegacyDisk]) -> Any:
        raise NotImplementedError

    def plan(self, observed: Any) -> InstancePlan:
        raise NotImplementedError

    def require_space(self, observed: Any, plan: InstancePlan) -> None:
        raise NotImplementedError

    def check_space(self, needed: int, available: int, where: str, what: str) -> None:
        """Refuse an instance whose moves (``needed`` bytes into ``where``) do not fit, or record its need."""
        if self.space_needs is not None:
            self.space_needs.append({'where': where, 'needed': max(needed, 0), 'available': available})
            return
        limits.require_space(needed, available, where, 'disks_pool', what)
