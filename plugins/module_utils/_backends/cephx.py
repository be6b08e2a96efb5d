# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""cephx keys: reading them from a keyring, checking them, fingerprinting them.

A key never appears in an error message of this module: messages say what
is wrong with it, not what it is. The fingerprint lets a later run tell
whether a private libvirt secret (whose value libvirt refuses to give back)
already holds a given key; see docs/secrets.md for the threat model.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import stat
import struct

from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError

# struct CryptoKey as Ceph encodes it: u16 type, utime (u32 sec, u32 nsec), u16 length, secret.
_KEY_HEADER = struct.Struct('<HIIH')
CRYPTO_AES = 1

FINGERPRINT_SCHEME = 'pbkdf2-sha256'
FINGERPRINT_ROUNDS = 100000
# What a recorded fingerprint may ask for: its rounds bound the time a comparison takes.
FINGERPRINT_ROUND_RANGE = (FINGERPRINT_ROUNDS // 100, FINGERPRINT_ROUNDS * 10)
FINGERPRINT_SALT_RANGE = (8, 64)
_FINGERPRINT_RE = re.compile(r'^pbkdf2-sha256\$([0-9]{1,12})\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$')


def decode_key(key: str | None, option: str = 'key') -> bytes:
    """The raw bytes of a base64 cephx key; StoragePoolsError (naming ``option``) otherwise."""
    text = key.strip() if isinstance(key, str) else ''
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise StoragePoolsError('%s: the value is not base64; a cephx key looks like the "key = ..." '
                                'line of a Ceph keyring (40 characters ending in "==")' % option)
    if len(raw) < _KEY_HEADER.size:
        raise StoragePoolsError('%s: the value is too short for a cephx key' % option)
    key_type, _sec, _nsec, length = _KEY_HEADER.unpack_from(raw)
    if key_type != CRYPTO_AES or len(raw) != _KEY_HEADER.size + length:
        raise StoragePoolsError('%s: the value decodes, but not to a cephx (AES) key' % option)
    return raw


def read_keyring(path: str, user: str) -> tuple[str, list]:
    """The key of ``client.<user>`` in the keyring file at ``path`` (as base64 text).

    Returns (key, warnings); the key is checked with decode_key.
    """
    try:
        with open(path, 'r') as handle:
            mode = os.fstat(handle.fileno()).st_mode
            content = handle.read()
    except OSError as exc:
        raise StoragePoolsError('keyring: cannot read %s on the managed host: %s' % (path, exc.strerror))
    warnings = []
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        warnings.append('keyring: %s is readable by users other than its owner (mode %04o); '
                        'a keyring should be 0600' % (path, stat.S_IMODE(mode)))
    section, key = None, None
    wanted = 'client.%s' % user
    for line in content.splitlines():
        line = line.strip()
        if not line or line.startswith(('#', ';')):
            continue
        if line.startswith('[') and line.endswith(']'):
            section = line[1:-1].strip()
            continue
        name, sep, value = line.partition('=')
        if sep and section == wanted and name.strip() == 'key':
            key = value.strip()
    if key is None:
        raise StoragePoolsError('keyring: %s has no key for [%s]; check user and the file' % (path, wanted))
    decode_key(key, option='keyring')
    return key, warnings


def fingerprint(raw_key: bytes, salt: bytes | None = None, rounds: int = FINGERPRINT_ROUNDS) -> str:
    """A salted, slow one-way fingerprint of ``raw_key``: ``pbkdf2-sha256$rounds$salt$hash``."""
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.pbkdf2_hmac('sha256', raw_key, salt, rounds)
    return '%s$%d$%s$%s' % (FINGERPRINT_SCHEME, rounds, base64.b64encode(salt).decode(),
                            base64.b64encode(digest).decode())


def _malformed(what):
    return StoragePoolsError(
        "description: the key fingerprint recorded in the secret's description %s; only root could have "
        "written it there. Remove that last line of the description (or the secret, state=absent) and run "
        "again to record the key afresh" % what)


def _parse_fingerprint(recorded):
    """(rounds, salt) of a recorded fingerprint; StoragePoolsError saying what is wrong with it."""
    match = _FINGERPRINT_RE.match(recorded)
    if not match:
        raise _malformed('is not of the form %s$<rounds>$<salt>$<hash>' % FINGERPRINT_SCHEME)
    rounds = int(match.group(1))
    if not FINGERPRINT_ROUND_RANGE[0] <= rounds <= FINGERPRINT_ROUND_RANGE[1]:
        raise _malformed('asks for %d PBKDF2 rounds, outside %d to %d' % ((rounds,) + FINGERPRINT_ROUND_RANGE))
    try:
        salt = base64.b64decode(match.group(2), validate=True)
        digest = base64.b64decode(match.group(3), validate=True)
    except (binascii.Error, ValueError):
        raise _malformed('has a salt or hash that is not base64')
    if not FINGERPRINT_SALT_RANGE[0] <= len(salt) <= FINGERPRINT_SALT_RANGE[1]:
        raise _malformed('has a salt of %d bytes, outside %d to %d' % ((len(salt),) + FINGERPRINT_SALT_RANGE))
    if len(digest) != hashlib.sha256().digest_size:
        raise _malformed('has a hash of %d bytes, not a SHA-256' % len(digest))
    return rounds, salt


def fingerprint_matches(raw_key: bytes, recorded: str | None) -> bool:
    """Whether ``recorded`` (a fingerprint string, None when there is none) was made from ``raw_key``.

    A malformed record is a StoragePoolsError, never a hang (bounded rounds) or another exception."""
    if not recorded:
        return False
    rounds, salt = _parse_fingerprint(recorded)
    return hmac.compare_digest(fingerprint(raw_key, salt, rounds), recorded)
