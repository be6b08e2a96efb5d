# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Plan first, then apply.

A module computes a ``Plan`` (an ordered list of ``Step``) from what is and
what is wanted, without writing anything. Check mode returns the plan; a
real run applies it step by step and, when a step fails, undoes the steps
already done, newest first, so a failed run leaves nothing it created.

Fault injection for tests (faults.py): ``STORAGEPOOLS_FAIL_AT=<action>`` makes the first
step with that action fail before it does anything, exactly as if libvirt
had refused it; ``STORAGEPOOLS_PAUSE_AT=<action>`` sleeps 5 s before it (so
a test can change the world under a run, e.g. fill the destination).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError, error_text
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.faults import InjectedFault, fault_point

if TYPE_CHECKING:  # annotations only: nothing more is imported at run time
    from collections.abc import Callable
    from typing import Any


class Step:
    """One write: ``do`` it, ``undo`` it if a later step fails.

    ``action`` is a short verb (define, build, start, ...), ``detail`` says
    what it does in words. When ``do`` fails, ``explain(exc)`` may return
    ``(option, hint)``; otherwise ``option``/``hint`` given here are used.
    ``cleanup_on_failure``: ``do`` may fail half-way (a build that made a
    directory, then refused to make a filesystem), so ``undo`` runs for the
    failed step too; such an undo must be harmless when nothing was done.
    """

    def __init__(self, action: str, detail: str, do: Callable[[], object], undo: Callable[[], object] | None = None,
                 option: str | None = None, hint: str | None = None,
                 explain: Callable[[Exception], tuple[str | None, str | None] | None] | None = None,
                 cleanup_on_failure: bool = False) -> None:
        self.action = action
        self.detail = detail
        self.do = do
        self.undo = undo
        self.option = option
        self.hint = hint
        self.explain = explain
        self.cleanup_on_failure = cleanup_on_failure

    def describe(self) -> dict[str, str]:
        return {'action': self.action, 'detail': self.detail}

    def failure(self, exc: Exception) -> StoragePoolsError:
        option, hint = self.option, self.hint
        if self.explain is not None:
            option, hint = self.explain(exc) or (option, hint)
        msg = '%s failed' % self.detail
        if option:
            msg = '%s: %s' % (option, msg)
        if hint:
            msg = '%s. %s' % (msg, hint)
        libvirt_error = error_text(exc)
        return StoragePoolsError(msg, libvirt_error=None if isinstance(exc, InjectedFault) else libvirt_error)


class Plan:
    def __init__(self) -> None:
        self.steps: list[Step] = []

    def add(self, *args: Any, **kwargs: Any) -> Step:
        step = Step(*args, **kwargs)
        self.steps.append(step)
        return step

    def __bool__(self) -> bool:
        return bool(self.steps)

    def describe(self) -> list[dict[str, str]]:
        return [step.describe() for step in self.steps]

    def apply(self, check_mode: bool = False) -> None:
        """Carry the plan out (nothing in check mode); roll back on failure.

        Raises StoragePoolsError whose details hold ``actions`` (the steps
        done before the failure), ``failed_action`` and ``rolled_back`` (the
        undos run) plus ``rollback_errors`` when an undo itself failed.
        """
        if check_mode:
            return
        done, counts = [], {}
        for step in self.steps:
            try:
                fault_point(step.action, counts)
                step.do()
            except Exception as exc:  # any failure must roll back what we made
                error = step.failure(exc)
                error.details.update(self._rollback(done + [step] if step.cleanup_on_failure else done))
                error.details['actions'] = [done_step.describe() for done_step in done]
                error.details['failed_action'] = step.describe()
                raise error
            done.append(step)

    @staticmethod
    def _rollback(done):
        rolled_back, errors = [], []
        for step in reversed(done):
            if step.undo is None:
                continue
            try:
                step.undo()
                rolled_back.append(step.describe())
            except Exception as exc:  # report, keep undoing the rest
                errors.append('%s: %s' % (step.detail, error_text(exc)))
        result = {'rolled_back': rolled_back}
        if errors:
            result['rollback_errors'] = errors
        return result
