# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The never-rules of docs/development.md, read from the code's syntax tree (ast, not text search).

Each rule is a function from a collection root to a list of ``path:line: what`` violations, so the
same function runs on this repository and, in the tests of the rules themselves, on a small tree
written into tmp_path with one deliberate violation.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[3]
COLLECTION_PACKAGE = 'ansible_collections.storagepools.libvirt'
MODULE_UTILS = 'plugins.module_utils'
# Highest first: a sub-package may import its own siblings and the packages before it, never one after it.
LAYERS = ('_core', '_xml', '_libvirt', '_images', '_backends', '_nova', '_converge')
# The Python files Ansible runs as entry points: thin argspec -> plan -> apply -> exit.
ENTRY_POINTS = ('plugins/modules', 'plugins/action')
COMMAND_RUNNER = 'plugins/module_utils/_core/command.py'
LIBVIRT_ADAPTER = 'plugins/module_utils/_libvirt/'
DOC_VARIABLES = ('DOCUMENTATION', 'EXAMPLES', 'RETURN')

XML_LIBRARIES = ('lxml', 'xml', 'defusedxml')
XML_CONSTRUCTORS = {'Element', 'SubElement', 'ElementTree', 'ElementMaker', 'makeelement'}
XML_MARKUP = re.compile(r'<\s*/?[A-Za-z_][\w:.-]*(\s|/?>)')
QEMU_IMG = re.compile(r'qemu-img(?![\w-])')  # the command, not a method label such as 'qemu-img-convert'
PROCESS_CALLS = {
    ('os', 'system'), ('os', 'popen'), ('os', 'fork'), ('os', 'forkpty'), ('pty', 'spawn'),
    ('asyncio', 'create_subprocess_exec'), ('asyncio', 'create_subprocess_shell'),
}
PROCESS_PREFIXES = ('os.exec', 'os.spawn', 'os.posix_spawn')


class SourceFile:
    """One parsed Python file of the collection, named as Python imports it."""

    def __init__(self, root: Path, path: Path):
        self.root = root
        self.path = path
        self.relative = path.relative_to(root).as_posix()
        parts = list(path.relative_to(root).with_suffix('').parts)
        self.is_package = parts[-1] == '__init__'
        if self.is_package:
            parts.pop()
        self.name = '.'.join(parts)
        self.tree = ast.parse(path.read_text(encoding='utf-8'), filename=str(path))

    def where(self, node: ast.AST) -> str:
        return '%s:%d' % (self.relative, getattr(node, 'lineno', 0))

    def imports(self) -> list[tuple[ast.AST, str]]:
        """(node, dotted name) of every import anywhere in the file (function-level ones too).

        The collection's own modules are named relative to its root (``plugins.module_utils._xml.tree``);
        ``from package import submodule`` names the submodule."""
        found = []
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                found.extend((node, local_name(alias.name)) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = self.resolve_from(node)
                for alias in node.names:
                    submodule = '%s.%s' % (base, alias.name) if base else alias.name
                    found.append((node, submodule if module_exists(self.root, submodule) else base))
        return found

    def resolve_from(self, node: ast.ImportFrom) -> str:
        if not node.level:
            return local_name(node.module or '')
        package = self.name.split('.') if self.is_package else self.name.split('.')[:-1]
        if node.level > 1:
            package = package[:-(node.level - 1)]
        return '.'.join(package + ([node.module] if node.module else []))

    def code_strings(self) -> list[ast.Constant]:
        """String constants that are code: not docstrings, not the DOCUMENTATION/EXAMPLES/RETURN blocks."""
        skipped = set()
        for node in ast.walk(self.tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body
                if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                    skipped.add(id(body[0].value))
        for node in self.tree.body:
            if isinstance(node, ast.Assign) and any(
                    isinstance(target, ast.Name) and target.id in DOC_VARIABLES for target in node.targets):
                skipped.update(id(value) for value in ast.walk(node.value))
        return [node for node in ast.walk(self.tree)
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skipped]


def local_name(dotted: str) -> str:
    """The collection's own modules without their ``ansible_collections.<ns>.<name>.`` prefix."""
    if dotted == COLLECTION_PACKAGE or dotted.startswith(COLLECTION_PACKAGE + '.'):
        return dotted[len(COLLECTION_PACKAGE) + 1:]
    return dotted


def module_exists(root: Path, dotted: str) -> bool:
    path = root.joinpath(*dotted.split('.'))
    return path.with_suffix('.py').is_file() or (path / '__init__.py').is_file() or path.is_dir()


def source_files(root: Path, *folders: str) -> list[SourceFile]:
    return [SourceFile(root, path) for folder in folders for path in sorted((root / folder).rglob('*.py'))]


def layer_of(dotted: str) -> str | None:
    """The module_utils sub-package a module belongs to, '' for module_utils itself, None outside it."""
    if dotted == MODULE_UTILS:
        return ''
    if dotted.startswith(MODULE_UTILS + '.'):
        return dotted[len(MODULE_UTILS) + 1:].split('.')[0]
    return None


def is_ansible_or_libvirt(dotted: str) -> bool:
    """Ansible, another collection (this one's modules are named without the prefix) or libvirt."""
    return dotted.split('.')[0] in ('ansible', 'ansible_collections', 'libvirt', 'libvirtmod')


def dotted_name(node: ast.AST) -> str:
    """``a.b.c`` for a Name/Attribute chain, '' for anything else (a call result, a subscript)."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return ''
    parts.append(node.id)
    return '.'.join(reversed(parts))


# --- the rules ---------------------------------------------------------------------------------------

def lower_layer_imports(root: Path) -> list[str]:
    """Rule (a): no module_utils file imports a layer below its own; every file is in a known layer."""
    violations = []
    for source in source_files(root, 'plugins/module_utils'):
        own = layer_of(source.name)
        if own == '':
            continue
        if own not in LAYERS:
            violations.append('%s: %s is not a layer (known: %s)' % (source.where(source.tree), own, ', '.join(LAYERS)))
            continue
        for node, imported in source.imports():
            layer = layer_of(imported)
            if layer is None or layer == own:
                continue
            if layer not in LAYERS:
                violations.append('%s: imports %s, which is in no layer' % (source.where(node), imported))
            elif LAYERS.index(layer) > LAYERS.index(own):
                violations.append('%s: %s imports the lower layer %s (%s)' % (source.where(node), own, layer, imported))
    return violations


def xml_layer_imports(root: Path) -> list[str]:
    """Rule (b): _xml imports neither libvirt nor Ansible, directly or through the modules it imports."""
    files = {source.name: source for source in source_files(root, 'plugins/module_utils')}
    violations = []
    for source in files.values():
        if layer_of(source.name) != '_xml':
            continue
        seen, chains = {source.name}, [[source.name]]
        while chains:
            chain = chains.pop()
            for node, imported in files[chain[-1]].imports():
                if is_ansible_or_libvirt(imported):
                    via = ' via %s' % ' -> '.join(chain[1:]) if len(chain) > 1 else ''
                    where = source.where(node if len(chain) == 1 else source.tree)
                    violations.append('%s: imports %s%s' % (where, imported, via))
                elif imported in files and imported not in seen:
                    seen.add(imported)
                    chains.append(chain + [imported])
    return sorted(set(violations))


def entry_points_building_xml(root: Path) -> list[str]:
    """Rule (c), XML: modules import no XML library, construct no element, write no markup in code."""
    violations = []
    for source in source_files(root, *ENTRY_POINTS):
        for node, imported in source.imports():
            names = [alias.name for alias in node.names]
            if imported.split('.')[0] in XML_LIBRARIES or 'etree' in names:
                violations.append('%s: imports %s' % (source.where(node), imported))
        for node in ast.walk(source.tree):
            if isinstance(node, ast.Call):
                called = dotted_name(node.func).rsplit('.', maxsplit=1)[-1]
                if called in XML_CONSTRUCTORS:
                    violations.append('%s: builds XML with %s()' % (source.where(node), dotted_name(node.func)))
            elif isinstance(node, ast.Attribute) and node.attr == 'etree':
                violations.append('%s: reaches lxml through %s' % (source.where(node), dotted_name(node)))
        for node in source.code_strings():
            if XML_MARKUP.search(node.value):
                violations.append('%s: XML markup in a string: %r' % (source.where(node), node.value[:40]))
    return violations


def entry_points_building_qemu_img_argv(root: Path) -> list[str]:
    """Rule (c), qemu-img: no module names the qemu-img command (only _images/qemu_img.py builds its argv)."""
    return ['%s: names qemu-img: %r' % (source.where(node), node.value[:40])
            for source in source_files(root, *ENTRY_POINTS)
            for node in source.code_strings() if QEMU_IMG.search(node.value)]


def processes_outside_command(root: Path) -> list[str]:
    """Rule (d): subprocess (or any other way to start a process) only in _core/command.py."""
    violations = []
    for source in source_files(root, 'plugins'):
        if source.relative == COMMAND_RUNNER:
            continue
        for node, imported in source.imports():
            if imported.split('.')[0] == 'subprocess':
                violations.append('%s: imports subprocess' % source.where(node))
        for node in ast.walk(source.tree):
            if not isinstance(node, ast.Call):
                continue
            called = dotted_name(node.func)
            if (tuple(called.split('.')[-2:]) in PROCESS_CALLS or called.startswith(PROCESS_PREFIXES)
                    or called.endswith('.run_command')):
                violations.append('%s: starts a process with %s()' % (source.where(node), called))
    return violations


def libvirt_errors_outside_adapter(root: Path) -> list[str]:
    """Rule (e): libvirtError is caught (or named at all) only under _libvirt/."""
    violations = []
    for source in source_files(root, 'plugins'):
        if source.relative.startswith(LIBVIRT_ADAPTER):
            continue
        for node in ast.walk(source.tree):
            if isinstance(node, ast.ExceptHandler) and node.type is not None:
                caught = node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]
                for expression in caught:
                    if dotted_name(expression).rsplit('.', maxsplit=1)[-1] == 'libvirtError':
                        violations.append('%s: except %s' % (source.where(node), dotted_name(expression)))
            elif isinstance(node, ast.ImportFrom) and any(alias.name == 'libvirtError' for alias in node.names):
                violations.append('%s: imports libvirtError' % source.where(node))
    return violations


def imports_named_at_run_time(root: Path) -> list[str]:
    """Rule (f): every import is an import statement. AnsiballZ ships a module only the module_utils it finds
    imported in the source; one named at run time (importlib.import_module, __import__) is missing on the
    managed host (an rbd pool once failed so)."""
    violations = []
    for source in source_files(root, 'plugins'):
        for node in ast.walk(source.tree):
            if isinstance(node, ast.Call) and dotted_name(node.func).rsplit('.', maxsplit=1)[-1] in ('import_module', '__import__'):
                violations.append('%s: imports with %s()' % (source.where(node), dotted_name(node.func)))
    return violations


# --- the rules hold on this repository -----------------------------------------------------------------

RULES = [
    lower_layer_imports,
    xml_layer_imports,
    entry_points_building_xml,
    entry_points_building_qemu_img_argv,
    processes_outside_command,
    imports_named_at_run_time,
    libvirt_errors_outside_adapter,
]


@pytest.mark.parametrize('rule', RULES, ids=lambda rule: rule.__name__)
def test_the_repository_keeps_the_rule(rule):
    assert rule(REPOSITORY) == []


def test_the_rules_see_the_whole_tree():
    """A checker that found no file would pass every rule: make sure each one reads real code."""
    names = {source.name for source in source_files(REPOSITORY, 'plugins')}
    assert 'plugins.module_utils._core.command' in names and 'plugins.modules.virt_pool_ensure' in names
    assert {layer_of(name) for name in names} >= set(LAYERS)
    pool_model = SourceFile(REPOSITORY, REPOSITORY / 'plugins/module_utils/_xml/pool.py')
    assert {'plugins.module_utils._core.names', 'plugins.module_utils._xml.base'} <= {
        imported for node, imported in pool_model.imports()}


# --- each rule fails on a deliberate violation ----------------------------------------------------------

MU = COLLECTION_PACKAGE + '.' + MODULE_UTILS


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding='utf-8')
    for layer in LAYERS:
        (root / 'plugins/module_utils' / layer).mkdir(parents=True, exist_ok=True)
        (root / 'plugins/module_utils' / layer / '__init__.py').touch()
    return root


def violations_in(violations: list[str]) -> list[str]:
    """``path:line`` of each violation, the part a test can state exactly."""
    return [violation.split(': ')[0] for violation in violations]


def test_a_lower_layer_import_is_reported(tmp_path):
    root = write_tree(tmp_path, {
        'plugins/module_utils/_xml/good.py': (
            'from %s._core import errors\nfrom . import tree\nfrom .tree import parse\n' % MU),
        'plugins/module_utils/_xml/tree.py': 'def parse():\n    pass\n',
        'plugins/module_utils/_libvirt/connection.py': '',
        'plugins/module_utils/_converge/pool.py': '',
        'plugins/module_utils/_xml/bad.py': (
            'from %s._libvirt import connection\n'
            'from .._converge import pool\n'
            'from %s import _nova\n'
            'def later():\n    import %s._images.inspect\n' % (MU, MU, MU)),
        'plugins/module_utils/_misc/helper.py': 'import os\n',
    })
    found = lower_layer_imports(root)
    assert violations_in(found) == [
        'plugins/module_utils/_misc/helper.py:0',
        'plugins/module_utils/_xml/bad.py:1', 'plugins/module_utils/_xml/bad.py:2',
        'plugins/module_utils/_xml/bad.py:3', 'plugins/module_utils/_xml/bad.py:5',
    ]
    assert '_xml imports the lower layer _libvirt (plugins.module_utils._libvirt.connection)' in found[1]
    assert '_converge (plugins.module_utils._converge.pool)' in found[2]


def test_libvirt_or_ansible_in_the_xml_layer_is_reported(tmp_path):
    root = write_tree(tmp_path, {
        'plugins/module_utils/_xml/direct.py': 'import libvirt\nfrom ansible.module_utils.basic import AnsibleModule\n',
        'plugins/module_utils/_xml/through.py': 'from %s._core import runner\n' % MU,
        'plugins/module_utils/_core/runner.py': 'from ansible.module_utils.basic import AnsibleModule\n',
        'plugins/module_utils/_xml/clean.py': 'from %s._core import errors\nimport copy\n' % MU,
        'plugins/module_utils/_core/errors.py': 'class StoragePoolsError(Exception):\n    pass\n',
    })
    assert xml_layer_imports(root) == [
        'plugins/module_utils/_xml/direct.py:1: imports libvirt',
        'plugins/module_utils/_xml/direct.py:2: imports ansible.module_utils.basic',
        'plugins/module_utils/_xml/through.py:0: imports ansible.module_utils.basic'
        ' via plugins.module_utils._core.runner',
    ]


MODULE_DOCS = '''DOCUMENTATION = r"""
description: Writes C(<pool type='dir'>) with C(qemu-img convert).
"""
RETURN = "<pool/>"


def main():
    """Defines <pool> through qemu-img (a docstring is documentation)."""
'''


def test_xml_built_in_a_module_is_reported(tmp_path):
    root = write_tree(tmp_path, {
        'plugins/modules/documented.py': MODULE_DOCS,
        'plugins/modules/builder.py': (
            'from lxml import etree\n'
            'from %s._xml.tree import etree as tree\n'
            'def main(root, xml_tree):\n'
            '    xml_tree.etree.SubElement(root, "name")\n'
            '    text = "<pool type=\'%%s\'>" %% "dir"\n' % MU),
    })
    assert violations_in(entry_points_building_xml(root)) == [
        'plugins/modules/builder.py:1', 'plugins/modules/builder.py:2',
        'plugins/modules/builder.py:4', 'plugins/modules/builder.py:4', 'plugins/modules/builder.py:5',
    ]


def test_qemu_img_argv_in_a_module_is_reported(tmp_path):
    root = write_tree(tmp_path, {
        'plugins/modules/documented.py': MODULE_DOCS + '    return {"method": "qemu-img-convert"}\n',
        'plugins/action/runner.py': 'ARGV = ["qemu-img", "info", "--output=json"]\n',
    })
    assert entry_points_building_qemu_img_argv(root) == ["plugins/action/runner.py:1: names qemu-img: 'qemu-img'"]


def test_a_process_started_outside_command_is_reported(tmp_path):
    root = write_tree(tmp_path, {
        'plugins/module_utils/_core/command.py': 'import subprocess\n',
        'plugins/module_utils/_images/copy.py': 'import subprocess\nfrom subprocess import run\n',
        'plugins/modules/shell.py': ('import os\ndef main(module):\n    os.system("ls")\n'
                                     '    module.run_command(["ls"])\n    os.execvp("ls", ["ls"])\n'),
    })
    assert violations_in(processes_outside_command(root)) == [
        'plugins/module_utils/_images/copy.py:1', 'plugins/module_utils/_images/copy.py:2',
        'plugins/modules/shell.py:3', 'plugins/modules/shell.py:4', 'plugins/modules/shell.py:5',
    ]


def test_a_libvirt_error_caught_outside_the_adapter_is_reported(tmp_path):
    catches = ('import libvirt\nfrom libvirt import libvirtError\n'
               'def f():\n    try:\n        pass\n    except libvirt.libvirtError:\n        pass\n'
               '    except (OSError, libvirtError):\n        pass\n')
    root = write_tree(tmp_path, {
        'plugins/module_utils/_libvirt/lookups.py': catches,
        'plugins/module_utils/_converge/pool.py': catches,
        'plugins/modules/info.py': 'def f(connection):\n    try:\n        pass\n'
                                   '    except connection.libvirt.libvirtError:\n        pass\n',
    })
    assert libvirt_errors_outside_adapter(root) == [
        'plugins/module_utils/_converge/pool.py:2: imports libvirtError',
        'plugins/module_utils/_converge/pool.py:6: except libvirt.libvirtError',
        'plugins/module_utils/_converge/pool.py:8: except libvirtError',
        'plugins/modules/info.py:4: except connection.libvirt.libvirtError',
    ]


def test_an_import_named_at_run_time_is_reported(tmp_path):
    root = write_tree(tmp_path, {
        'plugins/module_utils/_backends/base.py': ('import importlib\n'
                                                   'def pick(name):\n'
                                                   '    return importlib.import_module(name)\n'),
        'plugins/modules/clone.py': 'def main():\n    __import__("json")\n',
    })
    assert violations_in(imports_named_at_run_time(root)) == [
        'plugins/module_utils/_backends/base.py:3', 'plugins/modules/clone.py:2']
