# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_images/stream.py: the receiving end of a sparse stream (writer, digest), fed as libvirt feeds it."""

from __future__ import annotations

import os

import pytest

from ansible_collections.storagepools.libvirt.plugins.module_utils._images.stream import (
    BLOCK,
    ContentDigest,
    SparseWriter,
)

KiB = 1024


def feed(receiver, pieces):
    for piece in pieces:
        if isinstance(piece, int):
            receiver.hole(piece)
        else:
            receiver.data(piece)
    return receiver


def digest(pieces):
    return feed(ContentDigest(), pieces).hexdigest()


def test_a_digest_does_not_depend_on_how_the_bytes_were_cut():
    data = os.urandom(3 * BLOCK + 77)
    whole = digest([bytes(5 * BLOCK + 3), data, bytes(BLOCK)])
    cut = [5 * BLOCK, bytes(3)] + [data[i:i + 262120] for i in range(0, len(data), 262120)] + [BLOCK // 2, BLOCK // 2]
    assert digest(cut) == whole
    assert digest([5 * BLOCK + 3, data, BLOCK]) == whole  # zeroes as holes or as data: the same bytes


@pytest.mark.parametrize('change', ['a byte', 'the length', 'an offset'])
def test_a_digest_tells_different_bytes_apart(change):
    data = os.urandom(BLOCK + 5)
    base = digest([BLOCK, data, 10])
    if change == 'a byte':
        other = [BLOCK, data[:100] + bytes([data[100] ^ 1]) + data[101:], 10]
    elif change == 'the length':
        other = [BLOCK, data, 11]
    else:
        other = [BLOCK + 1, data, 9]
    assert digest(other) != base


def test_the_writer_leaves_holes_unallocated_and_ends_where_the_stream_does(tmp_path):
    path = tmp_path / 'volume'
    path.write_bytes(b'QFI\xfb' + bytes(64 * KiB))  # what libvirt wrote on creation goes
    data = os.urandom(BLOCK)
    fd = os.open(str(path), os.O_RDWR)
    try:
        writer = feed(SparseWriter(fd, digest=ContentDigest()), [64 * BLOCK, data, 64 * BLOCK])
        assert writer.finish() == 129 * BLOCK
        received = writer.digest.hexdigest()
    finally:
        os.close(fd)
    content = path.read_bytes()
    assert len(content) == 129 * BLOCK and content[64 * BLOCK:65 * BLOCK] == data
    assert content[:4] == bytes(4), 'the old header stayed'
    assert os.stat(str(path)).st_blocks * 512 <= 2 * BLOCK, 'a hole was written'
    assert received == digest([bytes(64 * BLOCK), data, bytes(64 * BLOCK)])
