# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which libvirt URIs reach a daemon whose files this process sees (is_local_uri), and the refusal of the others."""

from __future__ import annotations

import pytest

from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.connection import (
    is_local_uri,
    require_local_uri,
)

LOCAL = ['qemu:///system', 'qemu:///session', 'qemu+unix:///system',
         'qemu+unix:///system?socket=/var/tmp/peer/run/libvirt-sock', 'test:///default']
# A network transport or a host part: another daemon, possibly in a mount namespace of its own, even on this machine.
REMOTE = ['qemu+tcp://127.0.0.1/system', 'qemu+tcp://localhost/system', 'qemu+tcp:///system',
          'qemu+ssh://root@compute2/system', 'qemu+ssh:///system', 'qemu+tls://compute2.example.org/system',
          'qemu+libssh2://root@compute2/system', 'qemu://compute2/system', 'qemu+unix://compute2/system',
          'qemu+ext:///system', '', 'compute2']


@pytest.mark.parametrize('uri', LOCAL)
def test_local(uri):
    assert is_local_uri(uri) is True
    require_local_uri(uri, 'it reads files')


@pytest.mark.parametrize('uri', REMOTE)
def test_remote_is_refused_naming_the_option_and_where_to_run(uri):
    assert is_local_uri(uri) is False
    with pytest.raises(StoragePoolsError) as raised:
        require_local_uri(uri, 'the bases are files', option='instances_path')
    msg = raised.value.msg
    assert msg.startswith('instances_path: the bases are files on the libvirt host'), msg
    assert repr(uri) in msg and 'delegate_to' in msg and 'qemu:///system' in msg
