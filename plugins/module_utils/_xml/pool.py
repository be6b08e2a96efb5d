# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The libvirt storage pool document: model, validation and canonical form.

One class per XML object, ``parse_dom``/``format_dom`` symmetric (the style
of Nova's ``nova/virt/libvirt/config.py``). The canonical form is what two
pool documents are compared on: it drops what libvirt fills in by itself so
that only a real change counts as drift.
"""

from __future__ import annotations

import copy
import posixpath
import re

from ansible_collections.storagepools.libvirt.plugins.module_utils._core import names
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import OptionError
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml import tree as xml_tree
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.tree import etree

POOL_TYPES = ('dir', 'fs', 'netfs', 'logical', 'rbd', 'iscsi', 'zfs', 'disk')
RBD_NAMESPACE = 'http://libvirt.org/schemas/storagepool/rbd/1.0'
_RBD = '{%s}' % RBD_NAMESPACE

# What libvirt 9 writes as <source><format> when a definition has none
# (seen with `virsh pool-define` + `pool-dumpxml --inactive`).
DEFAULT_SOURCE_FORMAT = {'fs': 'auto', 'netfs': 'auto', 'logical': 'lvm2', 'disk': 'unknown'}

# Per type: which parts a definition cannot do without. Checked before libvirt
# sees the document so the message can name the option.
REQUIRED = {
    'dir': ('target',),
    'fs': ('source.device', 'target'),
    'netfs': ('source.host', 'source.dir', 'target'),
    'logical': (),
    'disk': ('source.device', 'target'),
    'iscsi': ('source.host', 'source.device', 'target'),
    'rbd': ('source.name', 'source.host'),
    'zfs': ('source.name',),
}

# A pool's build makes a filesystem, a VG or a partition table on a device
# only for these types; for the others it only creates the target directory.
DEVICE_BUILD_TYPES = ('fs', 'logical', 'disk')


class PoolSpecError(OptionError):
    """A pool definition that cannot be right, naming the option at fault."""


def normalize_path(path):
    """A path as libvirt stores it: no duplicate or trailing slashes."""
    if path is None:
        return None
    normalized = re.sub('/+', '/', path)
    if len(normalized) > 1:
        normalized = normalized.rstrip('/')
    return normalized


def normalize_mode(mode):
    """'755', '0755', 0o755 -> '0755'; raise ValueError for anything else."""
    if isinstance(mode, int):
        value = mode
    else:
        text = str(mode).strip()
        if not re.match(r'^0?[0-7]{3,4}$', text):
            raise ValueError('mode %r is not an octal permission such as 0755' % (mode,))
        value = int(text, 8)
    if value > 0o7777:
        raise ValueError('mode %r is not an octal permission such as 0755' % (mode,))
    return '%04o' % value


# Ceph options whose value is a secret: libvirt would keep it in the pool XML, which anyone may read over
# the read-only socket (the key belongs in a libvirt secret, source.auth).
SECRET_CEPH_OPTIONS = ('key',)


def is_secret_ceph_option(name):
    """Whether the Ceph option ``name`` holds a secret (any case; '-' or ' ' for '_', as Ceph spellings vary)."""
    return re.sub('[ -]', '_', str(name).strip()).lower() in SECRET_CEPH_OPTIONS


def _number(text, option, what):
    """An integer attribute or element of a pool document; PoolSpecError naming ``option`` otherwise."""
    if text is None or not re.match(r'^\s*-?[0-9]{1,10}\s*$', text):
        raise PoolSpecError(option, '%s %r is not a number' % (what, text))
    return int(text)


class PoolHost:
    def __init__(self, name, port=None):
        self.name = name
        self.port = port

    @classmethod
    def parse_dom(cls, node):
        port = node.get('port')
        return cls(node.get('name'), _number(port, 'source.host', 'the port of host %s' % node.get('name'))
                   if port else None)

    def format_dom(self):
        node = etree.Element('host', name=self.name)
        if self.port is not None:
            node.set('port', str(self.port))
        return node

    def to_dict(self):
        return {'name': self.name, 'port': self.port}


class PoolAuth:
    def __init__(self, auth_type, username, secret_uuid=None, secret_usage=None):
        self.type = auth_type
        self.username = username
        self.secret_uuid = secret_uuid
        self.secret_usage = secret_usage

    @classmethod
    def parse_dom(cls, node):
        secret = node.find('secret')
        uuid = usage = None
        if secret is not None:
            uuid, usage = secret.get('uuid'), secret.get('usage')
        return cls(node.get('type'), node.get('username'), uuid, usage)

    def format_dom(self):
        node = etree.Element('auth', type=self.type, username=self.username)
        secret = etree.SubElement(node, 'secret')
        if self.secret_uuid:
            secret.set('uuid', self.secret_uuid)
        if self.secret_usage:
            secret.set('usage', self.secret_usage)
        return node

    def to_dict(self):
        return {'type': self.type, 'username': self.username,
                'secret_uuid': self.secret_uuid, 'secret_usage': self.secret_usage}


class PoolPermissions:
    def __init__(self, mode=None, owner=None, group=None, label=None):
        self.mode = mode
        self.owner = owner
        self.group = group
        self.label = label

    @classmethod
    def parse_dom(cls, node):
        owner, group = xml_tree.child_text(node, 'owner'), xml_tree.child_text(node, 'group')
        return cls(xml_tree.child_text(node, 'mode'),
                   _number(owner, 'permissions.owner', 'owner') if owner is not None else None,
                   _number(group, 'permissions.group', 'group') if group is not None else None,
                   xml_tree.child_text(node, 'label'))

    def format_dom(self):
        node = etree.Element('permissions')
        xml_tree.set_child_text(node, 'mode', self.mode)
        xml_tree.set_child_text(node, 'owner', self.owner)
        xml_tree.set_child_text(node, 'group', self.group)
        xml_tree.set_child_text(node, 'label', self.label)
        return node

    def to_dict(self):
        return {'mode': self.mode, 'owner': self.owner, 'group': self.group, 'label': self.label}


class PoolSource:
    def __init__(self, devices=None, hosts=None, dir=None, name=None, format=None, auth=None):
        self.devices = list(devices or [])
        self.hosts = list(hosts or [])
        self.dir = dir
        self.name = name
        self.format = format
        self.auth = auth

    @classmethod
    def parse_dom(cls, node):
        dir_node, format_node, auth_node = node.find('dir'), node.find('format'), node.find('auth')
        return cls(devices=[dev.get('path') for dev in node.findall('device')],
                   hosts=[PoolHost.parse_dom(host) for host in node.findall('host')],
                   dir=dir_node.get('path') if dir_node is not None else None,
                   name=xml_tree.child_text(node, 'name'),
                   format=format_node.get('type') if format_node is not None else None,
                   auth=PoolAuth.parse_dom(auth_node) if auth_node is not None else None)

    def format_dom(self):
        node = etree.Element('source')
        for host in self.hosts:
            node.append(host.format_dom())
        for path in self.devices:
            etree.SubElement(node, 'device', path=path)
        if self.dir is not None:
            etree.SubElement(node, 'dir', path=self.dir)
        xml_tree.set_child_text(node, 'name', self.name)
        if self.format is not None:
            etree.SubElement(node, 'format', type=self.format)
        if self.auth is not None:
            node.append(self.auth.format_dom())
        return node

    def to_dict(self):
        return {'devices': list(self.devices), 'hosts': [host.to_dict() for host in self.hosts],
                'dir': self.dir, 'name': self.name, 'format': self.format,
                'auth': self.auth.to_dict() if self.auth else None}


class PoolDefinition:
    """A <pool> document: the parts this collection manages by option."""

    def __init__(self, name, pool_type, target_path=None, source=None, permissions=None,
                 config_opts=None, uuid=None):
        self.name = name
        self.type = pool_type
        self.target_path = target_path
        self.source = source or PoolSource()
        self.permissions = permissions
        self.config_opts = dict(config_opts or {})
        self.uuid = uuid

    @classmethod
    def parse_dom(cls, root):
        target = root.find('target')
        permissions = target.find('permissions') if target is not None else None
        source = root.find('source')
        options = root.findall('%sconfig_opts/%soption' % (_RBD, _RBD))
        return cls(name=xml_tree.child_text(root, 'name'),
                   pool_type=root.get('type'),
                   target_path=xml_tree.child_text(target, 'path') if target is not None else None,
                   source=PoolSource.parse_dom(source) if source is not None else None,
                   permissions=PoolPermissions.parse_dom(permissions) if permissions is not None else None,
                   config_opts=dict((opt.get('name'), opt.get('value')) for opt in options),
                   uuid=xml_tree.child_text(root, 'uuid'))

    @classmethod
    def from_xml(cls, text):
        return cls.parse_dom(xml_tree.parse(text, 'pool'))

    def format_dom(self):
        nsmap = {'rbd': RBD_NAMESPACE} if self.config_opts else None
        root = etree.Element('pool', type=self.type, nsmap=nsmap)
        xml_tree.set_child_text(root, 'name', self.name)
        xml_tree.set_child_text(root, 'uuid', self.uuid)
        source = self.source.format_dom()
        if len(source):
            root.append(source)
        if self.target_path is not None or self.permissions is not None:
            target = etree.SubElement(root, 'target')
            xml_tree.set_child_text(target, 'path', self.target_path)
            if self.permissions is not None:
                target.append(self.permissions.format_dom())
        if self.config_opts:
            opts = etree.SubElement(root, _RBD + 'config_opts')
            for key, value in self.config_opts.items():
                etree.SubElement(opts, _RBD + 'option', name=key, value=str(value))
        return root

    def to_xml(self):
        return xml_tree.to_string(self.format_dom())

    @classmethod
    def from_options(cls, name, pool_type, target=None, source=None, permissions=None):
        """Build from the module's structured options (already type-checked)."""
        source = source or {}
        auth = source.get('auth')
        perms = None
        if permissions and any(value is not None for value in permissions.values()):
            try:
                mode = normalize_mode(permissions['mode']) if permissions.get('mode') is not None else None
            except ValueError as exc:
                raise PoolSpecError('permissions.mode', str(exc))
            perms = PoolPermissions(mode, permissions.get('owner'), permissions.get('group'),
                                    permissions.get('label'))
        return cls(
            name=name, pool_type=pool_type, target_path=target, permissions=perms,
            config_opts=source.get('config_opts'),
            source=PoolSource(
                devices=source.get('device'),
                hosts=[PoolHost(host['name'], host.get('port')) for host in source.get('host') or []],
                dir=source.get('dir'), name=source.get('name'), format=source.get('format'),
                auth=PoolAuth(auth.get('type') or 'ceph', auth['username'], auth.get('secret_uuid'),
                              auth.get('secret_usage')) if auth else None))

    def validate(self, option_prefix=''):
        """Raise PoolSpecError (or the name rules' OptionError) for what libvirt would reject less clearly.

        ``option_prefix`` is '' for structured options and 'xml: ' when the
        definition came from a whole document, so the message names it.
        """
        def fail(option, message):
            raise PoolSpecError(option_prefix + option, message)

        self._validate_names(option_prefix)
        if self.type not in POOL_TYPES:
            fail('type', 'unknown pool type %r; choose one of %s' % (self.type, ', '.join(POOL_TYPES)))
        present = {
            'target': self.target_path is not None,
            'source.device': bool(self.source.devices),
            'source.host': bool(self.source.hosts),
            'source.dir': self.source.dir is not None,
            'source.name': self.source.name is not None,
        }
        for part in REQUIRED[self.type]:
            if not present[part]:
                fail(part, 'a pool of type %s needs %s' % (self.type, part))
        if self.target_path is not None and not posixpath.isabs(self.target_path):
            fail('target', 'target path %r must be absolute' % self.target_path)
        for device in self.source.devices:
            if self.type in ('fs', 'logical', 'disk') and not posixpath.isabs(device):
                fail('source.device', 'device %r must be an absolute path' % device)
        if self.source.dir is not None and not posixpath.isabs(self.source.dir):
            fail('source.dir', 'directory %r must be an absolute path' % self.source.dir)
        for host in self.source.hosts:
            if not host.name:
                fail('source.host', 'every host needs a name')
            if host.port is not None and not 0 < host.port < 65536:
                fail('source.host', 'port %s of host %s is not a TCP port' % (host.port, host.name))
        if self.source.auth is not None:
            auth = self.source.auth
            if auth.type not in ('ceph', 'chap'):
                fail('source.auth.type', 'auth type %r is neither ceph nor chap' % auth.type)
            if not auth.username:
                fail('source.auth.username', 'auth needs a username')
            if bool(auth.secret_uuid) == bool(auth.secret_usage):
                fail('source.auth', 'give exactly one of secret_uuid and secret_usage')
        if self.config_opts and self.type != 'rbd':
            fail('source.config_opts', 'config_opts exist only for rbd pools')
        for key in self.config_opts:
            if is_secret_ceph_option(key):
                fail('source.config_opts', "'%s' would put the cephx key into the pool's XML, which any "
                     "user of the read-only libvirt socket can read; keep it in a libvirt secret "
                     "(rbd_pool_secret) named by source.auth" % key)

    def _validate_names(self, prefix):
        """Every name and path of the document: no control characters (lxml's bare ValueError otherwise);
        for rbd the Ceph pool and user, which go into qemu's rbd: filenames, without its separators."""
        names.pool_name(self.name, prefix + 'name')
        source, auth = self.source, self.source.auth or PoolAuth(None, None)
        texts = [('target', [self.target_path]), ('source.device', source.devices),
                 ('source.host', [host.name for host in source.hosts]), ('source.dir', [source.dir]),
                 ('source.name', [source.name]), ('source.format', [source.format]),
                 ('source.auth.username', [auth.username]), ('source.auth.secret_uuid', [auth.secret_uuid]),
                 ('source.auth.secret_usage', [auth.secret_usage]),
                 ('permissions.label', [self.permissions.label if self.permissions else None]),
                 ('source.config_opts', [item for pair in self.config_opts.items() for item in pair])]
        for option, values in texts:
            for value in values:
                if value is not None:
                    names.text(value, prefix + option)
        if self.type == 'rbd':
            for option, value in (('source.name', source.name), ('source.auth.username', auth.username)):
                if value is not None:
                    names.ceph_name(value, prefix + option)


def canonical(root):
    """A copy of a <pool> element reduced to what an operator decides.

    Dropped: what libvirt computes or fills in by itself (uuid, sizes,
    the default source format, a logical pool's derived VG name and target,
    indentation), so a live ``XMLDesc`` and a wanted document compare equal
    when nothing that matters differs. Normalised: paths, permission modes,
    the order of unrelated elements and of rbd config options.
    """
    root = xml_tree.strip_blank_text(copy.deepcopy(root))
    for tag in ('uuid', 'capacity', 'allocation', 'available'):
        xml_tree.remove(root, tag)
    pool_type = root.get('type')
    name = xml_tree.child_text(root, 'name')

    for node in root.xpath('target/path | source/dir'):
        if node.tag == 'path' and node.text:
            node.text = normalize_path(node.text.strip())
        elif node.get('path'):
            node.set('path', normalize_path(node.get('path')))
    for node in root.xpath('target/permissions/mode'):
        try:
            node.text = normalize_mode(node.text)
        except ValueError:
            pass  # keep it as written: libvirt will say what is wrong with it
    for node in root.xpath('target/permissions/owner | target/permissions/group'):
        if (node.text or '').strip() == '-1':  # libvirt's "unset"
            node.getparent().remove(node)

    default_format = DEFAULT_SOURCE_FORMAT.get(pool_type)
    for node in root.xpath('source/format'):
        if node.get('type') == default_format and len(node.attrib) == 1:
            node.getparent().remove(node)
    if pool_type == 'logical':
        vg_name = xml_tree.child_text(root, 'source/name') or name
        for node in root.xpath('source/name'):
            if node.text and node.text.strip() == name:
                node.getparent().remove(node)
        for node in root.xpath('target/path'):
            if node.text == '/dev/' + vg_name:
                node.getparent().remove(node)

    for opts in root.findall(_RBD + 'config_opts'):
        options = sorted(opts, key=lambda opt: opt.get('name') or '')
        for opt in options:
            opts.append(opt)

    xml_tree.drop_empty(root)
    xml_tree.sort_children(root)
    return root


def inherit_unset(wanted, defined):
    """A copy of ``wanted`` with the permissions it leaves unset taken from ``defined``.

    libvirt writes the permissions it used (mode 0711, the daemon's uid and
    gid) into the definition when it builds a pool. What the task leaves
    unset is libvirt's to choose, so it is neither drift nor to be reset.
    """
    wanted = copy.deepcopy(wanted)
    defined_perms = defined.find('target/permissions')
    target = wanted.find('target')
    if defined_perms is None or target is None:
        return wanted
    perms = target.find('permissions')
    if perms is None:
        perms = etree.SubElement(target, 'permissions')
    for field in ('mode', 'owner', 'group', 'label'):
        if perms.find(field) is None and defined_perms.find(field) is not None:
            perms.append(copy.deepcopy(defined_perms.find(field)))
    return wanted


def runtime_view(root):
    """The canonical parts a running pool uses: all but target permissions.

    libvirt fills the active document's permissions from the directory
    itself, so they differ from the inactive definition without any change
    pending; everything else differing means a redefinition waits for a
    restart.
    """
    root = canonical(root)
    xml_tree.remove(root, 'target/permissions')
    xml_tree.drop_empty(root)
    return root


def canonical_string(root):
    return xml_tree.to_string(canonical(root))
