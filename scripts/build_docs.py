# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""make docs: the collection's HTML docs site, every module, role and playbook, in .build/docs/site/build/html.

Run by the Python of .build/docs-venv (tests/docs-requirements.txt): antsibull-docs writes the Sphinx site
and the module and role pages from the collection on ANSIBLE_COLLECTIONS_PATH; this script adds a page for
the playbooks (antsibull-docs has none) and builds with Sphinx, every warning an error. Nothing is fetched:
references into Ansible's own docs resolve through a local inventory that points at docs.ansible.com.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import zlib

import yaml

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SITE = os.path.join(REPOSITORY, '.build', 'docs', 'site')
COLLECTION = 'storagepools.libvirt'
ANSIBLE_DOCS = 'https://docs.ansible.com/projects/ansible/devel/'
# The labels of Ansible's docs that antsibull-docs' pages refer to: (label, page, title).
ANSIBLE_LABELS = (
    ('action_plugins', 'plugins/action.html#action-plugins', 'Action plugins'),
    ('ansible_configuration_settings', 'reference_appendices/config.html#ansible-configuration-settings',
     'Ansible Configuration Settings'),
    ('common_return_values', 'reference_appendices/common_return_values.html#common-return-values', 'Return Values'),
    ('list_of_collections', 'collections/index.html#list-of-collections', 'Collection Index'),
)
OFFLINE_CONF = '''
# make docs (scripts/build_docs.py): no inventory is fetched, Ansible's labels come from a local file.
intersphinx_mapping = {'ansible_devel': (%r, %r)}
''' % (ANSIBLE_DOCS, os.path.join(SITE, 'ansible_devel.inv'))


def run(*argv: str) -> None:
    subprocess.run(argv, cwd=SITE, check=True)


def write_inventory(path: str) -> None:
    """A Sphinx (version 2) inventory of ANSIBLE_LABELS, as docs.ansible.com's objects.inv has them."""
    entries = ''.join('%s std:label -1 %s %s\n' % label for label in ANSIBLE_LABELS)
    with open(path, 'wb') as handle:
        handle.write(b'# Sphinx inventory version 2\n# Project: Ansible\n# Version: devel\n'
                     b'# The remainder of this file is compressed using zlib.\n')
        handle.write(zlib.compress(entries.encode('utf-8')))


def playbooks_page() -> str:
    """The rst page of the collection's playbooks: how to run each, its hosts, batches and roles."""
    lines = ['.. _ansible_collections.storagepools.libvirt.docsite.playbooks:', '', 'Playbooks', '=========', '',
             'Each playbook runs one role of the collection over an inventory, in batches; the role pages list '
             'the variables.', '']
    for path in sorted(glob.glob(os.path.join(REPOSITORY, 'playbooks', '*.yml'))):
        name = os.path.splitext(os.path.basename(path))[0]
        with open(path) as handle:
            plays = yaml.safe_load(handle)
        title = '%s.%s' % (COLLECTION, name)
        lines += [title, '-' * len(title), '', '.. code-block:: console', '',
                  '    ansible-playbook %s -i inventory' % title, '']
        for play in plays:
            lines.append('- %s' % play['name'])
            for key in ('hosts', 'serial', 'max_fail_percentage'):
                if key in play:
                    lines.append('  - ``%s``: ``%s``' % (key, play[key]))
            for role in play.get('roles', []):
                role = role['role'] if isinstance(role, dict) else role
                lines.append('  - role :ref:`%s <ansible_collections.%s_role>`' % (role, role))
        lines.append('')
    return '\n'.join(lines)


def main() -> int:
    os.environ['PATH'] = os.path.dirname(sys.executable) + os.pathsep + os.environ['PATH']  # this venv's tools
    shutil.rmtree(os.path.dirname(SITE), ignore_errors=True)
    os.makedirs(SITE, mode=0o700)  # antsibull-docs wants its directories writable by their owner only
    run('antsibull-docs', 'sphinx-init', '--use-current', '--fail-on-error', '--dest-dir', SITE,
        '--project', COLLECTION, '--copyright', '%s contributors' % COLLECTION, '--title', COLLECTION, COLLECTION)
    with open(os.path.join(SITE, 'conf.py'), 'a') as handle:
        handle.write(OFFLINE_CONF)
    write_inventory(os.path.join(SITE, 'ansible_devel.inv'))
    rst = os.path.join(SITE, 'rst')
    os.chmod(rst, 0o755)
    run('antsibull-docs', '--config-file', 'antsibull-docs.cfg', 'collection', '--cleanup', 'everything',
        '--use-current', '--fail-on-error', '--dest-dir', 'rst', COLLECTION)
    with open(os.path.join(rst, 'playbooks.rst'), 'w') as handle:
        handle.write(playbooks_page())
    with open(os.path.join(rst, 'index.rst'), 'a') as handle:
        handle.write('\n.. toctree::\n   :maxdepth: 1\n   :caption: Playbooks:\n\n   playbooks\n')
    run('sphinx-build', '-M', 'html', 'rst', 'build', '-c', '.', '-W', '--keep-going')
    print('make docs: %s' % os.path.join(SITE, 'build', 'html', 'index.html'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
