# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A volume's bytes through a libvirt download stream: the whole volume (sparse), or a byte range.

The only code that opens libvirt streams. A sparse download hands the
receiver data chunks and hole lengths, one chunk of at most libvirt's stream
buffer (256 KiB) at a time, so memory stays bounded whatever the volume's
size. libvirt's errors become StoragePoolsError naming the option at fault;
whatever else a receiver raises aborts the stream and goes on up unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._libvirt.connection import error_text, libvirt

if TYPE_CHECKING:  # annotations only: nothing more is imported at run time
    from collections.abc import Callable

CHUNK = 262120  # libvirt's stream buffer (virStorageVol.streamBufSize): one RPC message of data
RECV_HOLE = -3  # recvFlags' answer at a hole (VIR_STREAM_RECV_STOP_AT_HOLE)


def volume_sizes(volume: libvirt.virStorageVol, option: str) -> tuple[int, int, int]:
    """(capacity, allocation, physical) of ``volume`` as libvirt reports them now (physical: the bytes a
    download streams, the file's or device's size)."""
    try:
        _kind, capacity, allocation = volume.info()
        physical = volume.infoFlags(libvirt.VIR_STORAGE_VOL_GET_PHYSICAL)[2]
    except libvirt.libvirtError as exc:
        raise StoragePoolsError("%s: reading the size of volume '%s' failed" % (option, _name(volume)),
                                libvirt_error=error_text(exc))
    return capacity, allocation, physical


def _name(volume):
    try:
        return volume.name()
    except libvirt.libvirtError:
        return '?'


def _abort(stream):
    try:
        stream.abort()
    except libvirt.libvirtError:
        pass  # already broken: nothing left to release


def receive(conn: libvirt.virConnect, volume: libvirt.virStorageVol, on_data: Callable[[bytes], object],
            on_hole: Callable[[int], object], option: str) -> None:
    """Download the whole of ``volume`` through ``conn`` as a sparse stream: ``on_data(chunk)`` for each data
    chunk, ``on_hole(length)`` for each hole, in order."""
    stream = None
    try:
        stream = conn.newStream(0)
        volume.download(stream, 0, 0, libvirt.VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM)
        while True:
            got = stream.recvFlags(CHUNK, libvirt.VIR_STREAM_RECV_STOP_AT_HOLE)
            if got == RECV_HOLE:
                on_hole(stream.recvHole(0))
                continue
            if isinstance(got, int):  # -2 (would block) cannot happen on a blocking stream
                raise StoragePoolsError('%s: the download stream of %s answered %d' % (option, _name(volume), got))
            if not got:
                break
            on_data(got)
        stream.finish()
    except libvirt.libvirtError as exc:
        if stream is not None:
            _abort(stream)
        raise StoragePoolsError("%s: downloading volume '%s' failed" % (option, _name(volume)),
                                libvirt_error=error_text(exc))
    except BaseException:
        if stream is not None:
            _abort(stream)
        raise


def read_range(conn: libvirt.virConnect, volume: libvirt.virStorageVol, offset: int, length: int,
               option: str) -> bytes:
    """``length`` bytes of ``volume`` from ``offset`` (fewer at its end), downloaded through ``conn``."""
    chunks = []
    stream = None
    try:
        stream = conn.newStream(0)
        volume.download(stream, offset, length, 0)
        while True:
            got = stream.recv(CHUNK)
            if isinstance(got, int):
                raise StoragePoolsError('%s: the download stream of %s answered %d' % (option, _name(volume), got))
            if not got:
                break
            chunks.append(got)
        stream.finish()
    except libvirt.libvirtError as exc:
        if stream is not None:
            _abort(stream)
        raise StoragePoolsError("%s: reading %d bytes at %d of volume '%s' failed"
                                % (option, length, offset, _name(volume)), libvirt_error=error_text(exc))
    return b''.join(chunks)


class VolumeReader:
    """A read-only file-like view (seek, tell, read) of ``size`` bytes of ``volume``, each read a ranged
    download: what image inspection reads of a volume on another host (its header, a footer)."""

    def __init__(self, conn: libvirt.virConnect, volume: libvirt.virStorageVol, size: int, option: str) -> None:
        self.conn = conn
        self.volume = volume
        self.size = size
        self.option = option
        self.position = 0

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.position, 2: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def tell(self) -> int:
        return self.position

    def read(self, count: int = -1) -> bytes:
        end = self.size if count is None or count < 0 else min(self.size, self.position + count)
        if end <= self.position:
            return b''
        data = read_range(self.conn, self.volume, self.position, end - self.position, self.option)
        self.position += len(data)
        return data
