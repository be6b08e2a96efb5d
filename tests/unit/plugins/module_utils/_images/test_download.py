# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The parts of an image by URL that need no server: the source's checks, the url messages show, the staging
directory's rules (the downloads themselves: tests/integration/test_volume_url_import.py)."""

from __future__ import annotations

import os

import pytest

from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._images import download

DIGEST = 'ab' * 32


def source(**changes):
    spec = {'url': 'https://images.example.org/cirros.qcow2', 'checksum': 'sha256:' + DIGEST, 'format': 'qcow2'}
    spec.update(changes)
    return spec


def refusal(spec):
    with pytest.raises(StoragePoolsError) as caught:
        download.check_source(spec)
    return caught.value.msg


def test_a_complete_source_gives_its_digest():
    assert download.check_source(source()) == DIGEST
    assert download.check_source(source(checksum=' SHA256:' + DIGEST.upper())) == DIGEST


@pytest.mark.parametrize('changes, option', [
    ({'checksum': None}, 'source.checksum: '),
    ({'checksum': 'md5:' + 'a' * 32}, 'source.checksum: '),
    ({'checksum': 'sha256:' + DIGEST[:-1]}, 'source.checksum: '),
    ({'format': None}, 'source.format: '),
    ({'url': 'file:///etc/shadow'}, 'source.url: '),
    ({'url': 'ftp://images.example.org/x'}, 'source.url: '),
    ({'url': 'http:///x'}, 'source.url: '),
    ({'path': '/etc/shadow'}, 'source.url: '),
    ({'pool': 'p', 'volume': 'v'}, 'source.url: '),
    ({'max_size': 0}, 'source.max_size: '),
    ({'timeout': -1}, 'source.timeout: '),
])
def test_an_incomplete_or_mixed_source_is_refused_naming_the_option(changes, option):
    assert refusal(source(**changes)).startswith(option)


@pytest.mark.parametrize('url, shown', [
    ('https://user:secret@images.example.org:8443/a?b=c', 'https://images.example.org:8443/a?b=c'),
    ('http://user@[::1]/a', 'http://[::1]/a'),
    ('https://images.example.org/a', 'https://images.example.org/a'),
])
def test_a_url_is_shown_without_its_credentials(url, shown):
    assert download.public_url(url) == shown


def test_a_refused_url_message_carries_no_credentials():
    assert 'secret' not in refusal(source(url='ftp://user:secret@host/x'))


def test_the_staging_dir_is_made_0700_and_a_symlink_refused(tmp_path):
    made = tmp_path / 'state' / 'staging'
    download.Staging(str(made)).close()
    assert made.stat().st_mode & 0o777 == 0o700
    (tmp_path / 'link').symlink_to(made)
    with pytest.raises(StoragePoolsError, match='^staging_dir: .* symlink'):
        download.Staging(str(tmp_path / 'link'))


def test_a_staging_dir_others_may_write_is_refused(tmp_path):
    os.chmod(tmp_path, 0o777)
    with pytest.raises(StoragePoolsError, match='^staging_dir: .*writable by group and others'):
        download.Staging(str(tmp_path))


def test_a_partial_file_is_resumed_only_when_it_is_ours(tmp_path):
    staging = download.Staging(str(tmp_path / 'staging'))
    fd, size = staging.open_partial(DIGEST)
    os.write(fd, b'x' * 10)
    os.close(fd)
    assert oct(os.stat(tmp_path / 'staging' / (download.PARTIAL % DIGEST)).st_mode & 0o777) == '0o600'
    fd, size = staging.open_partial(DIGEST)  # a killed run's: resumed from where it stopped
    os.close(fd)
    assert size == 10
    os.link(tmp_path / 'staging' / (download.PARTIAL % DIGEST), tmp_path / 'elsewhere')
    with pytest.raises(StoragePoolsError, match='^staging_dir: .*linked elsewhere'):
        staging.open_partial(DIGEST)
    staging.remove(DIGEST)
    staging.remove(DIGEST)  # nothing there: nothing to do
    assert os.listdir(tmp_path / 'staging') == []
    staging.close()
