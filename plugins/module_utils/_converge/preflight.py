# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The transition preflight (transition_preflight): what a host has and what the transition would do there,
turned into risks, each {severity, message, fix, needed, available}.

Everything here reads; nothing writes. The host's facts (requirements, filesystems) are gathered without the
libvirt bindings, so a host lacking them is told which package to install; the plan is the adoption's own
check-mode plan (adoption.adopter_for, with the space each instance needs added up per destination instead of
refused per instance).
"""

from __future__ import annotations

import errno
import importlib.util
import os
import re
import shutil
import sys
from typing import Any, Dict, List, Optional

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import space as limits
from ansible_collections.storagepools.libvirt.plugins.module_utils._backends.file import XATTR_NAME
from ansible_collections.storagepools.libvirt.plugins.module_utils._converge.report import human_bytes
from ansible_collections.storagepools.libvirt.plugins.module_utils._core import command, requirements
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError

BLOCKING, WARNING, INFO = 'blocking', 'warning', 'info'
# Filesystems another host mounts too: Nova's shared instances_path (its own check for shared storage).
SHARED_FILESYSTEMS = frozenset(('nfs', 'nfs4', 'cifs', 'smb3', 'glusterfs', 'fuse.glusterfs', 'ceph', 'fuse.ceph-fuse',
                                'ocfs2', 'gfs2', 'lustre', 'gpfs', 'beegfs'))
VOLATILE_FILESYSTEMS = frozenset(('tmpfs', 'ramfs'))
QEMU_IMG_MINIMUM = (5, 0)
# os-release ID / ID_LIKE words -> ansible_facts.os_family, for the package names of requirements.py
FAMILY_WORDS = {'debian': 'Debian', 'ubuntu': 'Debian', 'rhel': 'RedHat', 'fedora': 'RedHat', 'centos': 'RedHat',
                'rocky': 'RedHat', 'almalinux': 'RedHat'}


def risk(severity: str, message: str, fix: Optional[str] = None, needed: Optional[int] = None,
         available: Optional[int] = None) -> Dict[str, Any]:
    return {'severity': severity, 'message': message, 'fix': fix, 'needed': needed, 'available': available}


# -- the host: its family, Python modules, programs ---------------------------------------------------------

def os_family(os_release: str = '/etc/os-release') -> Optional[str]:
    """Debian or RedHat (as ansible_facts.os_family says) from os-release's ID and ID_LIKE; None otherwise."""
    try:
        with open(os_release, encoding='utf-8', errors='replace') as handle:
            text = handle.read(65536)
    except OSError:
        return None
    words = []
    for key in ('ID', 'ID_LIKE'):
        found = re.search(r'^%s=(.*)$' % key, text, re.M)
        if found:
            words += found.group(1).strip().strip('"\'').split()
    for word in words:
        if word in FAMILY_WORDS:
            return FAMILY_WORDS[word]
    return None


def package_hint(entry: Dict[str, Any], family: Optional[str]) -> str:
    """The package to install for a requirements.py entry: this host's family's, or every family's."""
    if family in requirements.FAMILIES:
        return '%s (%s family)' % (entry[family], family)
    hints = ['%s: %s' % (name, entry[name]) for name in requirements.FAMILIES]
    if entry.get('pip'):
        hints.append('pip: %s' % entry['pip'])
    return 'the package (%s)' % '; '.join(hints)


def python_requirements(needed: List[str], found: Dict[str, bool], family: Optional[str]) -> List[Dict[str, Any]]:
    """A blocking risk per Python module of ``needed`` that ``found`` ({name: importable}) lacks."""
    risks = []
    for name in needed:
        if found.get(name):
            continue
        entry = requirements.PYTHON[name]
        risks.append(risk(
            BLOCKING, 'ansible_python_interpreter: %s on this host lacks %s (import %s), needed for %s'
            % (sys.executable, entry['what'], name, entry['needed']),
            'install %s on the host, or set ansible_python_interpreter to a Python that has it'
            % package_hint(entry, family)))
    return risks


def importable(name: str) -> bool:
    """Whether this interpreter finds Python module ``name`` (found, not imported)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def qemu_img_version() -> Optional[tuple]:
    """qemu-img's version as a tuple of ints, or None when it is not installed or says none."""
    if shutil.which('qemu-img') is None:
        return None
    try:
        proc = command.run(['qemu-img', '--version'], 'qemu-img', timeout=command.TIMEOUT_FLOOR)
    except (OSError, StoragePoolsError):
        return None
    found = re.search(r'version (\d+)\.(\d+)(?:\.(\d+))?', proc.stdout or '')
    return tuple(int(part) for part in found.groups() if part is not None) if found else None


def device_mapper() -> bool:
    """Whether the kernel's device-mapper is there (the control node LVM opens to activate a volume)."""
    return os.path.exists('/dev/mapper/control')


def program_requirements(backend: str, qemu_img: Optional[tuple], lvm_found: bool, device_mapper: bool,
                         family: Optional[str]) -> List[Dict[str, Any]]:
    risks = []
    entry = requirements.PROGRAMS['qemu-img']
    if qemu_img is None:
        risks.append(risk(BLOCKING, 'qemu-img is not installed (or says no version); the transition uses it for '
                                    'copies, overlays and imports', 'install %s' % package_hint(entry, family)))
    elif qemu_img < QEMU_IMG_MINIMUM:
        risks.append(risk(BLOCKING, 'qemu-img %s is older than %s' % ('.'.join(map(str, qemu_img)), entry['what']),
                          'upgrade %s' % package_hint(entry, family)))
    if backend == 'logical':
        lvm = requirements.PROGRAMS['lvm']
        if not lvm_found:
            risks.append(risk(BLOCKING, 'the LVM tools (lvm) are not installed; the logical backend runs them',
                              'install %s' % package_hint(lvm, family)))
        if not device_mapper:
            risks.append(risk(BLOCKING, 'device-mapper is not available (/dev/mapper/control is missing): no logical '
                                        'volume can be activated on this host',
                              'load the dm_mod kernel module (modprobe dm_mod; it comes with %s)'
                              % package_hint(lvm, family)))
    return risks


# -- filesystems --------------------------------------------------------------------------------------------

def _unescape(field: str) -> str:
    return re.sub(r'\\([0-7]{3})', lambda match: chr(int(match.group(1), 8)), field)


def mounts(mountinfo: str = '/proc/self/mountinfo') -> Dict[tuple, Dict[str, str]]:
    """{(major, minor): {mountpoint, fstype, source}} of this host's mounts (the last mount of a device wins)."""
    found = {}
    try:
        with open(mountinfo, encoding='utf-8', errors='replace') as handle:
            lines = handle.read().splitlines()
    except OSError:
        return found
    for line in lines:
        fields = line.split()
        if '-' not in fields or len(fields) < 5:
            continue
        rest = fields[fields.index('-') + 1:]
        major, colon, minor = fields[2].partition(':')
        if not (colon and major.isdigit() and minor.isdigit()) or len(rest) < 2:
            continue
        found[(int(major), int(minor))] = {'mountpoint': _unescape(fields[4]), 'fstype': rest[0],
                                           'source': _unescape(rest[1])}
    return found


def xattr_support(path: str) -> Optional[bool]:
    """Whether the filesystem of ``path`` keeps trusted.* extended attributes (the records of file pools): a
    read of an attribute nothing has; None when it cannot be told."""
    try:
        os.getxattr(path, XATTR_NAME + '.preflight', follow_symlinks=False)
        return True
    except OSError as exc:
        if exc.errno == errno.ENODATA:
            return True
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return False
        return None


def filesystem(path: str, known: Optional[Dict[tuple, Dict[str, str]]] = None) -> Dict[str, Any]:
    """What ``path`` (or, not made yet, the directory it would be made in) is on: its device, mount, type,
    free bytes and xattr support."""
    where = limits.existing_ancestor(path)
    info = os.stat(where)
    mount = (known if known is not None else mounts()).get((os.major(info.st_dev), os.minor(info.st_dev)), {})
    fstype = mount.get('fstype')
    return {'path': path, 'exists': where == os.path.abspath(path), 'device': info.st_dev,
            'mountpoint': mount.get('mountpoint'), 'fstype': fstype, 'free': limits.free_in_directory(path),
            'shared': fstype in SHARED_FILESYSTEMS, 'volatile': fstype in VOLATILE_FILESYSTEMS,
            'xattr': xattr_support(where)}


def filesystem_risks(instances: Dict[str, Any], disks: Optional[Dict[str, Any]], copied: int) -> List[Dict[str, Any]]:
    """The guardrails of where the disks go (a file pool's target) against instances_path."""
    risks = []
    if instances['shared']:
        risks.append(risk(WARNING, 'instances_path is on a shared filesystem (%s at %s): every compute host that '
                                   'mounts it sees these instance directories, and Nova treats it as shared storage'
                          % (instances['fstype'], instances['mountpoint']),
                          'transition the hosts sharing it one at a time, each with the same disks_pool '
                          'definition, and keep its disks pool on the same share'))
    if disks is None:
        return risks
    if disks['device'] != instances['device']:
        risks.append(risk(WARNING, 'the disks pool target %s is on another filesystem (%s) than instances_path (%s): '
                                   'every disk is copied (%s now) instead of hard-linked, and Nova\'s disk accounting '
                                   '(DISK_GB, from instances_path\'s filesystem) no longer sees the space they take'
                          % (disks['path'], disks['mountpoint'] or '?', instances['mountpoint'] or '?',
                             human_bytes(copied)),
                          'disks_path: a directory on instances_path\'s filesystem (the default, beside instances_path)',
                          needed=copied))
    if disks['volatile']:
        risks.append(risk(WARNING, 'the disks pool target %s is on %s: its volumes, the instances\' disks, are lost '
                                   'at the next reboot' % (disks['path'], disks['fstype']),
                          'disks_path: a directory on a persistent filesystem'))
    if disks['xattr'] is False:
        risks.append(risk(BLOCKING, 'the filesystem of the disks pool target %s (%s) keeps no trusted.* extended '
                                    'attributes, where each volume\'s record goes' % (disks['path'], disks['fstype']),
                          'disks_path: a directory on a filesystem with extended attributes (ext4, xfs, btrfs, tmpfs)'))
    return risks


# -- the plan -----------------------------------------------------------------------------------------------

def space_risks(needs: List[Dict[str, Any]]) -> tuple:
    """(per destination {where, needed, available, fits}, the blocking risks of those that do not fit):
    ``needs`` are the instances' recorded needs (InstanceWorkflow.space_needs), added up per destination."""
    destinations: Dict[str, Dict[str, Any]] = {}
    for need in needs:
        entry = destinations.setdefault(need['where'], {'where': need['where'], 'needed': 0,
                                                        'available': need['available']})
        entry['needed'] += need['needed']
        entry['available'] = min(entry['available'], need['available'])
    risks = []
    for entry in destinations.values():
        entry['fits'] = limits.fits(entry['needed'], entry['available'])
        if not entry['fits']:
            risks.append(risk(BLOCKING, '%s needs %s (%d bytes) plus a margin of %s for the instances it receives, '
                                        'but has %s (%d bytes) available'
                              % (entry['where'], human_bytes(entry['needed']), entry['needed'],
                                 human_bytes(limits.margin_for(entry['needed'])), human_bytes(entry['available']),
                                 entry['available']),
                              'free space there, or disks_path: a directory on a filesystem with room, or exclude: the '
                              'instances that do not fit', needed=entry['needed'], available=entry['available']))
    return sorted(destinations.values(), key=lambda entry: entry['where']), risks


def plan_risks(instances: Dict[str, Dict[str, Any]], running: str) -> List[Dict[str, Any]]:
    """Running instances (what running= does with them) and instances whose plan fails."""
    risks = []
    skipped_running = sorted(uuid for uuid, outcome in instances.items()
                             if outcome.get('result') == 'skipped' and 'is running' in (outcome.get('reason') or ''))
    live = sorted(uuid for uuid, outcome in instances.items()
                  if any(disk.get('method') == 'live-copy' for disk in outcome.get('disks') or []))
    if skipped_running:
        risks.append(risk(WARNING, '%d instance(s) run (%s); running=skip leaves them on their legacy files'
                          % (len(skipped_running), ', '.join(skipped_running)),
                          'shut them off before the transition (or run it again once they are), or running=live '
                          '(a block copy while they run; file pools only)'))
    if live:
        risks.append(risk(INFO, '%d running instance(s) (%s) get a block copy while they run (running=live), then '
                                'pivot onto the pool volume' % (len(live), ', '.join(live))))
    for uuid, outcome in sorted(instances.items()):
        if outcome.get('result') == 'failed':
            risks.append(risk(BLOCKING, 'instance %s would fail: %s' % (uuid, outcome.get('reason')),
                              'remove the cause named, or exclude: the instance\'s uuid'))
    return risks


def nova_conf_risks(facts: Dict[str, Any], backend: str, force: bool) -> List[Dict[str, Any]]:
    """What nova.conf's settings change in the plan."""
    risks = []
    images_type = facts['images_type']
    expected = {'rbd': 'rbd', 'logical': 'lvm'}.get(backend)
    if expected is None and images_type in ('rbd', 'lvm', 'ploop'):
        risks.append(risk(WARNING, 'nova.conf sets [libvirt] images_type=%s: Nova keeps this host\'s disks there, '
                                   'not in files; a file disks pool receives only legacy files' % images_type,
                          'backend: %s (what this host\'s Nova uses)'
                          % {'rbd': 'rbd', 'lvm': 'logical'}.get(images_type, images_type)))
    elif expected is not None and images_type != expected:
        risks.append(risk(INFO, 'nova.conf has [libvirt] images_type=%s: the %s cutover has two runs; after the '
                                'first, set the reported nova_conf_settings (images_type=%s), restart nova-compute, '
                                'then run with finalize=true' % (images_type, backend, expected)))
    # without force the adoption itself refuses rsync (its message, naming force, is the plan's blocking risk)
    if expected is None and facts['remote_filesystem_transport'] == 'rsync' and force:
        risks.append(risk(WARNING, 'nova.conf sets [libvirt] remote_filesystem_transport=rsync and force=true: rsync '
                                   'skips symlinks, so a cold migration or resize of an adopted instance would lose '
                                   'its disks', 'set remote_filesystem_transport=ssh in nova.conf'))
    if not facts['force_raw_images']:
        risks.append(risk(INFO, 'nova.conf sets force_raw_images=false: _base may hold qcow2 images, which the '
                                'overlays keep as their backing files (the rbd and logical imports flatten them)'))
    return risks


def blocked(risks: List[Dict[str, Any]]) -> bool:
    return any(item['severity'] == BLOCKING for item in risks)
