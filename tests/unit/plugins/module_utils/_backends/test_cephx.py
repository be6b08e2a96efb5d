# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""cephx keys: decoding, keyrings, fingerprints; the key never in a message."""

from __future__ import annotations

import base64
import os
import struct
import time

import pytest

from ansible_collections.storagepools.libvirt.plugins.module_utils._backends import cephx
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError


def make_key(secret=b'0123456789abcdef', key_type=1):
    return base64.b64encode(struct.pack('<HIIH', key_type, 1700000000, 0, len(secret)) + secret).decode()


KEY = make_key()


def test_a_cephx_key_decodes_to_its_28_bytes():
    raw = cephx.decode_key(KEY)
    assert len(raw) == 28 and raw.endswith(b'0123456789abcdef')
    assert len(KEY) == 40 and KEY.endswith('==')


@pytest.mark.parametrize('bad', ['not base64!', base64.b64encode(b'short').decode(), make_key(key_type=2),
                                 KEY[:-4] + 'AAA=', '', None])
def test_bad_keys_are_refused_without_echo(bad):
    with pytest.raises(StoragePoolsError) as err:
        cephx.decode_key(bad, option='key')
    assert err.value.msg.startswith('key: ')
    if bad:
        assert bad not in err.value.msg


def test_read_keyring_finds_the_users_section(tmp_path):
    path = tmp_path / 'ceph.keyring'
    other = make_key(b'fedcba9876543210')
    path.write_text('[client.admin]\n\tkey = %s\n[client.nova]\n\tkey = %s\n\tcaps mon = "profile rbd"\n'
                    % (other, KEY))
    os.chmod(str(path), 0o600)
    assert cephx.read_keyring(str(path), 'nova') == (KEY, [])
    os.chmod(str(path), 0o640)
    key, warnings = cephx.read_keyring(str(path), 'admin')
    assert key == other and 'readable by users other than its owner' in warnings[0]


def test_read_keyring_names_the_missing_section(tmp_path):
    path = tmp_path / 'ceph.keyring'
    path.write_text('[client.admin]\n\tkey = %s\n' % KEY)
    with pytest.raises(StoragePoolsError) as err:
        cephx.read_keyring(str(path), 'nova')
    assert err.value.msg.startswith('keyring: ') and '[client.nova]' in err.value.msg
    assert KEY not in err.value.msg


def test_fingerprints_are_salted_and_match_only_their_key():
    raw, other = cephx.decode_key(KEY), cephx.decode_key(make_key(b'fedcba9876543210'))
    first, second = cephx.fingerprint(raw, rounds=1000), cephx.fingerprint(raw, rounds=1000)
    assert first != second  # a new salt each time
    assert cephx.fingerprint_matches(raw, first) and cephx.fingerprint_matches(raw, second)
    assert not cephx.fingerprint_matches(other, first)
    assert KEY not in first and base64.b64encode(raw).decode() not in first


@pytest.mark.parametrize('recorded', [None, ''])
def test_no_fingerprint_never_matches(recorded):
    assert not cephx.fingerprint_matches(cephx.decode_key(KEY), recorded)


SALT = base64.b64encode(b'0123456789abcdef').decode()
HASH = base64.b64encode(bytes(32)).decode()


@pytest.mark.parametrize('recorded, what', [
    ('sha1$abc', 'is not of the form'),
    ('pbkdf2-sha256$x$y$z', 'is not of the form'),
    ('pbkdf2-sha256$0$%s$%s' % (SALT, HASH), 'asks for 0 PBKDF2 rounds'),
    ('pbkdf2-sha256$999999999999$%s$%s' % (SALT, HASH), 'asks for 999999999999 PBKDF2 rounds'),
    ('pbkdf2-sha256$9999999999999999$%s$%s' % (SALT, HASH), 'is not of the form'),
    ('pbkdf2-sha256$100000$abc$%s' % HASH, 'not base64'),  # bad padding
    ('pbkdf2-sha256$100000$%s$%s' % (base64.b64encode(b'ab').decode(), HASH), 'a salt of 2 bytes'),
    ('pbkdf2-sha256$100000$%s$%s' % (SALT, base64.b64encode(b'short').decode()), 'a hash of 5 bytes'),
])
def test_a_malformed_fingerprint_is_a_clean_failure_in_bounded_time(recorded, what):
    started = time.monotonic()
    with pytest.raises(StoragePoolsError) as err:
        cephx.fingerprint_matches(cephx.decode_key(KEY), recorded)
    assert time.monotonic() - started < 5
    assert err.value.msg.startswith('description: ') and what in err.value.msg
