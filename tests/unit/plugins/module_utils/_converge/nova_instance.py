# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Nova instance of data/nova-instance.xml (a domain as libvirt dumps it) for the planning tests."""

from __future__ import annotations

import os

from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.domain import DomainDocument

DATA = os.path.join(os.path.dirname(__file__), 'data')
UUID = '6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b'
DIRECTORY = '/var/lib/nova/instances/%s' % UUID
BASE = '/var/lib/nova/instances/_base/%s' % ('a' * 40)


def nova_domain():
    with open(os.path.join(DATA, 'nova-instance.xml')) as handle:
        return DomainDocument(handle.read())


def changed_lines(diff):
    """The removed and added lines of a unified diff."""
    return [line for line in diff.splitlines() if line[:1] in '+-' and not line.startswith(('+++', '---'))]
