# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # The libvirt connection every module of this collection opens.
    DOCUMENTATION = r'''
options:
  uri:
    description:
      - The libvirt connection URI, for example C(qemu:///system) or C(qemu+ssh://root@host/system).
      - Files such as target directories are checked on the managed host, so with a remote URI
        some safety checks (whether a target directory already existed) are skipped.
    type: str
    default: qemu:///system
requirements:
  - libvirt Python bindings on the managed host (Debian/Ubuntu C(python3-libvirt))
  - lxml on the managed host (Debian/Ubuntu C(python3-lxml))
notes:
  - Failures name the option at fault in C(msg); libvirt's own message, when there is one,
    is returned separately as C(libvirt_error).
'''

    # Shared by the modules that write: check mode and diff support.
    ACTIONS = r'''
attributes:
  check_mode:
    description: Computes the same plan as a real run, returns it, and applies nothing.
    support: full
  diff_mode:
    description: Shows the canonical definition before and after, with state and autostart.
    support: full
'''

    # For read-only modules.
    INFO = r'''
attributes:
  check_mode:
    description: The module only reads; it runs the same in check mode.
    support: full
  diff_mode:
    description: The module changes nothing, so it has no diff.
    support: N/A
'''
