# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_core/requirements.py against the code: each module's imports and programs, read from syntax trees.

A module reaches every file it imports, transitively (function-level imports too); what it needs on the
managed host is every module outside the standard library and Ansible that those files import or look
for (``importlib.util.find_spec('lxml')``), and every program they name as argv[0]."""

from __future__ import annotations

import ast
import re
import sys

import pytest

from test_layers import REPOSITORY, SourceFile, dotted_name, source_files

from ansible_collections.storagepools.libvirt.plugins.module_utils._core import requirements

FILES = {source.name: source for source in source_files(REPOSITORY, 'plugins/module_utils', 'plugins/modules')}
MODULE_NAMES = sorted(path.stem for path in (REPOSITORY / 'plugins/modules').glob('*.py') if path.stem != '__init__')
DOCUMENT = REPOSITORY / 'docs' / 'managed-hosts.md'


def reached(module: str) -> list[SourceFile]:
    """The module's file and every collection file it imports, transitively."""
    seen, pending = {'plugins.modules.' + module}, ['plugins.modules.' + module]
    while pending:
        for _node, imported in FILES[pending.pop()].imports():
            if imported in FILES and imported not in seen:
                seen.add(imported)
                pending.append(imported)
    return [FILES[name] for name in sorted(seen)]


def third_party(dotted: str) -> str | None:
    top = dotted.split('.')[0]
    if not top or top in sys.stdlib_module_names or top in ('ansible', 'ansible_collections', 'plugins'):
        return None
    return top


def python_needs(sources: list[SourceFile]) -> set[str]:
    needs = set()
    for source in sources:
        needs.update(filter(None, (third_party(imported) for _node, imported in source.imports())))
        for node in ast.walk(source.tree):
            if (isinstance(node, ast.Call) and dotted_name(node.func).endswith('find_spec') and node.args
                    and isinstance(node.args[0], ast.Constant)):
                needs.add(node.args[0].value.split('.')[0])
    return needs


def argv_programs(source: SourceFile) -> set[str]:
    """argv[0] of every list literal handed to command.run, directly or as ``[program] + argv``."""
    programs = set()
    for node in ast.walk(source.tree):
        if isinstance(node, ast.Call) and dotted_name(node.func) in ('command.run', 'run') and node.args:
            argv = node.args[0]
            if isinstance(argv, ast.BinOp):
                argv = argv.left
            if isinstance(argv, ast.List) and argv.elts and isinstance(argv.elts[0], ast.Constant):
                programs.add(argv.elts[0].value)
    return programs


def program_needs(module: str) -> set[str]:
    return {constant.value for source in reached(module) for constant in source.code_strings()
            if constant.value in requirements.PROGRAMS}


def test_every_module_is_in_the_table():
    assert sorted(requirements.MODULES) == MODULE_NAMES


@pytest.mark.parametrize('module', MODULE_NAMES)
def test_the_python_modules_of_each_module_are_those_its_code_imports(module):
    assert set(requirements.MODULES[module]['python']) == python_needs(reached(module))


@pytest.mark.parametrize('module', MODULE_NAMES)
def test_the_programs_of_each_module_are_those_its_code_runs(module):
    assert set(requirements.MODULES[module]['programs']) == program_needs(module)


def test_every_program_the_code_runs_is_in_the_table():
    """A new argv[0] (say ``rbd`` or ``rsync``) has to be added to PROGRAMS, which then needs its packages."""
    ran = set().union(*(argv_programs(source) for source in FILES.values()))
    assert 'qemu-img' in ran and 'lvm' in ran  # the scan sees the two runs the code has today
    assert ran <= set(requirements.PROGRAMS), ran - set(requirements.PROGRAMS)


def test_every_need_names_a_package_per_family():
    for table in (requirements.PYTHON, requirements.PROGRAMS):
        for name, entry in table.items():
            assert entry['what'] and entry['needed'], name
            for family in requirements.FAMILIES:
                assert re.fullmatch(r'[a-z0-9][a-z0-9.+-]+', entry[family]), (name, family)
    used = {name for needs in requirements.MODULES.values() for name in needs['python']}
    assert used == set(requirements.PYTHON)
    assert {name for needs in requirements.MODULES.values() for name in needs['programs']} == set(requirements.PROGRAMS)


def test_packages_for_a_module_and_family():
    assert requirements.packages_for('virt_pool_ensure', 'Debian') == ['python3-libvirt', 'python3-lxml']
    assert requirements.packages_for('virt_volume_clone', 'RedHat') == [
        'lvm2', 'python3-libvirt', 'python3-lxml', 'python3-rados', 'python3-rbd', 'qemu-img']
    assert requirements.packages_for('virt_pool_ensure', 'Suse') == []


def test_missing_libraries_names_the_packages_of_the_table():
    """The modules' own refusal (_libvirt/connection.missing_libraries) names the same packages."""
    source = (REPOSITORY / 'plugins/module_utils/_libvirt/connection.py').read_text()
    for name in ('libvirt', 'lxml'):
        assert requirements.PYTHON[name]['Debian'] in source
        assert requirements.PYTHON[name]['pip'] in source


def test_the_managed_hosts_document_lists_every_package():
    text = DOCUMENT.read_text()
    for table in (requirements.PYTHON, requirements.PROGRAMS):
        for name, entry in table.items():
            for family in requirements.FAMILIES:
                assert '`%s`' % entry[family] in text, (name, family)
    rows = {match.group(1): (match.group(2), match.group(3))
            for match in re.finditer(r'^\| `(\w+)` \| ([^|]+) \| ([^|]+) \|$', text, re.MULTILINE)}
    for module in MODULE_NAMES:
        python, programs = rows[module]
        needs = requirements.MODULES[module]
        assert python.split(' (')[0] == (', '.join(needs['python']) or 'none'), module
        assert programs.strip() == (', '.join(needs['programs']) or 'none'), module


def test_the_scan_reads_function_level_imports_and_find_spec(tmp_path):
    """The scan is not blind: a module whose helper imports inside a function and looks for a library."""
    (tmp_path / 'plugins/modules').mkdir(parents=True)
    (tmp_path / 'plugins/modules/probe.py').write_text(
        'import importlib.util\n\ndef run():\n    import yaml\n    return importlib.util.find_spec("jinja2")\n')
    source = SourceFile(tmp_path, tmp_path / 'plugins/modules/probe.py')
    assert python_needs([source]) == {'yaml', 'jinja2'}


def requirement_names(path) -> set[str]:
    lines = [line.split('#')[0].strip() for line in path.read_text().splitlines()]
    return {re.split(r'[<>=!~\[; ]', line)[0].lower() for line in lines if line}


def test_the_controller_needs_only_what_meta_ee_requirements_lists():
    """The action plugins' imports, transitively: whatever is not the standard library or Ansible is listed
    in meta/ee-requirements.txt (today nothing is), so an execution environment gets it."""
    files = dict(FILES)
    actions = source_files(REPOSITORY, 'plugins/action')
    files.update((source.name, source) for source in actions)
    seen, pending = {source.name for source in actions}, [source.name for source in actions]
    while pending:
        for _node, imported in files[pending.pop()].imports():
            if imported in files and imported not in seen:
                seen.add(imported)
                pending.append(imported)
    assert 'plugins.module_utils._converge.report' in seen  # the walk follows the plugin into module_utils
    needed = python_needs([files[name] for name in seen])
    assert {name.lower() for name in needed} <= requirement_names(REPOSITORY / 'meta/ee-requirements.txt')
    assert 'ansible-core' not in requirement_names(REPOSITORY / 'meta/ee-requirements.txt')


def test_the_roles_and_playbooks_use_no_other_collection():
    """A task action outside ansible.builtin and this collection would need a collection dependency."""
    yaml = pytest.importorskip('yaml')
    actions = set()

    def walk(node):
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            actions.update(key for key in node if isinstance(key, str) and key.count('.') == 2)
            for key in ('tasks', 'block', 'rescue', 'always', 'pre_tasks', 'post_tasks', 'handlers'):
                walk(node.get(key))

    paths = sorted(REPOSITORY.glob('roles/*/tasks/*.yml')) + sorted(REPOSITORY.glob('playbooks/*.yml'))
    for path in paths:
        walk(yaml.safe_load(path.read_text()))
    assert 'storagepools.libvirt.legacy_disk_adopt' in actions
    assert {action.rsplit('.', 1)[0] for action in actions} <= {'ansible.builtin', 'storagepools.libvirt'}, actions
