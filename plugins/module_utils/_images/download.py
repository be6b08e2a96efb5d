# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""An image by URL: downloaded on the managed host into a root-only staging directory, its digest checked
while it arrives.

HTTP goes through ansible.module_utils.urls (open_url), so proxies, TLS and netrc behave as they do for
ansible.builtin.get_url. The body is bounded (``max_size``) and every read has a timeout. The staging file is
``storagepools-<sha256>.partial``, opened without following a symlink and created O_EXCL 0600; a run killed
mid-download leaves it, and the rerun resumes it with a Range request once it has checked the file is its
own (a regular root-only file with one link, in a directory only root writes). Once the digest matches, the
name is removed at once: the caller keeps the only descriptor, through which the image is inspected and read
(``/proc/self/fd/N``), so nothing of it stays in the staging directory whatever happens next.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import os
import re
import socket
import stat
import urllib.error
import urllib.parse

from ansible.module_utils import urls

from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.faults import fault_point
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.private import privacy_problems

CHUNK = 1024 * 1024
DEFAULT_MAX_SIZE = 1 << 40  # 1 TiB
DEFAULT_TIMEOUT = 30
_CHECKSUM_RE = re.compile(r'^sha256:([0-9a-f]{64})$')
_CONTENT_RANGE_RE = re.compile(r'^bytes (\d+)-(\d+)/(\d+|\*)$')
PARTIAL = 'storagepools-%s.partial'


def check_source(spec: dict) -> str:
    """Refuse an incomplete or mixed {url, checksum, format} source; the sha256 hex digest it declares."""
    for other in ('path', 'volume', 'pool', 'uri'):
        if spec.get(other):
            raise StoragePoolsError('source.url: an image by URL is the whole source; give url, checksum and format '
                                    'without source.%s' % other)
    parts = urllib.parse.urlsplit(spec['url'])
    if parts.scheme not in ('http', 'https') or not parts.hostname:
        raise StoragePoolsError('source.url: %s is not an http:// or https:// URL' % public_url(spec['url']))
    digest = declared_digest(spec.get('checksum'))
    if digest is None:
        raise StoragePoolsError('source.checksum: an image by URL needs its digest, sha256:<64 hex digits>')
    if not spec.get('format'):
        raise StoragePoolsError('source.format: an image by URL needs its declared format (raw, qcow2, vmdk)')
    for option in ('max_size', 'timeout'):
        if spec.get(option) is not None and spec[option] <= 0:
            raise StoragePoolsError('source.%s: give a positive number' % option)
    return digest


def declared_digest(checksum: str | None) -> str | None:
    """The sha256 hex digest ``checksum`` (V(sha256:<64 hex digits>)) declares; None when it declares none."""
    match = _CHECKSUM_RE.match((checksum or '').strip().lower())
    return match.group(1) if match else None


def public_url(url: str) -> str:
    """``url`` without the credentials it may carry (user:password@): what messages and records say."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ''
    if ':' in host:
        host = '[%s]' % host
    if parts.port is not None:
        host = '%s:%d' % (host, parts.port)
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


class Staging:
    """The staging directory: made 0700 when missing, refused when it is a symlink or anyone but root may
    write it; files are handled relative to its descriptor only."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            os.makedirs(path, mode=0o700, exist_ok=True)
            self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EEXIST):
                raise StoragePoolsError('staging_dir: %s is a symlink or not a directory; give a real directory '
                                        '(made 0700 when missing)' % path)
            raise StoragePoolsError('staging_dir: cannot make or open %s: %s' % (path, exc.strerror))
        problems = privacy_problems(os.fstat(self.fd))
        if problems:
            os.close(self.fd)
            raise StoragePoolsError('staging_dir: %s is %s; only root may write where images are staged (chown '
                                    'root:root %s; chmod 0700 %s) or choose another staging_dir'
                                    % (path, ' and '.join(problems), path, path))

    def open_partial(self, digest: str) -> tuple[int, int]:
        """(descriptor, bytes already there) of the staging file of ``digest``: a killed run's, once checked to
        be ours, else a new empty one."""
        name = PARTIAL % digest
        flags = os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(name, flags, dir_fd=self.fd)
        except FileNotFoundError:
            return os.open(name, flags | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=self.fd), 0
        except OSError as exc:
            raise StoragePoolsError("staging_dir: cannot open %s in %s (%s); check who made it, then remove it"
                                    % (name, self.path, 'a symlink' if exc.errno == errno.ELOOP else exc.strerror))
        info = os.fstat(fd)
        problems = privacy_problems(info) + ([] if stat.S_ISREG(info.st_mode) else ['not a regular file'])
        if info.st_nlink != 1 or info.st_mode & 0o077:
            problems.append('linked elsewhere or readable by others')
        if problems:
            os.close(fd)
            raise StoragePoolsError('staging_dir: %s in %s is %s, not a download of this collection; check who '
                                    'made it, then remove it' % (name, self.path, ' and '.join(problems)))
        return fd, info.st_size

    def remove(self, digest: str) -> None:
        try:
            os.unlink(PARTIAL % digest, dir_fd=self.fd)
        except FileNotFoundError:
            pass

    def close(self) -> None:
        os.close(self.fd)


class DownloadError(StoragePoolsError):
    """The download was refused or failed; ``msg`` names the option."""


def _hash_existing(fd, size):
    digest = hashlib.sha256()
    offset = 0
    while offset < size:
        block = os.pread(fd, min(CHUNK, size - offset), offset)
        if not block:
            break
        digest.update(block)
        offset += len(block)
    return digest, offset


def download(spec: dict, digest: str, staging: Staging) -> int:
    """Download ``spec['url']`` (the task's source option) into the staging file of ``digest``, resuming a
    killed run's, verifying the sha256 as the bytes arrive; the descriptor of the verified file, whose name
    is already removed (the caller's to close). Anything short of a verified file raises DownloadError and
    removes the staging file."""
    fd, have = staging.open_partial(digest)
    try:
        _fetch(spec, digest, fd, have)
    except BaseException as exc:
        os.close(fd)
        staging.remove(digest)
        if isinstance(exc, StoragePoolsError):
            raise
        timeouts = (TimeoutError, socket.timeout)  # the same class from Python 3.10 on
        if isinstance(exc, timeouts) or isinstance(getattr(exc, 'reason', None), timeouts):
            raise DownloadError('source.timeout: %s sent nothing for %d seconds; the download is abandoned'
                                % (public_url(spec['url']), spec.get('timeout') or DEFAULT_TIMEOUT))
        if isinstance(exc, (urllib.error.URLError, OSError, http.client.HTTPException, urls.ConnectionError)):
            raise DownloadError('source.url: downloading %s failed: %s' % (public_url(spec['url']), exc))
        raise
    staging.remove(digest)  # the descriptor keeps the data; the staging directory keeps nothing
    return fd


def _fetch(spec, digest, fd, have):
    label = public_url(spec['url'])
    max_size = spec.get('max_size') or DEFAULT_MAX_SIZE
    timeout = spec.get('timeout') or DEFAULT_TIMEOUT
    if have > max_size:
        have = 0
    hashed, have = _hash_existing(fd, have)
    os.ftruncate(fd, have)
    headers = {'Range': 'bytes=%d-' % have} if have else {}
    try:
        response = urls.open_url(spec['url'], headers=headers, timeout=timeout,
                                 validate_certs=spec.get('validate_certs', True),
                                 url_username=spec.get('url_username'), url_password=spec.get('url_password'),
                                 force_basic_auth=bool(spec.get('url_username')), http_agent='storagepools.libvirt',
                                 decompress=False)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have and hashed.hexdigest() == digest:  # a killed run had it all already
            return
        if exc.code == 416 and have:  # what is staged is not a prefix of this body: start again
            os.ftruncate(fd, 0)
            return _fetch(spec, digest, fd, 0)
        raise DownloadError('source.url: %s answered HTTP %d (%s)' % (label, exc.code, exc.reason))
    with response:
        status = response.getcode()
        content_range = _CONTENT_RANGE_RE.match(response.headers.get('Content-Range') or '')
        if status != 206 or not content_range or int(content_range.group(1)) != have:
            have = 0  # the server sends the whole body (it ignores Range): what was staged is dropped
            hashed = hashlib.sha256()
            os.ftruncate(fd, 0)
        length = response.headers.get('Content-Length')
        if length and length.isdigit() and have + int(length) > max_size:
            raise DownloadError('source.max_size: %s is %d bytes, more than max_size (%d bytes); refused before '
                                'reading it' % (label, have + int(length), max_size))
        counts = {}
        while True:
            block = response.read(CHUNK)
            if not block:
                break
            if have + len(block) > max_size:
                raise DownloadError('source.max_size: %s sent more than max_size (%d bytes); refused'
                                    % (label, max_size))
            view = memoryview(block)
            while view:
                written = os.pwrite(fd, view, have)
                view = view[written:]
                have += written
            hashed.update(block)
            fault_point('download-chunk', counts)
    os.fsync(fd)
    if hashed.hexdigest() != digest:
        raise DownloadError('source.checksum: %s has sha256:%s, the task declares sha256:%s; refused'
                            % (label, hashed.hexdigest(), digest))
