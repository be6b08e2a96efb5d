# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The release notes are current: galaxy.yml's version is a release of changelogs/changelog.yaml, every fragment
and every module of that version is in it as it is now, and CHANGELOG.rst is what antsibull-changelog generates
from it. A fragment added or edited without `make changelog` fails here, naming it."""

from __future__ import annotations

import ast
import glob
import os
import shutil
import subprocess
import sys

import pytest
import yaml

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHANGELOGS = os.path.join(REPOSITORY, 'changelogs')
TOOL = os.path.join(os.path.dirname(sys.executable), 'antsibull-changelog')
RERUN = 'run `make changelog` (docs/development.md, "Releasing")'


def load(path):
    with open(path) as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope='module')
def releases():
    return load(os.path.join(CHANGELOGS, 'changelog.yaml'))['releases']


@pytest.fixture(scope='module')
def version():
    return load(os.path.join(REPOSITORY, 'galaxy.yml'))['version']


def antsibull_changelog(*args, cwd=REPOSITORY):
    proc = subprocess.run([TOOL] + list(args), cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_the_fragments_and_the_changes_file_pass_antsibull_changelogs_lint():
    assert antsibull_changelog('lint') == (0, '')
    assert antsibull_changelog('lint-changelog-yaml', os.path.join(CHANGELOGS, 'changelog.yaml')) == (0, '')


def test_galaxy_yml_s_version_is_a_release_with_a_summary(releases, version):
    assert version in releases, 'galaxy.yml says %s, changelogs/changelog.yaml has %s: %s' % (
        version, sorted(releases), RERUN)
    assert releases[version]['changes'].get('release_summary'), version


def test_every_fragment_is_in_a_release_as_it_reads_now(releases):
    """keep_fragments: the fragments stay, so one edited after its release is caught too."""
    listed = {name: release for release, data in releases.items() for name in data.get('fragments', [])}
    files = sorted(os.path.basename(path) for path in glob.glob(os.path.join(CHANGELOGS, 'fragments', '*.yml')))
    assert sorted(listed) == files, RERUN
    for name in files:
        changes = releases[listed[name]]['changes']
        for section, entries in load(os.path.join(CHANGELOGS, 'fragments', name)).items():
            if section == 'release_summary':
                assert changes[section] == entries, '%s: its release_summary changed; %s' % (name, RERUN)
                continue
            for entry in entries:
                assert entry in changes.get(section, []), '%s: %r is not in release %s; %s' % (
                    name, entry[:60], listed[name], RERUN)


def _version_added(path):
    """The version_added of a module's DOCUMENTATION (read from the syntax tree, never imported)."""
    with open(path) as handle:
        tree = ast.parse(handle.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [target.id for target in node.targets] == ['DOCUMENTATION']:
            return str(yaml.safe_load(node.value.value)['version_added'])
    raise AssertionError('%s has no DOCUMENTATION' % path)


def test_each_release_lists_the_modules_it_added(releases):
    added = {}
    for path in glob.glob(os.path.join(REPOSITORY, 'plugins', 'modules', '*.py')):
        added.setdefault(_version_added(path), set()).add(os.path.basename(path)[:-3])
    for release, modules in added.items():
        assert release in releases, 'a module says version_added %s, which is no release' % release
        listed = {plugin['name'] for plugin in releases[release].get('modules', [])}
        assert listed == modules, '%s: %s; %s' % (release, sorted(listed ^ modules), RERUN)


def test_changelog_rst_is_what_antsibull_changelog_generates(tmp_path):
    copy = tmp_path / 'collection'
    copy.mkdir()
    shutil.copytree(CHANGELOGS, copy / 'changelogs')
    shutil.copy(os.path.join(REPOSITORY, 'galaxy.yml'), copy / 'galaxy.yml')
    generated = tmp_path / 'CHANGELOG.rst'
    code, output = antsibull_changelog('generate', '--output', str(generated), '--output-format', 'rst', cwd=copy)
    assert code == 0, output
    with open(os.path.join(REPOSITORY, 'CHANGELOG.rst')) as handle:
        assert handle.read() == generated.read_text(), 'CHANGELOG.rst is out of date: %s' % RERUN
