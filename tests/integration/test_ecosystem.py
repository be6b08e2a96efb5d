# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The collection in the Ansible ecosystem: an execution environment made with ansible-builder, the action
group that module_defaults sets the URI through, and the HTML docs site (make docs)."""

from __future__ import annotations

import base64
import glob
import json
import os
import shutil
import struct
import subprocess
import textwrap

import yaml

from conftest import BIN, REPO, RUN_ID, ansible_env, collection_version, playbook

BUILDER_VENV = os.path.join(REPO, '.build', 'builder-venv')
TARBALL = 'storagepools-libvirt-%s.tar.gz' % collection_version()


def requirement_lines(path):
    """The entries of a pip or bindep file: its lines without comments and blanks."""
    with open(path) as handle:
        return [line.strip() for line in handle if line.strip() and not line.startswith('#')]


def from_collection(lines):
    """What ansible-builder's introspection took from this collection (it tags each line with its source)."""
    tag = '# from collection storagepools.libvirt'
    return [line.split(tag)[0].strip() for line in lines if line.endswith(tag)]


# -- execution environment ----------------------------------------------------------------------------

def test_ansible_builder_create_takes_the_collections_ee_metadata(installed, tmp_path):
    """ansible-builder create of a version 3 definition that installs the collection tarball; then the
    context's own galaxy step and introspection (no container runtime here, so run as the Containerfile
    would run them) find exactly meta/ee-requirements.txt and meta/ee-bindep.txt."""
    builder = os.path.join(BUILDER_VENV, 'bin', 'ansible-builder')
    assert os.access(builder, os.X_OK), 'no %s: run scripts/setup.sh (make test does)' % builder
    version = subprocess.run([builder, '--version'], capture_output=True, text=True, check=True).stdout
    assert version.startswith('3.2.'), version
    tarball = os.path.join(os.path.dirname(installed), TARBALL)  # the one the installed fixture built
    definition = tmp_path / 'execution-environment.yml'
    definition.write_text(textwrap.dedent('''\
        version: 3
        images:
          base_image:
            name: localhost/storagepools-ee-base:test  # create never pulls it
        dependencies:
          ansible_core:
            package_pip: ansible-core==2.19.14
          ansible_runner:
            package_pip: ansible-runner
          galaxy:
            collections:
              - name: collections/%s
                type: file
        additional_build_files:
          - src: %s
            dest: collections
        ''') % (TARBALL, tarball))
    context = tmp_path / 'context'
    created = subprocess.run([builder, 'create', '-f', str(definition), '-c', str(context),
                              '--output-filename', 'Containerfile'], capture_output=True, text=True, check=False)
    assert created.returncode == 0, created.stdout + created.stderr
    containerfile = (context / 'Containerfile').read_text()
    assert 'COPY _build /build' in containerfile
    assert 'ansible-galaxy collection install' in containerfile and 'introspect.py introspect' in containerfile
    with open(context / '_build' / 'collections' / TARBALL, 'rb') as copied, open(tarball, 'rb') as built:
        assert copied.read() == built.read()
    requirements = yaml.safe_load((context / '_build' / 'requirements.yml').read_text())
    assert requirements == {'collections': [{'name': 'collections/' + TARBALL, 'type': 'file'}]}

    # The galaxy stage: `ansible-galaxy collection install -r requirements.yml` in a copy of _build.
    build = tmp_path / 'build'
    shutil.copytree(context / '_build', build)
    collections = tmp_path / 'share' / 'collections'
    install = subprocess.run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'install', '-r', 'requirements.yml',
                              '--collections-path', str(collections)], cwd=build, capture_output=True, text=True,
                             env=ansible_env(str(collections)), check=False)
    assert install.returncode == 0, install.stdout + install.stderr
    installed_meta = collections / 'ansible_collections/storagepools/libvirt/meta/execution-environment.yml'
    assert yaml.safe_load(installed_meta.read_text()) == {
        'version': 1, 'dependencies': {'python': 'meta/ee-requirements.txt', 'system': 'meta/ee-bindep.txt'}}

    # The builder stage: the context's introspect.py over what the galaxy stage installed.
    pip_out, bindep_out = tmp_path / 'requirements.txt', tmp_path / 'bindep.txt'
    introspect = subprocess.run([os.path.join(BUILDER_VENV, 'bin', 'python'),
                                 str(context / '_build' / 'scripts' / 'introspect.py'), 'introspect', str(collections),
                                 '--write-pip', str(pip_out), '--write-bindep', str(bindep_out)],
                                capture_output=True, text=True, check=False)
    assert introspect.returncode == 0, introspect.stdout + introspect.stderr
    found = yaml.safe_load(introspect.stdout)
    assert from_collection(found['python']) == requirement_lines(os.path.join(REPO, 'meta', 'ee-requirements.txt'))
    bindep = requirement_lines(os.path.join(REPO, 'meta', 'ee-bindep.txt'))
    assert bindep and from_collection(found['system']) == bindep
    assert from_collection(requirement_lines(bindep_out)) == bindep
    assert not any('ansible-core' in line for line in found['python'])
    # bindep itself reads the entries: on this Debian machine they name the dpkg package.
    listed = subprocess.run([os.path.join(BUILDER_VENV, 'bin', 'bindep'), '-f', str(bindep_out), '-l', 'newline'],
                            capture_output=True, text=True, check=False)
    assert listed.returncode == 0 and listed.stdout.split() == ['openssh-client'], listed.stdout + listed.stderr


# -- module_defaults through the action group --------------------------------------------------------------

BOGUS_URI = 'test:///nonexistent/spl-%s-module-defaults.xml' % RUN_ID
# Each module with what it requires besides the URI. The URI is refused before anything else happens, so
# nothing is made; a new module that takes uri must be added here (the test below insists).
MODULE_ARGS = {
    'legacy_disk_adopt': {'instances_path': '{dir}/instances', 'nova_conf': '{dir}/nova.conf',
                          'state_dir': '{dir}/state'},
    'live_migration_check': {'destination_uri': 'test:///default', 'instances': ['spl-none'],
                             'instances_path': '{dir}/instances'},
    'nova_image_cache': {'instances_path': '{dir}/instances', 'nova_conf': '{dir}/nova.conf'},
    'nova_storage_prune': {'instances_path': '{dir}/instances', 'nova_conf': '{dir}/nova.conf',
                           'state_dir': '{dir}/state'},
    'rbd_pool_secret': {'user': 'spl%s' % RUN_ID, 'key': base64.b64encode(
        struct.pack('<HIIH', 1, 0, 0, 16) + os.urandom(16)).decode('ascii')},
    'transition_preflight': {'instances_path': '{dir}/instances', 'nova_conf': '{dir}/nova.conf',
                             'state_dir': '{dir}/state'},
    'virt_pool_ensure': {'name': '{pool}', 'type': 'dir', 'target': '{dir}/pool'},
    'virt_pool_info': {},
    'virt_volume_clone': {'pool': '{pool}', 'name': 'volume', 'format': 'raw',
                          'source': {'path': '{dir}/image.raw', 'format': 'raw'}},
}


def ansible_doc(installed, *args):
    proc = subprocess.run([os.path.join(BIN, 'ansible-doc'), '-t', 'module', '--json'] + list(args),
                          capture_output=True, text=True, env=ansible_env(installed), check=True)
    return json.loads(proc.stdout)


def test_the_action_group_holds_every_module_that_takes_uri(installed):
    with open(os.path.join(installed, 'ansible_collections/storagepools/libvirt/meta/runtime.yml')) as handle:
        group = yaml.safe_load(handle)['action_groups']['libvirt']
    modules = sorted(ansible_doc(installed, '-l', 'storagepools.libvirt'))
    docs = ansible_doc(installed, *modules)
    taking_uri = sorted(name.split('.')[-1] for name, entry in docs.items() if 'uri' in entry['doc']['options'])
    assert len(taking_uri) >= 6, taking_uri
    assert sorted(group) == taking_uri
    assert sorted(MODULE_ARGS) == taking_uri


def test_module_defaults_of_the_group_reach_every_module(installed, workdir, pools):
    """Each module, given no uri, reports the URI set once by module_defaults on the group (a module the
    group missed would run on qemu:///system instead: its pool name is the pools fixture's, removed after)."""
    pool = pools.new()
    os.makedirs(os.path.join(workdir, 'instances'))
    with open(os.path.join(workdir, 'nova.conf'), 'w') as handle:
        handle.write('[DEFAULT]\n')
    tasks = ['- module_defaults:', '    group/storagepools.libvirt.libvirt:', '      uri: %s' % BOGUS_URI,
             '  block:']
    for module, args in sorted(MODULE_ARGS.items()):
        args = json.loads(json.dumps(args).replace('{dir}', workdir).replace('{pool}', pool))
        tasks += ['    - name: %s' % module, '      storagepools.libvirt.%s: %s' % (module, json.dumps(args)),
                  '      register: result_%s' % module, '      ignore_errors: true']
    results = os.path.join(workdir, 'results.json')
    registered = ', '.join("'%s': result_%s" % (module, module) for module in sorted(MODULE_ARGS))
    tasks += ['- name: Keep what each module returned', '  ansible.builtin.copy:',
              '    dest: %s' % results, '    mode: "0600"', '    content: "{{ {%s} | to_json }}"' % registered]
    code, out = playbook(installed, '\n'.join(tasks) + '\n')
    assert code == 0, out
    with open(results) as handle:
        returned = json.load(handle)
    assert sorted(returned) == sorted(MODULE_ARGS)
    for module, result in returned.items():
        assert result.get('failed') is True, (module, result)
        assert result['msg'].startswith("uri: cannot connect to libvirt at '%s'" % BOGUS_URI), (module, result)
        assert 'nonexistent/spl-%s-module-defaults.xml' % RUN_ID in result['libvirt_error'], (module, result)
    assert os.listdir(os.path.join(workdir, 'instances')) == []
    assert not os.path.exists(os.path.join(workdir, 'pool')) and not os.path.exists(os.path.join(workdir, 'state'))


# -- make docs ------------------------------------------------------------------------------------------

def test_make_docs_builds_every_module_role_and_playbook_without_warnings():
    env = dict(os.environ)
    env.pop('MAKEFLAGS', None)
    proc = subprocess.run(['make', '--no-print-directory', '-o', 'setup', 'docs'], cwd=REPO, capture_output=True,
                          text=True, env=env, timeout=1200, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    assert 'build succeeded.' in output  # sphinx-build -W: a warning would have failed the build
    sphinx_warnings = [line for line in output.splitlines()
                       if 'WARNING' in line and 'is ignored: it is neither a file nor a directory' not in line]
    assert sphinx_warnings == []
    html = os.path.join(REPO, '.build', 'docs', 'site', 'build', 'html')
    pages = os.path.join(html, 'collections', 'storagepools', 'libvirt')
    for module in glob.glob(os.path.join(REPO, 'plugins', 'modules', '*.py')):
        assert os.path.isfile(os.path.join(pages, '%s_module.html' % os.path.basename(module)[:-3])), module
    for role in os.listdir(os.path.join(REPO, 'roles')):
        assert os.path.isfile(os.path.join(pages, '%s_role.html' % role)), role
    with open(os.path.join(html, 'playbooks.html')) as handle:
        playbooks = handle.read()
    for path in glob.glob(os.path.join(REPO, 'playbooks', '*.yml')):
        name = os.path.basename(path)[:-4]
        assert 'ansible-playbook storagepools.libvirt.%s -i inventory' % name in playbooks, name


# -- README: the install commands -------------------------------------------------------------------------

def test_the_readme_install_commands_install_the_collection(tmp_path):
    """Each command of README's install section, run as written (the checkout path filled in), into a
    collections path of its own: build, install from the tarball, from git, from the directory."""
    with open(os.path.join(REPO, 'README.md')) as handle:
        section = handle.read().split('## Install\n', 1)[1].split('\n## ', 1)[0]
    block = section.split('```sh\n', 1)[1].split('```', 1)[0]
    commands = [line.split('  #')[0].strip().replace('/path/to/checkout', REPO) for line in block.splitlines()]
    assert [command.split()[:3] for command in commands] == [['ansible-galaxy', 'collection', 'build']] + \
        [['ansible-galaxy', 'collection', 'install']] * 3
    for number, command in enumerate(commands):
        collections = tmp_path / ('collections-%d' % number)
        argv = command.split()
        proc = subprocess.run([os.path.join(BIN, argv[0])] + argv[1:], cwd=tmp_path, capture_output=True,
                              text=True, env=ansible_env(str(collections)), timeout=300, check=False)
        assert proc.returncode == 0, (command, proc.stdout + proc.stderr)
        if argv[2] == 'install':
            manifest = collections / 'ansible_collections/storagepools/libvirt/MANIFEST.json'
            assert json.loads(manifest.read_text())['collection_info']['version'] == collection_version(), command
            assert (manifest.parent / 'meta/execution-environment.yml').is_file(), command
