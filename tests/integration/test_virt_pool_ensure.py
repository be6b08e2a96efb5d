# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""virt_pool_ensure against the real libvirtd."""

from __future__ import annotations

import os
import subprocess

import pytest
from conftest import libvirt, run_module

from ansible_collections.storagepools.libvirt.plugins.module_utils._xml import base as xml_tree, pool as pool_xml

INACTIVE = libvirt.VIR_STORAGE_XML_INACTIVE


def ensure(check=False, diff=False, env=None, **args):
    return run_module('virt_pool_ensure', args, check=check, diff=diff, env=env)


def actions(result):
    return [step['action'] for step in result['actions']]


def defined_xml(pools, name):
    return xml_tree.parse(pools.lookup(name).XMLDesc(INACTIVE))


def redefine_behind_the_back(conn, pools, name, old, new):
    """Change the definition with libvirt directly, as an operator's virsh edit would."""
    xml = pools.lookup(name).XMLDesc(INACTIVE)
    assert old in xml
    conn.storagePoolDefineXML(xml.replace(old, new), 0)


def test_dir_pool_converges_in_one_task(pools, workdir):
    name = pools.new()
    target = os.path.join(workdir, 'pool')
    os.mkdir(target)
    with open(os.path.join(target, 'keep-me'), 'w') as handle:
        handle.write('data that was there before')
    args = dict(name=name, type='dir', target=target, state='active', autostart=True)

    check = ensure(check=True, **args)
    assert check['changed'] is True
    assert actions(check) == ['define', 'build', 'start', 'autostart']
    assert pools.lookup(name) is None, 'check mode defined the pool'
    assert check['pool']['uuid'] is None and check['pool']['state'] == 'active'

    real = ensure(**args)
    assert real['changed'] is True
    assert actions(real) == actions(check)
    pool = pools.lookup(name)
    assert pool.isActive() and pool.autostart() and pool.isPersistent()
    assert real['pool']['uuid'] == pool.UUIDString()
    assert real['pool']['state'] == 'active' and real['pool']['autostart'] is True
    with open(os.path.join(target, 'keep-me')) as handle:
        assert handle.read() == 'data that was there before'

    for rerun in (ensure(**args), ensure(check=True, **args)):
        assert rerun['changed'] is False
        assert rerun['actions'] == []
        assert rerun['drift'] is False and rerun['restart_required'] is False
        assert rerun['pool']['uuid'] == pool.UUIDString()


def test_build_creates_a_missing_target_directory_and_permissions(pools, workdir):
    name = pools.new()
    target = os.path.join(workdir, 'new', 'pool')
    result = ensure(name=name, type='dir', target=target, permissions={'mode': '0750'})
    assert result['changed'] is True
    assert oct(os.stat(target).st_mode & 0o7777) == '0o750'


@pytest.mark.parametrize('state, active', [('inactive', False), ('present', False)])
def test_inactive_and_present_define_without_starting(pools, workdir, state, active):
    name = pools.new()
    result = ensure(name=name, type='dir', target=os.path.join(workdir, 'p'), state=state, autostart=False)
    assert actions(result) == ['define', 'build']
    assert bool(pools.lookup(name).isActive()) is active
    assert result['pool']['state'] == 'inactive'
    assert ensure(name=name, type='dir', target=os.path.join(workdir, 'p'), state=state,
                  autostart=False)['changed'] is False


def test_present_leaves_a_running_pool_running_and_inactive_stops_it(pools, workdir):
    name = pools.new()
    args = dict(name=name, type='dir', target=workdir)
    ensure(**args)
    assert ensure(state='present', **args)['changed'] is False
    stopped = ensure(state='inactive', **args)
    assert actions(stopped) == ['stop']
    assert not pools.lookup(name).isActive()
    assert actions(ensure(state='active', **args)) == ['start']


def test_autostart_alone_is_converged(pools, workdir):
    name = pools.new()
    args = dict(name=name, type='dir', target=workdir)
    ensure(**args)
    off = ensure(autostart=False, **args)
    assert actions(off) == ['autostart'] and not pools.lookup(name).autostart()
    assert ensure(autostart=False, **args)['changed'] is False


@pytest.mark.parametrize('old, new', [
    ('<mode>0755</mode>', '<mode>0700</mode>'),  # permissions
    ('/pool</path>', '/elsewhere</path>'),  # target
])
def test_drift_behind_the_back_is_redefined_with_a_clean_diff(conn, pools, workdir, old, new):
    name = pools.new()
    args = dict(name=name, type='dir', target=os.path.join(workdir, 'pool'), permissions={'mode': '0755'})
    ensure(**args)
    redefine_behind_the_back(conn, pools, name, old, new)

    check = ensure(check=True, diff=True, **args)
    assert check['changed'] is True and check['drift'] is True
    assert actions(check) == ['redefine']
    assert new in pools.lookup(name).XMLDesc(INACTIVE), 'check mode redefined the pool'
    changed_lines = [line for line in xml_tree.unified_diff(check['diff']['before'], check['diff']['after'])
                     .splitlines() if line[:1] in '+-' and not line.startswith(('+++', '---'))]
    assert changed_lines == ['-' + line for line in check['diff']['before'].splitlines() if new in line] + \
        ['+' + line for line in check['diff']['after'].splitlines() if old in line]
    assert len(changed_lines) == 2
    for noise in ('uuid', 'capacity', 'allocation', 'available'):
        assert noise not in check['diff']['before'] + check['diff']['after']

    real = ensure(diff=True, **args)
    assert real['changed'] is True and actions(real) == ['redefine']
    assert old in pools.lookup(name).XMLDesc(INACTIVE)
    # The running pool never left the task's definition: nothing waits for a restart.
    assert real['restart_required'] is False
    assert ensure(**args)['changed'] is False


def test_drift_of_an_fs_pools_source_device(conn, pools, workdir, loop_device):
    name = pools.new()
    device, other = loop_device(), loop_device()
    args = dict(name=name, type='fs', target=os.path.join(workdir, 'mnt'), source={'device': [device]},
                state='inactive', autostart=False, build='never')
    assert ensure(**args)['changed'] is True
    redefine_behind_the_back(conn, pools, name, "path='%s'" % device, "path='%s'" % other)
    fixed = ensure(diff=True, **args)
    assert actions(fixed) == ['redefine']
    assert "path='%s'" % device in pools.lookup(name).XMLDesc(INACTIVE)


def test_on_drift_fail_and_warn_change_nothing(conn, pools, workdir):
    name = pools.new()
    args = dict(name=name, type='dir', target=workdir, permissions={'mode': '0755'})
    ensure(**args)
    redefine_behind_the_back(conn, pools, name, '<mode>0755</mode>', '<mode>0700</mode>')

    failed = ensure(on_drift='fail', **args)
    assert failed['failed'] is True
    assert failed['msg'].startswith('on_drift: ')
    assert '-      <mode>0700</mode>' in failed['msg'] and '+      <mode>0755</mode>' in failed['msg']
    assert '<mode>0700</mode>' in pools.lookup(name).XMLDesc(INACTIVE)

    warned = ensure(on_drift='warn', **args)
    assert warned['changed'] is False and warned['drift'] is True
    assert any('on_drift=warn' in warning for warning in warned.warnings)
    assert '<mode>0700</mode>' in pools.lookup(name).XMLDesc(INACTIVE)


def test_a_changed_target_of_an_active_pool_waits_for_restart_unless_allowed(pools, workdir):
    name = pools.new()
    ensure(name=name, type='dir', target=os.path.join(workdir, 'a'))
    moved = dict(name=name, type='dir', target=os.path.join(workdir, 'b'), build='never')
    os.mkdir(os.path.join(workdir, 'b'))

    pending = ensure(**moved)
    assert actions(pending) == ['redefine'] and pending['restart_required'] is True
    running = xml_tree.parse(pools.lookup(name).XMLDesc(0))
    assert xml_tree.child_text(running, 'target/path') == os.path.join(workdir, 'a')

    again = ensure(**moved)  # still pending: said again, but nothing to change
    assert again['changed'] is False and again['restart_required'] is True
    assert ensure(state='present', **moved)['restart_required'] is True

    check = ensure(check=True, restart=True, **moved)
    assert actions(check) == ['restart'] and check['restart_required'] is False
    restarted = ensure(restart=True, **moved)
    assert actions(restarted) == ['restart'] and restarted['restart_required'] is False
    running = xml_tree.parse(pools.lookup(name).XMLDesc(0))
    assert xml_tree.child_text(running, 'target/path') == os.path.join(workdir, 'b')
    assert ensure(**moved)['changed'] is False


def test_fs_pool_no_overwrite_refuses_an_existing_filesystem(pools, workdir, loop_device):
    name = pools.new()
    device = loop_device(mkfs='mkfs.ext4')
    target = os.path.join(workdir, 'mnt')
    args = dict(name=name, type='fs', target=target, source={'device': [device], 'format': 'ext4'})

    refused = ensure(**args)
    assert refused['failed'] is True
    assert refused['msg'].startswith('build: ')
    assert 'build=never' in refused['msg'] and 'build=overwrite' in refused['msg']
    assert 'already' in refused['libvirt_error']
    assert pools.lookup(name) is None, 'the failed run left the pool defined'
    assert not os.path.exists(target), 'the failed run left the target directory'
    assert [step['action'] for step in refused['rolled_back']] == ['build', 'define']
    blkid = subprocess.run(['blkid', '-o', 'value', '-s', 'TYPE', device], capture_output=True, text=True, check=False)
    assert blkid.stdout.strip() == 'ext4'

    os.mkdir(target)  # build=never: the mount point must exist
    kept = ensure(build='never', **args)
    assert actions(kept) == ['define', 'start', 'autostart']
    assert ensure(build='never', **args)['changed'] is False


def test_fs_pool_builds_a_filesystem_on_an_empty_device(pools, workdir, loop_device):
    name = pools.new()
    device = loop_device()
    args = dict(name=name, type='fs', target=os.path.join(workdir, 'mnt'),
                source={'device': [device], 'format': 'ext4'})
    made = ensure(**args)
    assert actions(made) == ['define', 'build', 'start', 'autostart']
    blkid = subprocess.run(['blkid', '-o', 'value', '-s', 'TYPE', device], capture_output=True, text=True, check=False)
    assert blkid.stdout.strip() == 'ext4'
    assert os.path.ismount(os.path.join(workdir, 'mnt'))
    assert ensure(**args)['changed'] is False


def test_a_failure_late_in_the_plan_rolls_back_everything(pools, workdir):
    name = pools.new()
    target = os.path.join(workdir, 'pool')
    failed = ensure(env={'STORAGEPOOLS_FAIL_AT': 'autostart'}, name=name, type='dir', target=target)
    assert failed['failed'] is True
    assert [step['action'] for step in failed['rolled_back']] == ['start', 'build', 'define']
    assert pools.lookup(name) is None
    assert not os.path.exists(target)


def test_a_failed_redefinition_restores_the_old_one(conn, pools, workdir):
    name = pools.new()
    args = dict(name=name, type='dir', target=workdir, permissions={'mode': '0755'}, autostart=False)
    ensure(**args)
    before = pool_xml.canonical_string(defined_xml(pools, name))
    args.update(autostart=True, permissions={'mode': '0700'})
    failed = ensure(env={'STORAGEPOOLS_FAIL_AT': 'autostart'}, **args)
    assert failed['failed'] is True
    assert [step['action'] for step in failed['rolled_back']] == ['redefine']
    assert pool_xml.canonical_string(defined_xml(pools, name)) == before
    assert '<mode>0755</mode>' in before


def test_absent_undefines_and_keeps_the_data(pools, workdir):
    name = pools.new()
    target = os.path.join(workdir, 'pool')
    ensure(name=name, type='dir', target=target)
    with open(os.path.join(target, 'volume.img'), 'w') as handle:
        handle.write('guest data')
    check = ensure(check=True, name=name, state='absent')
    assert actions(check) == ['stop', 'undefine'] and pools.lookup(name) is not None
    gone = ensure(name=name, state='absent')
    assert actions(gone) == ['stop', 'undefine'] and gone['pool'] is None
    assert pools.lookup(name) is None
    assert os.path.exists(os.path.join(target, 'volume.img'))
    assert ensure(name=name, state='absent')['changed'] is False


def test_absent_with_delete_data_removes_volumes_and_target(conn, pools, workdir):
    name = pools.new()
    target = os.path.join(workdir, 'pool')
    ensure(name=name, type='dir', target=target)
    pools.lookup(name).createXML(
        "<volume><name>v.img</name><capacity>1048576</capacity><target><format type='raw'/></target></volume>", 0)
    gone = ensure(name=name, state='absent', delete_data=True)
    assert actions(gone) == ['delete_volumes', 'stop', 'delete', 'undefine']
    assert pools.lookup(name) is None
    assert not os.path.exists(target)


def test_xml_option_converges_like_the_structured_options(pools, workdir):
    name = pools.new()
    xml = "<pool type='dir'><name>%s</name><target><path>%s</path></target></pool>" % (name, workdir)
    assert ensure(name=name, xml=xml)['changed'] is True
    assert ensure(name=name, xml=xml)['changed'] is False
    assert ensure(name=name, type='dir', target=workdir)['changed'] is False


def test_a_pools_type_cannot_change(pools, workdir, loop_device):
    name = pools.new()
    ensure(name=name, type='dir', target=workdir)
    changed = ensure(name=name, type='fs', target=workdir, source={'device': [loop_device()]})
    assert changed['failed'] is True and changed['msg'].startswith('type: ')


# -- bad input: a clear message naming the option, nothing left defined --------

def assert_refused(result, prefix, pools, name):
    assert result['failed'] is True, result
    assert result['msg'].startswith(prefix), result['msg']
    assert pools.lookup(name) is None, 'a failed run left pool %s defined' % name


def test_relative_target_is_refused(pools):
    name = pools.new()
    assert_refused(ensure(name=name, type='dir', target='relative/dir'), 'target: ', pools, name)


def test_unknown_type_is_refused(pools):
    name = pools.new()
    result = ensure(name=name, type='bogus', target='/srv/x')
    assert result['failed'] is True and 'type' in result['msg'] and 'bogus' in result['msg']
    assert pools.lookup(name) is None


def test_malformed_xml_is_refused(pools):
    name = pools.new()
    assert_refused(ensure(name=name, xml='<pool type="dir"><name>%s</name>' % name), 'xml: ', pools, name)


def test_unknown_type_inside_xml_is_refused(pools):
    name = pools.new()
    xml = "<pool type='bogus'><name>%s</name><target><path>/srv/x</path></target></pool>" % name
    assert_refused(ensure(name=name, xml=xml), 'xml: type: ', pools, name)


def test_name_mismatch_between_name_and_xml_is_refused(pools, workdir):
    name, other = pools.new(), pools.new()
    xml = "<pool type='dir'><name>%s</name><target><path>%s</path></target></pool>" % (other, workdir)
    result = ensure(name=name, xml=xml)
    assert_refused(result, 'xml: ', pools, name)
    assert pools.lookup(other) is None
    assert name in result['msg'] and other in result['msg']


def test_two_pools_on_one_target_are_refused_in_check_mode_too(pools, workdir):
    first, second = pools.new(), pools.new()
    ensure(name=first, type='dir', target=workdir)
    for check in (True, False):
        result = ensure(check=check, name=second, type='dir', target=workdir + '/')
        assert_refused(result, 'target: ', pools, second)
        assert first in result['msg']


def test_unreachable_uri_is_refused(pools, workdir):
    name = pools.new()
    result = ensure(name=name, type='dir', target=workdir, uri='qemu+unix:///system?socket=/nonexistent/sock')
    assert_refused(result, 'uri: ', pools, name)
    assert result['libvirt_error']


def test_building_an_fs_pool_needs_a_filesystem_type(pools, workdir, loop_device):
    name = pools.new()
    args = dict(name=name, type='fs', target=os.path.join(workdir, 'mnt'), source={'device': [loop_device()]})
    for check in (True, False):
        assert_refused(ensure(check=check, **args), 'source.format: ', pools, name)


def test_build_failure_other_than_existing_data_names_the_option(pools, workdir):
    name = pools.new()
    result = ensure(name=name, type='fs', target=os.path.join(workdir, 'mnt'),
                    source={'device': [os.path.join(workdir, 'no-such-device')], 'format': 'ext4'})
    assert_refused(result, 'build: ', pools, name)
    assert result['libvirt_error']


def test_start_failure_rolls_back_the_definition(pools, workdir):
    name = pools.new()
    result = ensure(name=name, type='dir', target=os.path.join(workdir, 'missing'), build='never')
    assert_refused(result, 'target: ', pools, name)
    assert [step['action'] for step in result['rolled_back']] == ['define']


@pytest.mark.parametrize('state', ['active', 'absent'])
@pytest.mark.parametrize('char', ['\x01', '\x00'])
def test_a_pool_name_with_a_control_character_is_refused_without_a_traceback(pools, workdir, state, char):
    name = pools.new()
    hostile = name + char + 'x'
    result = ensure(name=hostile, type='dir', target=os.path.join(workdir, 'p'), state=state)
    assert result['failed'] is True and result['msg'].startswith('name: ') and 'control character' in result['msg']
    assert pools.lookup(name) is None and not os.path.exists(os.path.join(workdir, 'p'))


@pytest.mark.parametrize('option, source', [
    ('target', None),
    ('source.host', {'name': 'mon\x1b[2J', 'port': 6789}),
    ('source.auth.secret_usage', 'usage\x07'),
])
def test_control_characters_anywhere_in_the_definition_are_refused_naming_the_option(pools, workdir, option,
                                                                                     source):
    name = pools.new()
    args = dict(name=name, type='rbd', source={'name': 'vms', 'host': [{'name': 'mon', 'port': 6789}],
                                               'auth': {'username': 'nova', 'secret_usage': 'u'}})
    if option == 'target':
        args = dict(name=name, type='dir', target=os.path.join(workdir, 'p\x01'))
    elif option == 'source.host':
        args['source']['host'] = [source]
    else:
        args['source']['auth']['secret_usage'] = source
    assert_refused(ensure(**args), option + ': ', pools, name)


@pytest.mark.parametrize('key', ['key', 'KEY'])
def test_config_opts_with_the_key_are_refused(pools, key):
    """libvirt would keep the key in the pool XML, which the read-only socket gives anyone."""
    name = pools.new()
    args = dict(name=name, type='rbd', source={'name': 'vms', 'host': [{'name': '192.0.2.10', 'port': 6789}],
                                               'auth': {'username': 'nova', 'secret_usage': 'u'},
                                               'config_opts': {key: 'AQBfakekeyfakekeyfakekeyfakekeyfakek=='}})
    for check in (True, False):
        result = ensure(check=check, **args)
        assert_refused(result, 'source.config_opts: ', pools, name)
        assert 'AQBfake' not in str(result)
    xml = ("<pool type='rbd' xmlns:rbd='http://libvirt.org/schemas/storagepool/rbd/1.0'><name>%s</name><source>"
           "<host name='192.0.2.10' port='6789'/><name>vms</name></source><rbd:config_opts>"
           "<rbd:option name='key' value='AQBfakekey=='/></rbd:config_opts></pool>" % name)
    assert_refused(ensure(name=name, xml=xml), 'xml: source.config_opts: ', pools, name)


@pytest.mark.parametrize('fragment, option', [
    ("<source><host name='m' port='six'/><name>vms</name></source>", 'xml: source.host: '),
    ("<target><path>/srv/x</path><permissions><owner>nova</owner></permissions></target>", 'xml: permissions.owner: '),
])
def test_non_numeric_numbers_in_an_xml_document_are_refused_naming_them(pools, fragment, option):
    name = pools.new()
    pool_type = 'rbd' if 'host' in fragment else 'dir'
    xml = "<pool type='%s'><name>%s</name>%s</pool>" % (pool_type, name, fragment)
    assert_refused(ensure(name=name, xml=xml), option, pools, name)
