# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A Nova compute host's legacy layout (see shared NOVA.md): instances, their disks and formats.

Formats come from two authorities that must agree: Nova's ``disk.info``
and the domain's ``<driver type>``; nothing is probed. A qcow2 disk's
container header (written by qemu, not the guest) is read for its backing
file, which must be a file of ``<instances_path>/_base``. A raw disk's
content is the guest's and is never read.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import stat
import uuid as uuidlib

from ansible_collections.storagepools.libvirt.plugins.module_utils import image_inspect
from ansible_collections.storagepools.libvirt.plugins.module_utils.errors import StoragePoolsError

DISK_INFO = 'disk.info'
BASE_DIR = '_base'
DISK_NAME_RE = re.compile(r'^disk(\.(local|swap|config|eph[0-9]+))?$')


class Skip(Exception):
    """An instance this run leaves alone, with the reason an operator reads."""


def is_uuid(name):
    try:
        return str(uuidlib.UUID(name)) == name.lower()
    except ValueError:
        return False


def list_instances(instances_path):
    """Instance directories (named by uuid) under ``instances_path``."""
    try:
        names = sorted(os.listdir(instances_path))
    except OSError as exc:
        raise StoragePoolsError('instances_path: cannot list %s: %s' % (instances_path, exc.strerror))
    return [name for name in names if is_uuid(name) and os.path.isdir(os.path.join(instances_path, name))]


def read_disk_info(directory):
    """Nova's disk.info of an instance directory: {path: format}; {} when there is none."""
    path = os.path.join(directory, DISK_INFO)
    try:
        with open(path) as handle:
            content = handle.read()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise Skip('disk.info cannot be read: %s' % exc.strerror)
    try:
        info = json.loads(content) if content.strip() else {}
    except ValueError:
        raise Skip('disk.info is not JSON; Nova would regenerate it by probing, refusing to guess')
    if not isinstance(info, dict):
        raise Skip('disk.info is not a JSON object')
    return info


class NovaConf:
    """The few nova.conf settings adoption depends on (missing file: Nova's defaults)."""

    MAX_SIZE = 4 * 1024 * 1024  # a nova.conf is a few hundred KiB at most; bounds the read

    def __init__(self, path):
        self.path = path
        parser = configparser.RawConfigParser(strict=False, interpolation=None)
        self.found = bool(path) and os.path.exists(path)
        if self.found:
            try:
                parser.read_string(self._read(path), source=path)
            except configparser.Error as exc:
                raise StoragePoolsError('nova_conf: %s cannot be parsed: %s' % (path, exc))
        self.parser = parser

    @classmethod
    def _read(cls, path):
        """The text of a regular file of bounded size (never blocks on a FIFO or reads a device)."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
        except OSError as exc:
            raise StoragePoolsError('nova_conf: cannot open %s: %s' % (path, exc.strerror))
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise StoragePoolsError('nova_conf: %s is not a regular file' % path)
            data = b''
            while len(data) <= cls.MAX_SIZE:
                chunk = os.read(fd, cls.MAX_SIZE + 1 - len(data))
                if not chunk:
                    break
                data += chunk
        except OSError as exc:
            raise StoragePoolsError('nova_conf: cannot read %s: %s' % (path, exc.strerror))
        finally:
            os.close(fd)
        if len(data) > cls.MAX_SIZE:
            raise StoragePoolsError('nova_conf: %s is larger than %d MiB; that is no nova.conf'
                                    % (path, cls.MAX_SIZE >> 20))
        try:
            return data.decode('utf-8')
        except UnicodeDecodeError as exc:
            line = data[:exc.start].count(b'\n') + 1
            raise StoragePoolsError('nova_conf: %s is not UTF-8 text (line %d, byte %d); Nova reads it as UTF-8'
                                    % (path, line, exc.start))

    def get(self, section, key, default=None):
        if self.parser.has_option(section, key):
            return self.parser.get(section, key).strip()
        return default

    @property
    def force_raw_images(self):
        return self.get('DEFAULT', 'force_raw_images', 'true').lower() in ('1', 'true', 'yes', 'on')

    @property
    def remote_filesystem_transport(self):
        return self.get('libvirt', 'remote_filesystem_transport', 'ssh').lower()


class LegacyDisk:
    def __init__(self, name, target, legacy_path, disk_format, backing=None, backing_format=None,
                 needs_backing_format=False, moved=False):
        self.moved = moved  # a previous run already put the data in the pool (the path is our link)
        self.name = name
        self.target = target
        self.legacy_path = legacy_path
        self.format = disk_format
        self.backing = backing
        self.backing_format = backing_format
        self.needs_backing_format = needs_backing_format  # the header lacks it: rebase -u -F


def legacy_disks(instance_uuid, directory, document, instances_path, nova_conf, pool_dir):
    """The instance's legacy file disks (in ``directory``), formats checked; raises Skip.

    A disk whose legacy path is already the link to its pool volume (a run
    that stopped before redefining the domain) is returned with ``moved``.
    """
    disk_info = read_disk_info(directory)
    base_dir = os.path.realpath(os.path.join(instances_path, BASE_DIR))
    disks = []
    for disk in document.disks():
        path = disk.source_file
        if not path or os.path.dirname(path) != directory:
            continue
        name = os.path.basename(path)
        if not DISK_NAME_RE.match(name):
            raise Skip('disk %s (%s) is not a Nova disk name this version adopts' % (name, disk.target))
        driver = disk.driver_format
        if driver is None:
            raise Skip('disk %s has no <driver type>; its format is not recorded anywhere' % name)
        recorded = disk_info.get(path)
        if recorded is None:
            raise Skip('disk.info has no entry for %s; its format would have to be probed' % path)
        if recorded != driver:
            raise Skip('disk %s: disk.info says %s, the domain\'s <driver type> says %s' % (name, recorded, driver))
        if driver not in ('raw', 'qcow2'):
            raise Skip('disk %s is %s; this version adopts raw and qcow2 disks' % (name, driver))
        data_path, moved = path, False
        if os.path.islink(path):
            data_path = os.readlink(path)
            if data_path != os.path.join(pool_dir, '%s_%s' % (instance_uuid, name)) or not os.path.isfile(data_path):
                raise Skip('disk %s is a link to %s, not to its pool volume' % (path, data_path))
            moved = True
        elif not os.path.isfile(path):
            raise Skip('disk %s is not a regular file' % path)
        if driver == 'raw':  # guest data: never read, never refused for its content
            disks.append(LegacyDisk(name, disk.target, path, 'raw', moved=moved))
            continue
        try:
            _size, backing, backing_format = image_inspect.read_qcow2_overlay(data_path)
        except image_inspect.ImageRefused as exc:
            raise Skip('disk %s is recorded as qcow2 but %s' % (name, exc.msg.split(': ', 1)[-1]))
        needs_backing_format = False
        if backing:
            backing = os.path.normpath(backing if os.path.isabs(backing) else os.path.join(directory, backing))
            if os.path.dirname(os.path.realpath(backing)) != base_dir:
                raise Skip('disk %s backs onto %s, outside %s' % (name, backing, base_dir))
            if not os.path.isfile(backing):
                raise Skip('disk %s backs onto %s, which is missing' % (name, backing))
            if not backing_format:
                if not nova_conf.force_raw_images:
                    raise Skip('disk %s: its header has no backing format and nova.conf sets '
                               'force_raw_images=False, so the base format is unknown' % name)
                backing_format, needs_backing_format = 'raw', True
            if backing_format not in ('raw', 'qcow2'):
                raise Skip('disk %s backs onto a %s base' % (name, backing_format))
        disks.append(LegacyDisk(name, disk.target, path, 'qcow2', backing, backing_format, needs_backing_format,
                                moved=moved))
    return disks
