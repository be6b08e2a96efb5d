# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""PoolPlanner: the plan of one virt_pool_ensure task from what libvirt said (ObservedPool over the pool
corpus, _xml/data/pools: documents as libvirt's docs write them and as libvirt writes them back), and
PoolConverger/PoolWrites on libvirt's in-process test driver (test:///default, a real driver)."""

from __future__ import annotations

import os
import uuid

import pytest

from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.pool import PoolPlanner, PoolWrites
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.connection import lookup_pool
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.pool import ObservedPool, PoolDefinition

CORPUS_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), '_xml', 'data', 'pools')
CORPUS = sorted(name[:-4] for name in os.listdir(CORPUS_DIR) if name.endswith('.xml') and not name.endswith('.out.xml'))


def corpus(name, suffix='.xml'):
    with open(os.path.join(CORPUS_DIR, name + suffix)) as handle:
        return PoolDefinition.from_xml(handle.read())


def observed(name, active=False, autostart=False):
    """The pool as libvirt reports it: its written-back document, defined (and running when active)."""
    definition = corpus(name, '.out.xml')
    return ObservedPool(definition, definition.copy() if active else None, autostart)


def planner(live, name=None, **kwargs):
    """A planner whose writes have no connection: planning must never write."""
    pool_name = name or (live.definition.name if live else 'new-pool')
    return PoolPlanner(pool_name, live, PoolWrites(None), **kwargs)


def actions(plan):
    return [step['action'] for step in plan.describe()]


def present(pool, wanted, state='inactive', autostart=False, build='never', on_drift='fail', restart=False):
    return pool.plan_present(wanted, state, autostart, build, on_drift, restart)


@pytest.mark.parametrize('name', CORPUS)
def test_a_corpus_document_against_libvirts_write_back_is_no_drift(name):
    pool = planner(observed(name))
    plan = present(pool, corpus(name))
    assert actions(plan) == [] and pool.drift is False and pool.warnings == []
    diff = pool.diff('inactive', False)
    assert diff['before'] == diff['after'] and diff['before'].startswith('# state: inactive, autostart: false\n')


@pytest.mark.parametrize('name', CORPUS)
def test_libvirts_own_dump_as_the_wanted_document_is_no_drift(name):
    pool = planner(observed(name, active=True, autostart=True))
    assert actions(present(pool, corpus(name, '.out.xml'), state='active', autostart=True)) == []
    assert pool.restart_required is False


def changed_netfs():
    wanted = corpus('netfs')
    wanted.source.hosts = [type(host)('other.example.com') for host in wanted.source.hosts]
    return wanted


def test_a_changed_field_is_drift_and_a_redefinition_keeping_the_uuid():
    live = observed('netfs')
    pool = planner(live)
    plan = present(pool, changed_netfs(), on_drift='redefine')
    assert actions(plan) == ['redefine'] and pool.drift is True
    redefined = PoolDefinition.from_xml(plan.steps[0].do.args[0])
    assert redefined.uuid == live.definition.uuid
    assert [host.name for host in redefined.source.hosts] == ['other.example.com']
    assert plan.steps[0].undo.args == (live.definition.to_xml(),)
    diff = pool.diff('inactive', False)
    changed = [line for line in live.definition.diff(pool.predicted('inactive')[0]).splitlines()
               if line[:1] in '+-' and not line.startswith(('+++', '---'))]
    assert changed == ['-    <host name="nfs.example.com"/>', '+    <host name="other.example.com"/>']
    assert 'other.example.com' in diff['after'] and 'other.example.com' not in diff['before']


def test_on_drift_fail_refuses_with_the_diff():
    with pytest.raises(StoragePoolsError) as raised:
        present(planner(observed('netfs')), changed_netfs(), on_drift='fail')
    error = raised.value
    assert error.msg.startswith("on_drift: pool 'corpus-netfs' differs from the task (on_drift=fail):\n")
    assert error.details['drift'] is True
    assert '+    <host name="other.example.com"/>' in error.details['drift_diff']


def test_on_drift_warn_leaves_the_pool_and_warns():
    pool = planner(observed('netfs'))
    assert actions(present(pool, changed_netfs(), on_drift='warn')) == []
    assert pool.drift is True and len(pool.warnings) == 1
    assert pool.warnings[0].startswith("pool 'corpus-netfs' differs from the task; left as it is (on_drift=warn):")
    assert pool.predicted('inactive')[0].source.hosts[0].name == 'nfs.example.com'


def test_a_type_change_and_another_uuid_are_refused():
    wanted = corpus('dir')
    wanted.type = 'fs'
    with pytest.raises(StoragePoolsError, match="^type: pool 'corpus-dir' is of type dir, the task wants fs"):
        present(planner(observed('dir')), wanted, on_drift='redefine')
    with pytest.raises(StoragePoolsError, match="^xml: the document's uuid"):
        present(planner(observed('dir')), corpus('dir').with_uuid(str(uuid.uuid4())))


def test_unset_permissions_are_libvirts_to_choose_not_drift():
    wanted = corpus('dir')
    wanted.permissions = None
    assert actions(present(planner(observed('dir')), wanted)) == []


@pytest.mark.parametrize('active, state, expected', [
    (False, 'active', ['start']),
    (True, 'inactive', ['stop']),
    (True, 'active', []),
    (True, 'present', []),
    (False, 'present', []),
])
def test_state_transitions(active, state, expected):
    pool = planner(observed('dir', active=active))
    assert actions(present(pool, corpus('dir'), state=state)) == expected
    assert pool.predicted(state)[1] == ('active' if state == 'active' or (state == 'present' and active)
                                        else 'inactive')


@pytest.mark.parametrize('before, after, expected', [(False, True, 'enable'), (True, False, 'disable')])
def test_autostart_transitions(before, after, expected):
    plan = present(planner(observed('dir', autostart=before)), corpus('dir'), autostart=after)
    assert [step.detail for step in plan.steps] == ["%s autostart of pool 'corpus-dir'" % expected]
    assert plan.steps[0].undo.args == (before,)


def test_a_running_pool_with_a_new_definition_waits_for_a_restart_or_is_restarted():
    waiting = planner(observed('netfs', active=True))
    assert actions(present(waiting, changed_netfs(), state='active', on_drift='redefine')) == ['redefine']
    assert waiting.restart_required is True
    restarted = planner(observed('netfs', active=True))
    assert actions(present(restarted, changed_netfs(), state='active', on_drift='redefine', restart=True)) == [
        'redefine', 'restart']
    assert restarted.restart_required is False


def test_a_new_pool_is_defined_built_started_and_autostarted_in_that_order(tmp_path):
    wanted = corpus('dir')
    wanted.target_path = str(tmp_path / 'missing')
    pool = planner(None, name='corpus-dir')
    plan = present(pool, wanted, state='active', autostart=True, build='no_overwrite')
    assert actions(plan) == ['define', 'build', 'start', 'autostart']
    build = plan.steps[1]
    assert build.detail == "build pool 'corpus-dir' (create the target directory)"
    assert build.cleanup_on_failure and build.undo.args == (str(tmp_path / 'missing'),)
    assert pool.predicted('active') == (wanted, 'active')
    diff = pool.diff('active', True)
    assert diff['before'] == '' and diff['after'].startswith('# state: active, autostart: true\n')


@pytest.mark.parametrize('name, build, expected, undone', [
    # A VG made from nothing is removed again; a device's filesystem or label is not.
    ('logical', 'no_overwrite', "build pool 'corpus-logical' (make its storage; no-overwrite)", True),
    ('logical', 'overwrite', "build pool 'corpus-logical' (make its storage; overwrite)", False),
    ('disk', 'overwrite', "build pool 'corpus-disk' (make its storage; overwrite)", False),
])
def test_what_a_build_makes_is_said(name, build, expected, undone):
    plan = present(planner(None, name='corpus-' + name), corpus(name), build=build)
    assert [step.detail for step in plan.steps] == ["define pool 'corpus-%s'" % name, expected]
    assert (plan.steps[1].undo is not None) is undone


def test_a_mount_point_is_removed_again_only_when_the_build_made_it(tmp_path):
    wanted = corpus('netfs')
    wanted.target_path = str(tmp_path)
    made = present(planner(None, name='corpus-netfs'), wanted, build='no_overwrite').steps[1]
    assert made.detail == "build pool 'corpus-netfs' (create the mount point)" and made.undo is None
    wanted.target_path = str(tmp_path / 'mnt')
    remote = present(planner(None, name='corpus-netfs', local=False), wanted, build='no_overwrite').steps[1]
    assert remote.undo is None  # another host's directory is not ours to look at
    local = present(planner(None, name='corpus-netfs'), wanted, build='no_overwrite').steps[1]
    os.mkdir(tmp_path / 'mnt')
    local.undo()
    assert not os.path.exists(tmp_path / 'mnt')
    local.undo()  # already gone: nothing to do


def test_no_build_for_build_never_or_a_type_without_one():
    assert actions(present(planner(None, name='corpus-dir'), corpus('dir'))) == ['define']
    assert actions(present(planner(None, name='corpus-rbd'), corpus('rbd'), build='no_overwrite')) == ['define']


def test_building_an_fs_pool_needs_a_named_filesystem():
    with pytest.raises(StoragePoolsError, match='^source.format: building an fs pool'):
        present(planner(None, name='corpus-fs'), corpus('fs'), build='no_overwrite')


def test_another_pool_on_the_target_or_device_is_refused_before_defining():
    others = [('corpus-dir', corpus('dir', '.out.xml')), ('corpus-logical', corpus('logical', '.out.xml'))]
    wanted = corpus('netfs')
    wanted.target_path = '/var/lib/libvirt/images/corpus-dir/'
    with pytest.raises(StoragePoolsError, match="^target: pool 'corpus-dir' already uses"):
        present(planner(None, name='mine', other_pools=lambda: others), wanted)
    wanted = corpus('logical')
    wanted.name = 'mine'
    with pytest.raises(StoragePoolsError, match="^source.device: pool 'corpus-logical' already uses /dev/sda2"):
        present(planner(None, name='mine', other_pools=lambda: others), wanted)
    # Its own definition is no conflict.
    assert actions(present(planner(None, name='corpus-dir', other_pools=lambda: others), corpus('dir'))) == [
        'define']


def test_an_rbd_pool_naming_a_missing_secret_is_refused():
    asked = []

    def has_secret(secret_uuid, usage):
        asked.append((secret_uuid, usage))
        return False

    with pytest.raises(StoragePoolsError, match='^source.auth.secret_uuid: libvirt has no ceph secret'):
        present(planner(None, name='corpus-rbd', has_secret=has_secret), corpus('rbd'))
    assert asked == [('2ec115d7-3a88-3ceb-bc12-0ac909a6fd87', None)]
    assert actions(present(planner(None, name='corpus-rbd', has_secret=lambda *args: True), corpus('rbd'))) == [
        'define']


@pytest.mark.parametrize('active, delete_data, expected', [
    (False, True, ['start', 'delete_volumes', 'stop', 'delete', 'undefine']),
    (True, True, ['delete_volumes', 'stop', 'delete', 'undefine']),
    (True, False, ['stop', 'undefine']),
    (False, False, ['undefine']),
])
def test_absent(active, delete_data, expected):
    live = observed('dir', active=active)
    plan = planner(live).plan_absent(delete_data)
    assert actions(plan) == expected
    assert plan.steps[-1].undo.args == (live.definition.to_xml(),)


def test_absent_without_a_pool_plans_nothing():
    pool = planner(None)
    assert not pool.plan_absent(True) and pool.predicted('absent') == (None, None)


# -- on libvirt's test driver: check mode plans what the real run does ------------------------------------

@pytest.fixture
def test_driver():
    libvirt = pytest.importorskip('libvirt')
    libvirt.registerErrorHandler(lambda context, error: None, None)
    conn = libvirt.open('test:///default')
    made = []
    yield conn, made
    for name in made:
        pool = lookup_pool(conn, name)
        if pool is None:
            continue
        if pool.isActive():
            pool.destroy()
        pool.undefine()
    conn.close()


def dir_pool(test_driver, tmp_path):
    conn, made = test_driver
    name = 'unit-%s' % uuid.uuid4().hex[:8]
    made.append(name)
    return conn, name, PoolDefinition.from_options(name, 'dir', str(tmp_path / name))


def on_test_driver(conn, name):
    """A planner over what the test driver says of pool ``name`` (its XMLDesc: the driver has no INACTIVE
    flag; the tests redefine only inactive pools, whose document is the defined one) and its writes."""
    pool = lookup_pool(conn, name)
    live = None
    if pool is not None:
        definition = PoolDefinition.from_xml(pool.XMLDesc(0))
        live = ObservedPool(definition, definition.copy() if pool.isActive() else None, bool(pool.autostart()))
    return PoolPlanner(name, live, PoolWrites(conn, pool))


def test_check_mode_is_the_plan_the_real_run_applies(test_driver, tmp_path):
    conn, name, wanted = dir_pool(test_driver, tmp_path)
    check = on_test_driver(conn, name)
    check_plan = present(check, wanted, state='active', autostart=True, build='no_overwrite')
    check_plan.apply(check_mode=True)
    assert lookup_pool(conn, name) is None, 'check mode defined the pool'

    real = on_test_driver(conn, name)
    plan = present(real, wanted, state='active', autostart=True, build='no_overwrite')
    assert plan.describe() == check_plan.describe() == [
        {'action': action, 'detail': detail} for action, detail in [
            ('define', "define pool '%s'" % name), ('build', "build pool '%s' (create the target directory)" % name),
            ('start', "start pool '%s'" % name), ('autostart', "enable autostart of pool '%s'" % name)]]
    plan.apply()
    pool = lookup_pool(conn, name)
    assert pool.isActive() and pool.autostart()

    assert actions(present(on_test_driver(conn, name), wanted, state='active', autostart=True)) == []
    present(on_test_driver(conn, name), wanted, state='inactive', autostart=False).apply()
    assert not pool.isActive() and not pool.autostart()


def test_a_redefinition_a_restart_and_absent_on_the_test_driver(test_driver, tmp_path):
    conn, name, wanted = dir_pool(test_driver, tmp_path)
    present(on_test_driver(conn, name), wanted, build='no_overwrite').apply()
    moved = PoolDefinition.from_options(name, 'dir', str(tmp_path / 'elsewhere'))
    redefined = on_test_driver(conn, name)
    present(redefined, moved, on_drift='redefine').apply()
    assert redefined.drift is True
    assert PoolDefinition.from_xml(lookup_pool(conn, name).XMLDesc(0)).target_path == str(tmp_path / 'elsewhere')

    lookup_pool(conn, name).create(0)
    restarted = on_test_driver(conn, name)
    restarted.live.running = wanted  # running the first definition, as a pool started before the redefinition
    present(restarted, moved, state='active', restart=True).apply()
    assert lookup_pool(conn, name).isActive()

    on_test_driver(conn, name).plan_absent(False).apply()
    test_driver[1].remove(name)
    assert lookup_pool(conn, name) is None


def test_a_failed_step_undoes_the_redefinition(test_driver, tmp_path):
    conn, name, wanted = dir_pool(test_driver, tmp_path)
    present(on_test_driver(conn, name), wanted, state='active', build='no_overwrite').apply()
    lookup_pool(conn, name).destroy()
    planned = on_test_driver(conn, name)
    plan = present(planned, PoolDefinition.from_options(name, 'dir', str(tmp_path / 'other')), state='active',
                   on_drift='redefine')
    assert actions(plan) == ['redefine', 'start']
    lookup_pool(conn, name).create(0)  # started behind the plan's back: its start step fails
    with pytest.raises(StoragePoolsError) as raised:
        plan.apply()
    assert raised.value.details['failed_action']['action'] == 'start'
    assert [step['action'] for step in raised.value.details['rolled_back']] == ['redefine']
    assert PoolDefinition.from_xml(lookup_pool(conn, name).XMLDesc(0)).target_path == wanted.target_path


def test_libvirts_refusal_of_a_second_pool_on_one_target_is_explained(test_driver, tmp_path):
    conn, name, wanted = dir_pool(test_driver, tmp_path)
    present(on_test_driver(conn, name), wanted).apply()
    twin = wanted.copy()
    twin.name = name + '-twin'
    writes = PoolWrites(conn)
    with pytest.raises(Exception) as raised:
        writes.define(twin.to_xml())
    option, message = writes.explain_define(raised.value)
    assert option == 'target' and 'two pools on one target are refused' in message
    assert writes.explain_build(raised.value) is None
