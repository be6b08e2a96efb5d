# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The receiving end of a sparse volume stream (_libvirt/stream.py): a writer and a digest.

``SparseWriter`` writes the data chunks of a stream at their offsets into a
file this process opened and leaves holes as holes (a regular file: never
written, so never allocated; a block device, which has no holes: zeroes
written from one fixed buffer, so no stale data shows through), then
fsyncs. ``ContentDigest`` digests what a stream carries independently of
how it was cut into data and holes: two streams of the same bytes digest
the same whether a run of zeroes came as a hole or as data. Memory is
bounded by one chunk plus one digest block, whatever the size.
"""

from __future__ import annotations

import hashlib
import os
import stat

from ansible_collections.storagepools.libvirt.plugins.module_utils._core.faults import fault_point

BLOCK = 1024 * 1024
ZEROES = bytes(BLOCK)


class ContentDigest:
    """sha256 of a byte stream fed as data (``data``) and holes (``hole``): every BLOCK-aligned block that is
    not all zeroes, with its offset, then the total length. Equal bytes, equal digest."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.offset = 0
        self.block = bytearray()  # the bytes of the current block received so far (zero-filled over holes)

    def data(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            room = BLOCK - len(self.block)
            self.block += view[:room]
            view = view[room:]
            if len(self.block) == BLOCK:
                self._block_done()

    def hole(self, length: int) -> None:
        if self.block:
            fill = min(length, BLOCK - len(self.block))
            self.block += ZEROES[:fill]
            length -= fill
            if len(self.block) == BLOCK:
                self._block_done()
        whole, rest = divmod(length, BLOCK)
        self.offset += whole * BLOCK  # all-zero blocks add nothing
        if rest:
            self.block += ZEROES[:rest]

    def _block_done(self):
        if self.block != ZEROES[:len(self.block)]:
            self.hash.update(b'%d:' % self.offset)
            self.hash.update(self.block)
        self.offset += len(self.block)
        self.block = bytearray()

    def hexdigest(self) -> str:
        if self.block:
            self._block_done()
        self.hash.update(b'end:%d' % self.offset)
        return self.hash.hexdigest()


class ByteDigest:
    """sha256 of the bytes a stream carries, holes read as zeroes: the digest of the image file they make
    (what ``source.checksum`` declares). Unlike ContentDigest it hashes every zero of a hole too."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()

    def data(self, chunk: bytes) -> None:
        self.hash.update(chunk)

    def hole(self, length: int) -> None:
        zeroes = memoryview(ZEROES)
        while length:
            part = min(length, BLOCK)
            self.hash.update(zeroes[:part])
            length -= part

    def hexdigest(self) -> str:
        return self.hash.hexdigest()


class Digests:
    """Feeds one stream to several digests (None entries are left out)."""

    def __init__(self, *digests: ContentDigest | ByteDigest | None) -> None:
        self.digests = [digest for digest in digests if digest is not None]

    def data(self, chunk: bytes) -> None:
        for digest in self.digests:
            digest.data(chunk)

    def hole(self, length: int) -> None:
        for digest in self.digests:
            digest.hole(length)


class SparseWriter:
    """Writes a stream into ``fd`` (a regular file or a block device this process opened for writing).

    ``digest``: a ContentDigest fed the same stream (what left the source); ``fault``: the fault point each
    data chunk passes (tests kill a run mid-stream there, STORAGEPOOLS_KILL_AT=<fault>:<n>)."""

    def __init__(self, fd: int, digest: ContentDigest | Digests | None = None, fault: str = 'stream-chunk') -> None:
        self.fd = fd
        self.device = stat.S_ISBLK(os.fstat(fd).st_mode)
        self.digest = digest
        self.fault = fault
        self.counts = {}
        self.offset = 0
        if not self.device:
            os.ftruncate(fd, 0)  # whatever libvirt wrote on creation (a qcow2 header) goes; all holes now

    def data(self, chunk: bytes) -> None:
        fault_point(self.fault, self.counts)
        view = memoryview(chunk)
        while view:
            written = os.pwrite(self.fd, view, self.offset)
            view = view[written:]
            self.offset += written
        if self.digest is not None:
            self.digest.data(chunk)

    def hole(self, length: int) -> None:
        if self.device:
            end = self.offset + length
            while self.offset < end:
                self.offset += os.pwrite(self.fd, ZEROES[:min(BLOCK, end - self.offset)], self.offset)
        else:
            self.offset += length
        if self.digest is not None:
            self.digest.hole(length)

    def finish(self) -> int:
        """The file ends where the stream did (a trailing hole included); a device's tail beyond it reads as
        zeroes; everything is on disk. The size streamed."""
        size = self.offset
        if self.device:
            self.digest, end = None, os.lseek(self.fd, 0, os.SEEK_END)
            self.hole(end - size)
        else:
            os.ftruncate(self.fd, size)
        os.fsync(self.fd)
        return size
