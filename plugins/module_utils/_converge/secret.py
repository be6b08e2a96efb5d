# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Converging one libvirt ceph secret: definition and value, key never exposed.

``SecretPlanner`` is a pure function of what was observed (the secret's
SecretDefinition, the one holding the task's usage, a non-private value) and
the wanted SecretDefinition; its steps call ``SecretWrites``, which alone
writes to libvirt. The value goes to libvirt through virSecretSetValue only
(no argv, no file). Whether a secret already holds the task's key is decided
without reading a private secret's value: by the fingerprint recorded in its
description (_xml/secret.py, cephx); a non-private secret's value is compared
directly.
"""

from __future__ import annotations

import functools
from typing import Callable, Optional

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import cephx
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.plan import Plan
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.connection import lookup_secret
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.secret import (
    definition_by_usage,
    secret_definition,
    secret_value,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.secret import SecretDefinition


class SecretWrites:
    """The apply side: every libvirt write a secret plan makes, on one connection."""

    def __init__(self, conn, secret=None) -> None:
        self.conn = conn
        self.secret = secret

    def define(self, xml: str) -> None:
        self.secret = self.conn.secretDefineXML(xml, 0)

    def undefine(self, uuid: Optional[str] = None) -> None:
        """Undefine this secret, or the one with ``uuid`` (found by the task's usage)."""
        secret = self.secret if uuid is None else lookup_secret(self.conn, uuid=uuid)
        if secret is not None:
            secret.undefine()

    def set_value(self, raw_key: bytes) -> None:
        self.secret.setValue(raw_key, 0)


class SecretPlanner:
    """Plans one ``rbd_pool_secret`` task from observations only; writes nothing.

    ``live`` is the definition of the secret with ``uuid`` (None when there is
    none); ``by_usage()`` gives the definition of the secret holding
    ``usage`` and ``value()`` the live secret's value (a non-private one's):
    both are asked only when the plan depends on them.
    """

    def __init__(self, uuid: str, usage: Optional[str], live: Optional[SecretDefinition], writes: SecretWrites,
                 by_usage: Callable[[], Optional[SecretDefinition]] = lambda: None,
                 value: Callable[[], Optional[bytes]] = lambda: None) -> None:
        self.uuid = uuid
        self.usage = usage
        self.live = live
        self.writes = writes
        self.by_usage = by_usage
        self.value = value
        self.plan = Plan()
        self.wanted: Optional[SecretDefinition] = None
        self.value_changes = False

    def plan_present(self, wanted: SecretDefinition, raw_key: bytes) -> Plan:
        """Plan for ``wanted`` (a SecretDefinition without fingerprint) holding ``raw_key``."""
        self.wanted = wanted
        live, writes = self.live, self.writes
        if live is None:
            other = self.by_usage()
            if other is not None:
                raise StoragePoolsError(
                    "usage: secret %s already has usage '%s'; give uuid: %s to manage that secret, "
                    "or choose another usage" % (other.uuid, self.usage, other.uuid))
            wanted.fingerprint = cephx.fingerprint(raw_key)
            self.plan.add('define', 'define secret %s (%s)' % (self.uuid, self.usage),
                          functools.partial(writes.define, wanted.to_xml()), undo=writes.undefine,
                          option='uuid')
            self._plan_value(raw_key)
            return self.plan

        if (live.usage_type, live.usage_name) != ('ceph', self.usage):
            raise StoragePoolsError(
                "uuid: secret %s exists with usage %s '%s', the task wants ceph '%s'; libvirt cannot "
                "change a secret's usage: choose another uuid or remove that secret"
                % (self.uuid, live.usage_type, live.usage_name, self.usage))
        if live.private != wanted.private or live.ephemeral != wanted.ephemeral:
            raise StoragePoolsError(
                "private: secret %s exists with private=%s; libvirt cannot change that flag on an "
                "existing secret: remove it (state=absent) and run again"
                % (self.uuid, 'yes' if live.private else 'no'))

        recorded = live.fingerprint if cephx.fingerprint_matches(raw_key, live.fingerprint) else None
        if live.private:
            holds_key = recorded is not None
        else:
            holds_key = self.value() == raw_key
        wanted.fingerprint = recorded or cephx.fingerprint(raw_key)
        if recorded is None or not wanted.same_definition(live):
            self.plan.add('redefine', 'redefine secret %s (%s)' % (
                self.uuid, 'description' if recorded else 'record the key fingerprint'),
                functools.partial(writes.define, wanted.to_xml()),
                undo=functools.partial(writes.define, live.to_xml()), option='description')
        if not holds_key:
            self._plan_value(raw_key)
        return self.plan

    def plan_absent(self) -> Plan:
        undefine = self.writes.undefine
        if self.live is None and self.usage:
            self.live = self.by_usage()
            if self.live is not None:
                undefine = functools.partial(self.writes.undefine, self.live.uuid)
        if self.live is None:
            return self.plan
        # Last step and not undoable (a private value cannot be read to restore it).
        self.plan.add('undefine', 'undefine secret %s' % self.live.uuid, undefine, option='state')
        return self.plan

    def _plan_value(self, raw_key: bytes) -> None:
        self.value_changes = True
        self.plan.add('set_value', 'set the key of secret %s' % self.uuid,
                      functools.partial(self.writes.set_value, raw_key), option='key',
                      hint='libvirt refused the value')

    # -- results ------------------------------------------------------------

    def diff(self) -> dict:
        """before/after with the fingerprint masked and the value said, never shown."""
        def render(definition, value):
            if definition is None:
                return ''
            return '# value: %s\n%s' % (value, definition.to_xml(mask=True))

        if self.live is None:
            new_value = 'a key'
        else:
            new_value = 'another key' if self.value_changes else 'the same key'
        before, after = render(self.live, 'a key'), render(self.wanted, new_value)
        return {'before': before, 'after': after,
                'before_header': 'secret %s (libvirt)' % self.uuid,
                'after_header': 'secret %s (task)' % self.uuid}

    def result_secret(self) -> Optional[dict]:
        """The ``secret`` return: None when absent (or to be removed)."""
        if self.wanted is None:
            return None
        return {'uuid': self.wanted.uuid, 'usage': self.wanted.usage_name, 'private': self.wanted.private}


class SecretConverger(SecretPlanner):
    """One ``rbd_pool_secret`` task on a connection: observes the secret, then plans (SecretPlanner)."""

    def __init__(self, conn, uuid: str, usage: Optional[str]) -> None:
        secret = lookup_secret(conn, uuid=uuid)
        super().__init__(uuid, usage, secret_definition(secret) if secret is not None else None,
                         SecretWrites(conn, secret), by_usage=functools.partial(definition_by_usage, conn, usage),
                         value=functools.partial(secret_value, secret) if secret is not None else lambda: None)
        self.conn = conn
