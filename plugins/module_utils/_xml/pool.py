# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The libvirt storage pool document: a lossless model, validation and canonical form.

One class per XML object on the _xml/base.py base: parsing keeps the whole
document (every element and attribute, named by a property or not), so
formatting gives it back. The canonical form is what two pool documents are
compared on: any document libvirt accepts and the one libvirt writes back
for it are equal (attribute and element order, what libvirt fills in or
derives on define), so only a real change counts as drift.
"""

from __future__ import annotations

import copy
import functools
import posixpath
import re
from typing import Dict, List, Optional

from ansible_collections.storagepools.libvirt.plugins.module_utils._core import names
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import OptionError
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.base import (
    Element,
    ET,
    SubElement,
    XMLChild,
    XMLChildList,
    XMLError,
    XMLObject,
    XMLProperty,
    parse,
)
from ansible_collections.storagepools.libvirt.plugins.module_utils._xml.pool_types import POOL_TYPES

RBD_NAMESPACE = 'http://libvirt.org/schemas/storagepool/rbd/1.0'
_RBD = '{%s}' % RBD_NAMESPACE
ET.register_namespace('rbd', RBD_NAMESPACE)  # serialise the Ceph options with libvirt's own prefix

# What libvirt 9 writes as <source><format> when a definition has none
# (seen with `virsh pool-define` + `pool-dumpxml --inactive`).
DEFAULT_SOURCE_FORMAT = {'fs': 'auto', 'netfs': 'auto', 'logical': 'lvm2', 'disk': 'unknown'}

# Pool types whose target path libvirt derives from the source name on define, replacing any given
# (logical: /dev/<volume group>, zfs: /dev/zvol/<zfs pool>): never an operator's decision.
DERIVED_TARGET_TYPES = ('logical', 'zfs')

# Elements libvirt computes for a defined pool.
COMPUTED = ('uuid', 'capacity', 'allocation', 'available')

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


def normalize_path(path: Optional[str]) -> Optional[str]:
    """A path as libvirt stores it: no duplicate or trailing slashes."""
    if path is None:
        return None
    normalized = re.sub('/+', '/', path)
    if len(normalized) > 1:
        normalized = normalized.rstrip('/')
    return normalized


def normalize_mode(mode: Optional[str]) -> Optional[str]:
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


def is_secret_ceph_option(name: str) -> bool:
    """Whether the Ceph option ``name`` holds a secret (any case; '-' or ' ' for '_', as Ceph spellings vary)."""
    return re.sub('[ -]', '_', str(name).strip()).lower() in SECRET_CEPH_OPTIONS


def _number(text, option, what):
    """An integer attribute or element of a pool document; PoolSpecError naming ``option`` otherwise."""
    if text is None or not re.match(r'^\s*-?[0-9]{1,10}\s*$', text):
        raise PoolSpecError(option, '%s %r is not a number' % (what, text))
    return int(text)


class PoolHost(XMLObject):
    """<host name= port=>: an NFS server, a Ceph monitor, an iSCSI portal."""

    ROOT_TAG = 'host'
    name = XMLProperty('@name')
    _port = XMLProperty('@port')

    def __init__(self, name: Optional[str] = None, port: Optional[int] = None,
                 node: Optional[Element] = None) -> None:
        super().__init__(node)
        if node is None:
            self.name, self.port = name, port

    @property
    def port(self) -> Optional[int]:
        text = self._port
        return _number(text, 'source.host', 'the port of host %s' % self.name) if text else None

    @port.setter
    def port(self, value: Optional[int]) -> None:
        self._port = value

    def to_dict(self) -> dict:
        return {'name': self.name, 'port': self.port}


class PoolAuth(XMLObject):
    """<auth type= username=><secret uuid=|usage=/></auth> (cephx or CHAP)."""

    ROOT_TAG = 'auth'
    type = XMLProperty('@type')
    username = XMLProperty('@username')
    secret_uuid = XMLProperty('secret/@uuid')
    secret_usage = XMLProperty('secret/@usage')

    def __init__(self, auth_type: Optional[str] = None, username: Optional[str] = None,
                 secret_uuid: Optional[str] = None, secret_usage: Optional[str] = None,
                 node: Optional[Element] = None) -> None:
        super().__init__(node)
        if node is None:
            self.type, self.username = auth_type, username
            self.secret_uuid, self.secret_usage = secret_uuid or None, secret_usage or None

    def to_dict(self) -> dict:
        return {'type': self.type, 'username': self.username,
                'secret_uuid': self.secret_uuid, 'secret_usage': self.secret_usage}


class PoolPermissions(XMLObject):
    """<target><permissions>: what libvirt gives the target directory when it builds it."""

    ROOT_TAG = 'permissions'
    CHILD_ORDER = ('mode', 'owner', 'group', 'label')
    mode = XMLProperty('mode')
    owner = XMLProperty('owner', parse=functools.partial(_number, option='permissions.owner', what='owner'))
    group = XMLProperty('group', parse=functools.partial(_number, option='permissions.group', what='group'))
    label = XMLProperty('label')

    def __init__(self, mode: Optional[str] = None, owner: Optional[int] = None, group: Optional[int] = None,
                 label: Optional[str] = None, node: Optional[Element] = None) -> None:
        super().__init__(node)
        if node is None:
            self.mode, self.owner, self.group, self.label = mode, owner, group, label

    def to_dict(self) -> dict:
        return {'mode': self.mode, 'owner': self.owner, 'group': self.group, 'label': self.label}


class PoolSource(XMLObject):
    """<source>: devices, hosts, directory, name, format and auth; any other child is kept as it is."""

    ROOT_TAG = 'source'
    CHILD_ORDER = ('host', 'device', 'dir', 'adapter', 'name', 'format', 'protocol', 'vendor', 'product',
                   'initiator', 'auth')
    hosts = XMLChildList(PoolHost)
    dir = XMLProperty('dir/@path')
    name = XMLProperty('name')
    format = XMLProperty('format/@type')
    auth = XMLChild(PoolAuth)

    def __init__(self, devices: Optional[List[str]] = None, hosts: Optional[List[PoolHost]] = None,
                 dir: Optional[str] = None, name: Optional[str] = None, format: Optional[str] = None,
                 auth: Optional[PoolAuth] = None, node: Optional[Element] = None) -> None:
        super().__init__(node)
        if node is None:
            self.hosts, self.devices = hosts, devices
            self.dir, self.name, self.format, self.auth = dir, name, format, auth

    @property
    def devices(self) -> List[str]:
        return [device.get('path') for device in self.node.findall('device')]

    @devices.setter
    def devices(self, paths: Optional[List[str]]) -> None:
        for old in self.node.findall('device'):
            self.node.remove(old)
        for path in paths or []:
            self.insert_child(self.node, Element('device', path=path))

    def to_dict(self) -> dict:
        auth = self.auth
        return {'devices': self.devices, 'hosts': [host.to_dict() for host in self.hosts],
                'dir': self.dir, 'name': self.name, 'format': self.format,
                'auth': auth.to_dict() if auth is not None else None}


class PoolDefinition(XMLObject):
    """A <pool> document, whole: the parts this collection manages by option are properties."""

    ROOT_TAG = 'pool'
    CHILD_ORDER = ('name', 'uuid', 'capacity', 'allocation', 'available', 'source', 'target', _RBD + 'config_opts')
    type = XMLProperty('@type')
    name = XMLProperty('name')
    uuid = XMLProperty('uuid')
    target_path = XMLProperty('target/path')
    permissions = XMLChild(PoolPermissions, 'target/permissions')

    def __init__(self, name: Optional[str] = None, pool_type: Optional[str] = None,
                 target_path: Optional[str] = None, source: Optional[PoolSource] = None,
                 permissions: Optional[PoolPermissions] = None, config_opts: Optional[dict] = None,
                 uuid: Optional[str] = None, node: Optional[Element] = None) -> None:
        super().__init__(node)
        if node is None:
            self.type, self.name, self.uuid = pool_type, name, uuid
            if source is not None and (len(source.node) or source.node.attrib):
                self.source = source
            self.target_path, self.permissions, self.config_opts = target_path, permissions, config_opts

    @classmethod
    def parse_dom(cls, node) -> 'PoolDefinition':
        definition = super().parse_dom(node)
        definition.check_numbers()
        return definition

    @classmethod
    def from_xml(cls, text) -> 'PoolDefinition':
        definition = super().from_xml(text)
        definition.check_numbers()
        return definition

    def check_numbers(self) -> None:
        """PoolSpecError now, naming the option, for a port, owner or group that is not a number."""
        for host in self.source.hosts:
            host.port
        if self.permissions is not None:
            self.permissions.to_dict()

    @property
    def source(self) -> PoolSource:
        """The <source>; without one, an empty detached PoolSource (assign one to add it)."""
        node = self.node.find('source')
        return PoolSource(node=node) if node is not None else PoolSource()

    @source.setter
    def source(self, value: Optional[PoolSource]) -> None:
        old = self.node.find('source')
        if old is not None:
            self.node.remove(old)
        if value is not None:
            self.insert_child(self.node, copy.deepcopy(value.node))

    @property
    def config_opts(self) -> Dict[str, str]:
        """The rbd Ceph options (libvirt's rbd namespace), a new dict: assign it back to change them."""
        return dict((opt.get('name'), opt.get('value'))
                    for opt in self.node.findall('%sconfig_opts/%soption' % (_RBD, _RBD)))

    @config_opts.setter
    def config_opts(self, options: Optional[dict]) -> None:
        old = self.node.find(_RBD + 'config_opts')
        if old is not None:
            self.node.remove(old)
        if options:
            opts = self.insert_child(self.node, Element(_RBD + 'config_opts'))
            for key, value in options.items():
                SubElement(opts, _RBD + 'option', name=key, value=str(value))

    def canonical_rules(self, root) -> None:
        _canonical_rules(root)

    @classmethod
    def from_document(cls, text: str, name: str) -> 'PoolDefinition':
        """The task's whole document (option ``xml``): its <name> must be ``name``, or is set to it."""
        try:
            definition = cls(node=parse(text, 'pool'))
        except XMLError as exc:
            raise PoolSpecError('xml', str(exc))
        if definition.node.find('name') is None:
            definition.name = name
        elif (definition.name or '').strip() != name:
            raise PoolSpecError('xml', 'the document names pool %r but name is %r; make them equal'
                                % ((definition.name or '').strip(), name))
        try:
            definition.check_numbers()
        except PoolSpecError as exc:
            raise PoolSpecError('xml', exc.msg)
        return definition

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
        if (self.source.dir is not None and not posixpath.isabs(self.source.dir)
                and not self.relative_source_dir()):
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

    def relative_source_dir(self) -> bool:
        """Whether the protocol names its source dir relative: a cifs share is 'share', not '/share'."""
        return self.type == 'netfs' and self.source.format == 'cifs'

    # -- views other modules compare on -------------------------------------------------------------

    def with_unset_from(self, defined: 'PoolDefinition') -> 'PoolDefinition':
        """A copy with the permissions this one leaves unset taken from ``defined``.

        libvirt writes the permissions it used (mode 0711, the daemon's uid and
        gid) into the definition when it builds a pool. What the task leaves
        unset is libvirt's to choose, so it is neither drift nor to be reset.
        """
        wanted = self.copy()
        defined_perms = defined.permissions
        if defined_perms is None or wanted.node.find('target') is None:
            return wanted
        perms = wanted.permissions or PoolPermissions()
        for field in ('mode', 'owner', 'group', 'label'):
            if getattr(perms, field) is None and getattr(defined_perms, field) is not None:
                setattr(perms, field, getattr(defined_perms, field))
        wanted.permissions = perms
        return wanted

    def runtime_string(self) -> str:
        """The canonical parts a running pool uses: all but target permissions.

        libvirt fills the active document's permissions from the directory
        itself, so they differ from the inactive definition without any change
        pending; everything else differing means a redefinition waits for a
        restart.
        """
        view = self.copy()
        view.permissions = None
        return view.canonical_string()

    def with_uuid(self, uuid: Optional[str]) -> 'PoolDefinition':
        copied = self.copy()
        copied.uuid = uuid
        return copied

    def to_dict(self) -> dict:
        """The parts the modules report: name, uuid, type and the document as libvirt would print it."""
        return {'name': self.name, 'uuid': self.uuid, 'type': self.type, 'xml': self.to_xml()}


class ObservedPool:
    """What libvirt said about an existing pool: its defined and (when active) running documents, autostart.

    _libvirt/pool.py's LivePool reads one from libvirt; a planner's unit test builds one from libvirt's XML.
    """

    def __init__(self, definition: PoolDefinition, running: Optional[PoolDefinition] = None,
                 autostart: bool = False) -> None:
        self.definition = definition
        self.running = running
        self.active = running is not None
        self.autostart = autostart

    def runs_other_than(self, definition: PoolDefinition) -> bool:
        """The pool is active and what it runs differs from ``definition``.

        Permissions are left out: libvirt fills the running document's from
        the directory itself, and a restart would not apply them anyway.
        """
        return self.active and self.running.runtime_string() != definition.runtime_string()

    def state(self) -> str:
        return 'active' if self.active else 'inactive'


def _normalize_path_node(node, attribute=None):
    if node is None:
        return
    if attribute:
        if node.get(attribute):
            node.set(attribute, normalize_path(node.get(attribute)))
    elif node.text:
        node.text = normalize_path(node.text.strip())


def _remove(root, path):
    parent_path, _sep, tag = path.rpartition('/')
    parent = root.find(parent_path) if parent_path else root
    if parent is not None:
        for node in parent.findall(tag):
            parent.remove(node)


def _canonical_rules(root):
    """What PoolDefinition.canonical drops and normalises (in place, on a copy).

    Dropped: what libvirt computes (uuid, sizes), fills in (the default source
    format, a logical pool's VG name) or derives on define (the target of a
    logical or zfs pool). Normalised: paths, permission modes, libvirt's
    'unset' owner and group, the order of the rbd Ceph options.
    """
    for tag in COMPUTED:
        _remove(root, tag)
    pool_type = root.get('type')
    _normalize_path_node(root.find('target/path'))
    _normalize_path_node(root.find('source/dir'), 'path')
    for node in root.findall('target/permissions/mode'):
        try:
            node.text = normalize_mode(node.text)
        except ValueError:
            pass  # keep it as written: libvirt will say what is wrong with it
    perms = root.find('target/permissions')
    if perms is not None:
        for node in perms.findall('owner') + perms.findall('group'):
            if (node.text or '').strip() == '-1':  # libvirt's "unset"
                perms.remove(node)
    source = root.find('source')
    if source is not None:
        default_format = DEFAULT_SOURCE_FORMAT.get(pool_type)
        for node in source.findall('format'):
            if node.get('type') == default_format and len(node.attrib) == 1:
                source.remove(node)
        if pool_type == 'logical':
            for node in source.findall('name'):
                if (node.text or '').strip() == (root.findtext('name') or '').strip():
                    source.remove(node)
    if pool_type in DERIVED_TARGET_TYPES:
        _remove(root, 'target/path')
    for opts in root.findall(_RBD + 'config_opts'):
        opts[:] = sorted(opts, key=lambda opt: opt.get('name') or '')


def _definition(root) -> PoolDefinition:
    return root if isinstance(root, PoolDefinition) else PoolDefinition(node=root)


def canonical(root):
    """A canonical copy (an element) of a pool document, an element or a PoolDefinition."""
    return _definition(root).canonical()


def canonical_string(root) -> str:
    return _definition(root).canonical_string()


def inherit_unset(wanted, defined) -> PoolDefinition:
    return _definition(wanted).with_unset_from(_definition(defined))


def runtime_view(root) -> str:
    return _definition(root).runtime_string()
