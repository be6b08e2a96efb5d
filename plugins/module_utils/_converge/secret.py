# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Converging one libvirt ceph secret: definition and value, key never exposed.

The value goes to libvirt through virSecretSetValue only (no argv, no file).
Whether a secret already holds the task's key is decided without reading a
private secret's value: by the fingerprint recorded in its description
(secret_xml, cephx); a non-private secret's value is compared directly.
"""

from __future__ import annotations

import functools

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import cephx
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.plan import Plan
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.connection import (
    error_code,
    error_text,
    libvirt,
    lookup_secret,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.secret import SecretDefinition


class SecretConverger:
    """Plans and applies one ``rbd_pool_secret`` task."""

    def __init__(self, conn, uuid, usage):
        self.conn = conn
        self.uuid = uuid
        self.usage = usage
        self.secret = lookup_secret(conn, uuid=uuid)
        self.live = SecretDefinition.from_xml(self.secret.XMLDesc(0)) if self.secret else None
        self.plan = Plan()
        self.wanted = None
        self.value_changes = False

    def plan_present(self, wanted, raw_key):
        """Plan for ``wanted`` (a SecretDefinition without fingerprint) holding ``raw_key``."""
        self.wanted = wanted
        live = self.live
        if live is None:
            other = lookup_secret(self.conn, usage=self.usage)
            if other is not None:
                raise StoragePoolsError(
                    "usage: secret %s already has usage '%s'; give uuid: %s to manage that secret, "
                    "or choose another usage" % (other.UUIDString(), self.usage, other.UUIDString()))
            wanted.fingerprint = cephx.fingerprint(raw_key)
            self.plan.add('define', 'define secret %s (%s)' % (self.uuid, self.usage),
                          functools.partial(self._define, wanted.to_xml()), undo=self._undefine,
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
            holds_key = self._value() == raw_key
        wanted.fingerprint = recorded or cephx.fingerprint(raw_key)
        if recorded is None or not wanted.same_definition(live):
            self.plan.add('redefine', 'redefine secret %s (%s)' % (
                self.uuid, 'description' if recorded else 'record the key fingerprint'),
                functools.partial(self._define, wanted.to_xml()),
                undo=functools.partial(self._define, live.to_xml()), option='description')
        if not holds_key:
            self._plan_value(raw_key)
        return self.plan

    def plan_absent(self):
        secret = self.secret
        if secret is None and self.usage:
            secret = lookup_secret(self.conn, usage=self.usage)
        if secret is None:
            return self.plan
        self.secret = secret
        if self.live is None:
            self.live = SecretDefinition.from_xml(secret.XMLDesc(0))
        # Last step and not undoable (a private value cannot be read to restore it).
        self.plan.add('undefine', 'undefine secret %s' % secret.UUIDString(), self._undefine, option='state')
        return self.plan

    def _plan_value(self, raw_key):
        self.value_changes = True
        self.plan.add('set_value', 'set the key of secret %s' % self.uuid,
                      functools.partial(self._set_value, raw_key), option='key',
                      hint='libvirt refused the value')

    # -- the writes ---------------------------------------------------------

    def _define(self, xml):
        self.secret = self.conn.secretDefineXML(xml, 0)

    def _undefine(self):
        self.secret.undefine()

    def _set_value(self, raw_key):
        self.secret.setValue(raw_key, 0)

    def _value(self):
        """A non-private secret's value; None when it has none yet."""
        try:
            return self.secret.value(0)
        except libvirt.libvirtError as exc:
            if error_code(exc) == libvirt.VIR_ERR_NO_SECRET:  # "does not have a value"
                return None
            raise StoragePoolsError('uuid: reading secret %s failed' % self.uuid, libvirt_error=error_text(exc))

    # -- results ------------------------------------------------------------

    def diff(self):
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

    def result_secret(self):
        """The ``secret`` return: None when absent (or to be removed)."""
        if self.wanted is None:
            return None
        return {'uuid': self.wanted.uuid, 'usage': self.wanted.usage_name, 'private': self.wanted.private}
