# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A fake legacy Nova compute host on the real libvirtd, laid out as Nova lays one out.

``<root>/instances/_base/<sha1>`` raw bases, ``<root>/instances/<uuid>/``
with a qcow2 ``disk`` overlay (guest data written into it), a raw
``disk.local``, a raw ``disk.config``, ``disk.info``, and a defined,
shut-off OS-less domain per instance whose XML is what libvirt makes of a
Nova-like definition (PCI addresses assigned by libvirt).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import tempfile
import uuid

import libvirt

MiB = 1024 * 1024

DOMAIN = """<domain type='qemu'>
  <name>{name}</name>
  <uuid>{uuid}</uuid>
  <memory unit='KiB'>65536</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model></cpu>
  <devices>
{disks}
    <controller type='usb' model='none'/>
    <memballoon model='virtio'/>
  </devices>
</domain>"""

DISK = """    <disk type='file' device='{device}'>
      <driver name='qemu' type='{format}' cache='none'/>
      <source file='{path}'/>
      <target dev='{dev}' bus='{bus}'/>{extra}
    </disk>"""


def run(*argv):
    subprocess.run(argv, check=True, capture_output=True)


def guest_view_sha256(path, image_format):
    """What the guest sees (overlay + base), as a checksum: qemu-img convert with explicit formats."""
    with tempfile.TemporaryDirectory(dir='/var/tmp') as scratch:
        view = os.path.join(scratch, 'view.raw')
        run('qemu-img', 'convert', '-f', image_format, '-O', 'raw', path, view)
        digest = hashlib.sha256()
        with open(view, 'rb') as handle:
            for block in iter(lambda: handle.read(MiB), b''):
                digest.update(block)
    return digest.hexdigest()


def strip_backing_format(path):
    """Make an overlay as qemu before 6.1 wrote them: no backing format in the header.

    (qemu 7 refuses to create one, so the backing-format extension is renamed
    to a type qemu ignores.)
    """
    with open(path, 'r+b') as handle:
        header = handle.read(4096)
        at = header.index(struct.pack('>I', 0xE2792ACA))
        handle.seek(at)
        handle.write(struct.pack('>I', 0x6E6F6E65))


class NovaHost:
    def __init__(self, conn, root, name_prefix, base_image_id='image-1'):
        """``base_image_id``: the image whose base every instance backs onto; a test importing bases into
        the test run's shared Ceph pool gives one of its own, so base names never collide there."""
        self.conn = conn
        self.root = root
        self.instances = os.path.join(root, 'instances')
        self.base_dir = os.path.join(self.instances, '_base')
        os.makedirs(self.base_dir, mode=0o755)
        for path in (root, self.instances, self.base_dir):
            os.chmod(path, 0o755)
        self.prefix = name_prefix
        self.domain_uuids = []
        self.nova_conf = os.path.join(root, 'nova.conf')
        with open(self.nova_conf, 'w') as handle:
            handle.write('[DEFAULT]\ninstances_path = %s\n[libvirt]\nimages_type = qcow2\n' % self.instances)
        self.base = self.make_base(base_image_id)

    def make_base(self, image_id, size=16 * MiB):
        path = os.path.join(self.base_dir, hashlib.sha1(image_id.encode()).hexdigest())
        with open(path, 'wb') as handle:
            handle.truncate(size)
            handle.write(b'BASE' * 1024)
            handle.seek(size // 2)
            handle.write(os.urandom(MiB))
        return path

    def instance(self, raw_local=b'', config=True, base=None, backing_format='raw', extra_xml=''):
        """Make one instance (files + shut-off domain); returns its uuid."""
        instance_uuid = str(uuid.uuid4())
        directory = os.path.join(self.instances, instance_uuid)
        os.mkdir(directory)
        os.chmod(directory, 0o755)
        disk = os.path.join(directory, 'disk')
        base = base or self.base
        run('qemu-img', 'create', '-q', '-f', 'qcow2', '-b', base, '-F', backing_format or 'raw', disk, '32M')
        if backing_format is None:
            strip_backing_format(disk)
        run('qemu-io', '-f', 'qcow2', '-c', 'write -P 0x5a 1M 1M', disk)
        local = os.path.join(directory, 'disk.local')
        with open(local, 'wb') as handle:
            handle.truncate(8 * MiB)
            handle.write(raw_local or os.urandom(64 * 1024))
        disks = [('disk', 'qcow2', 'vda', 'virtio', 'disk'), ('disk.local', 'raw', 'vdb', 'virtio', 'disk')]
        info = {disk: 'qcow2', local: 'raw'}
        if config:
            path = os.path.join(directory, 'disk.config')
            with open(path, 'wb') as handle:
                handle.write(os.urandom(512 * 1024))
            disks.append(('disk.config', 'raw', 'hda', 'ide', 'cdrom'))
            info[path] = 'raw'
        with open(os.path.join(directory, 'disk.info'), 'w') as handle:
            handle.write(json.dumps(info))
        with open(os.path.join(directory, 'console.log'), 'w'):
            pass
        xml = DOMAIN.format(name='%s-%s' % (self.prefix, instance_uuid[:8]), uuid=instance_uuid, disks='\n'.join(
            DISK.format(device=device, format=fmt, path=os.path.join(directory, name), dev=dev, bus=bus,
                        extra=extra_xml if name == 'disk' else '')
            for name, fmt, dev, bus, device in disks))
        self.conn.defineXML(xml)
        self.domain_uuids.append(instance_uuid)
        return instance_uuid

    def disk_paths(self, instance_uuid):
        directory = os.path.join(self.instances, instance_uuid)
        return {name: os.path.join(directory, name) for name in ('disk', 'disk.local', 'disk.config')
                if os.path.lexists(os.path.join(directory, name))}

    def checksums(self, instance_uuid):
        """Guest-view checksums of every disk, through the legacy paths."""
        formats = {'disk': 'qcow2', 'disk.local': 'raw', 'disk.config': 'raw'}
        return {name: guest_view_sha256(path, formats[name]) for name, path in self.disk_paths(instance_uuid).items()}

    def cleanup(self):
        conn = libvirt.open('qemu:///system')  # afresh: a test may have restarted libvirtd
        try:
            for uuid_string in self.domain_uuids:
                try:
                    domain = conn.lookupByUUIDString(uuid_string)
                except libvirt.libvirtError:
                    continue  # already gone
                if domain.isActive():
                    domain.destroy()
                domain.undefine()
        finally:
            conn.close()
