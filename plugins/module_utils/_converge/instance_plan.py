# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""An instance's plan: its journalled steps in order, what the result reports, and the domain before and
after; applied step by step, each journalled first, a failed group undone newest first."""

from __future__ import annotations


from typing import Any, Callable, Dict, List, Optional

from ansible_collections.storagepools.libvirt.plugins.module_utils._core.journal import Journal
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.domain import DomainDocument


def deferred(operations: Any, name: str, *args: Any) -> Callable[[], Any]:
    """``operations.<name>(*args)``, looked up when the step runs: a plan is built without running anything
    (and a unit test plans with no ``operations`` at all)."""
    return lambda: getattr(operations, name)(*args)


class InstanceStep:
    """One journalled step: its journal name (also the fault-switch name), the disk it is for, and the call
    that does it. ``undo`` runs (best effort) when this step or a later one of its group fails."""

    def __init__(self, action: str, disk: Optional[str], do: Callable[[], Any],
                 undo: Optional[Callable[[], Any]] = None) -> None:
        self.action = action
        self.disk = disk
        self.do = do
        self.undo = undo

    def describe(self) -> Dict[str, str]:
        described = {'action': self.action}
        if self.disk is not None:
            described['disk'] = self.disk
        return described


class InstancePlan:
    """The steps of one instance's run, and what its result reports."""

    def __init__(self, instance_uuid: str, before: Optional[DomainDocument] = None,
                 after: Optional[DomainDocument] = None) -> None:
        self.instance_uuid = instance_uuid
        self.steps: List[InstanceStep] = []
        self._kept: List[int] = []  # step indexes after which earlier undos no longer run
        self.disks: List[Dict[str, Any]] = []  # the result's ``disks``
        self.removed: List[str] = []  # the result's ``removed`` (a cutover's finalize)
        self.before = before
        self.after = after

    def add(self, action: str, do: Callable[[], Any], disk: Optional[str] = None,
            undo: Optional[Callable[[], Any]] = None) -> InstanceStep:
        step = InstanceStep(action, disk, do, undo)
        self.steps.append(step)
        return step

    def keep(self) -> None:
        """What the steps so far made stays even when a later step fails."""
        self._kept.append(len(self.steps))

    @property
    def domain_changes(self) -> bool:
        return self.before is not None and self.after is not None and not self.before.same_as(self.after)

    def domain_diff(self) -> Optional[str]:
        """The canonical diff of the domain's XML, None when it stays as it is."""
        return self.before.diff(self.after) if self.domain_changes else None

    def __bool__(self) -> bool:
        return bool(self.steps)

    def describe(self) -> List[Dict[str, str]]:
        return [step.describe() for step in self.steps]

    def apply(self, journal: Journal, result: str = 'adopted', forget: tuple = ()) -> None:
        """Journal and do each step; on a failure, undo the group's steps (newest first) and re-raise.
        ``result`` closes the run in the journal; ``forget``: the kept facts that go with it."""
        for index, step in enumerate(self.steps):
            try:
                journal.step(self.instance_uuid, step.action, **({} if step.disk is None else {'disk': step.disk}))
                step.do()
            except BaseException:
                self._undo(index)
                raise
        journal.finish(self.instance_uuid, result, forget)

    def _undo(self, failed: int) -> None:
        start = max([kept for kept in self._kept if kept <= failed] or [0])
        for step in reversed(self.steps[start:failed + 1]):
            if step.undo is not None:
                try:
                    step.undo()
                except Exception:  # best effort: the next run resumes from what is there
                    continue
