# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A stand-in for a host file an attacker points us at (e.g. /etc/shadow): root-owned, 0600, with content.

Its atime is set far in the past, so any read of it shows (relatime updates an atime older than the mtime
or a day), and its content, mode, owner and extended attributes are compared afterwards.
"""

from __future__ import annotations

import os

EPOCH_2000 = 946684800


class Canary:
    def __init__(self, path, content=b'root:$6$secret:19000:0:99999:7:::\n'):
        self.path = path
        with open(path, 'wb') as handle:
            handle.write(content)
        os.chmod(path, 0o600)
        os.chown(path, 0, 0)
        os.utime(path, (EPOCH_2000, EPOCH_2000 + 1))
        self.before = self.state()

    def state(self):
        info = os.lstat(self.path)
        with open(self.path, 'rb') as handle:
            content = handle.read()
        os.utime(self.path, ns=(info.st_atime_ns, info.st_mtime_ns))  # our own read must not count
        return {'content': content, 'mode': info.st_mode, 'uid': info.st_uid, 'gid': info.st_gid,
                'atime': info.st_atime, 'xattrs': sorted(os.listxattr(self.path))}

    def assert_untouched(self):
        after = self.state()
        assert after == self.before, 'the canary %s was touched: %s -> %s' % (self.path, self.before, after)
