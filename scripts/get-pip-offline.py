# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Stand-in for get-pip.py, for `ansible-test sanity --venv`.

ansible-test bootstraps pip in each of its venvs with a get-pip.py it
downloads from its CI file host, which this machine cannot reach (only the
package registries are). scripts/setup.sh puts this file in ansible-test's
cache under that script's name: it takes pip from the interpreter's own
ensurepip, then installs what get-pip was asked for from PyPI.
"""

import subprocess
import sys

GET_PIP_ONLY = ('--no-setuptools', '--no-wheel')  # get-pip.py flags pip install does not know

args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
subprocess.check_call([sys.executable, '-m', 'ensurepip', '--default-pip'], stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, '-m', 'pip', 'install'] + args)
