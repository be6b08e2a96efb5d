# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one builder and runner of qemu-img command lines.

Every format is passed explicitly (``-f``, ``-O``, ``-F``): qemu-img never
probes what a guest or an image wrote. Files this process opened itself are
named ``/proc/self/fd/N`` (or a ``json:`` filename of such descriptors,
``pinned_image``), so qemu opens no path a header names.
"""

from __future__ import annotations

import functools
import json
import os
import re
import tempfile
from typing import TYPE_CHECKING

from ansible_collections.storagepools.libvirt.plugins.module_utils._core import command
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.atomic_file import flush
from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError
from ansible_collections.storagepools.libvirt.plugins.module_utils._images.inspect import read_qcow2_overlay

if TYPE_CHECKING:  # annotations only: nothing more is imported at run time
    from collections.abc import Callable, Sequence


def run(argv: Sequence[str], option: str, size: int = 0, pass_fds: Sequence[int] = ()) -> str:
    """Run qemu-img (never with a secret in ``argv``) with a timeout scaled to ``size``, the bytes it moves;
    its stdout, or StoragePoolsError naming ``option`` with qemu-img's own words (stderr, else stdout).

    ``pass_fds``: descriptors the tool inherits, for the ``/proc/self/fd/N`` paths in ``argv``."""
    proc = command.run(argv, option, size=size, pass_fds=pass_fds)
    if proc.returncode != 0:
        raise StoragePoolsError('%s: %s failed' % (option, ' '.join(argv[:2])),
                                libvirt_error=(proc.stderr or proc.stdout).strip())
    return proc.stdout


def pinned_image(fd: int, image_format: str, backing: tuple[int, str] | None = None) -> tuple[str, tuple[int, ...]]:
    """(qemu filename, descriptors to pass) for an image this process opened itself: qemu reaches the file,
    and an overlay's base (``backing``: (descriptor, format)), through our descriptors with both formats
    explicit, so it opens no path that a header names or that someone swapped since we opened it."""
    spec = {'driver': image_format, 'file': {'driver': 'file', 'filename': '/proc/self/fd/%d' % fd}}
    fds = [fd]
    if backing is not None:
        spec['backing'] = {'driver': backing[1],
                           'file': {'driver': 'file', 'filename': '/proc/self/fd/%d' % backing[0]}}
        fds.append(backing[0])
    return 'json:' + json.dumps(spec, sort_keys=True), tuple(fds)


def convert_argv(source: str, source_format: str, target: str, target_format: str,
                 target_is_zero: bool = False) -> list[str]:
    """``qemu-img convert`` into an existing ``target`` (``-n``: the volume its backend made), both formats
    explicit. ``target_is_zero``: the target is known to read as zeroes, so holes stay unallocated."""
    argv = ['qemu-img', 'convert', '-n']
    if target_is_zero:
        argv.append('--target-is-zero')
    return argv + ['-f', source_format, '-O', target_format, source, target]


def convert(source: str, source_format: str, target: str, target_format: str, option: str, size: int = 0,
            pass_fds: Sequence[int] = (), target_is_zero: bool = False,
            progress: Callable[[int], object] | None = None) -> None:
    """Write ``source`` into the existing ``target`` (convert_argv); ``size``: the bytes it moves (the source's
    virtual size). ``progress(bytes)``: called with qemu-img's own progress (``-p``) as that share of ``size``."""
    argv = convert_argv(source, source_format, target, target_format, target_is_zero)
    on_output = None
    if progress is not None:
        argv.insert(2, '-p')
        on_output = functools.partial(_report_percent, progress, size)
    proc = command.run(argv, option, size=size, pass_fds=pass_fds, on_output=on_output)
    if proc.returncode != 0:
        raise StoragePoolsError('%s: %s failed' % (option, ' '.join(argv[:2])),
                                libvirt_error=(proc.stderr or _without_meter(proc.stdout)).strip())


PERCENT = re.compile(r'\(\s*([0-9]+(?:\.[0-9]+)?)/100%\)')


def _report_percent(progress, size, output):
    """The last ``(12.34/100%)`` of a piece of ``qemu-img -p`` output, as bytes of ``size``."""
    found = PERCENT.findall(output)
    if found:
        progress(min(int(size * float(found[-1]) / 100), size))


def _without_meter(stdout):
    return PERCENT.sub('', stdout).replace('\r', '')


def compare_argv(first: str, first_format: str, second: str, second_format: str) -> list[str]:
    return ['qemu-img', 'compare', '-q', '-f', first_format, '-F', second_format, first, second]


def same_content(first: str, first_format: str, second: str, second_format: str, option: str, size: int = 0,
                 pass_fds: Sequence[int] = ()) -> bool:
    """Whether two images read the same (``qemu-img compare``, formats explicit): True or False, or
    StoragePoolsError naming ``option`` when qemu-img could not compare them at all."""
    argv = compare_argv(first, first_format, second, second_format)
    proc = command.run(argv, option, size=size, pass_fds=pass_fds)
    if proc.returncode in (0, 1):
        return proc.returncode == 0
    raise StoragePoolsError('%s: %s failed' % (option, ' '.join(argv[:2])),
                            libvirt_error=(proc.stderr or proc.stdout).strip())


def write_file(source: str, size: int, fd: int, target_format: str, option: str,
               backing: tuple[int, str, str] | None = None, pass_fds: Sequence[int] = ()) -> None:
    """Write the first ``size`` bytes of the raw image ``source`` (qemu's filename of it: a path or a protocol
    filename such as qemu's rbd one, reached with ``pass_fds``) as a new image of ``target_format`` into the
    empty file this process holds open at ``fd``: raw, a standalone qcow2, or with ``backing`` (descriptor of
    the base, the path its header names, its format) a qcow2 overlay holding only the clusters where
    ``source`` differs from that base. Holes stay holes; fsync'ed.

    qemu reads ``source`` through a view: an empty qcow2 overlay of ``size`` bytes on it, in an unlinked file
    of our own (qemu parses a protocol filename only where it is a backing file name, and an image larger
    than the disk, an LV of whole extents, is cut to the disk's size). The target and the base are reached
    through our descriptors."""
    target = '/proc/self/fd/%d' % fd
    with tempfile.TemporaryFile() as view:
        fds = (fd, view.fileno()) + tuple(pass_fds)
        run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-u', '-b', source, '-F', 'raw',
             '/proc/self/fd/%d' % view.fileno(), str(size)], option, pass_fds=fds)
        view_spec = {'driver': 'qcow2', 'file': {'driver': 'file', 'filename': '/proc/self/fd/%d' % view.fileno()}}
        read = 'json:' + json.dumps(view_spec, sort_keys=True)
        if target_format == 'raw':
            os.ftruncate(fd, size)
        elif backing is None:
            run(['qemu-img', 'create', '-q', '-f', 'qcow2', target, str(size)], option, pass_fds=fds)
        if backing is None:
            convert(read, 'qcow2', target, target_format, option, size=size, pass_fds=fds, target_is_zero=True)
        else:
            # a safe rebase from the view (the overlay's backing for this command only) onto the base writes
            # exactly the clusters where the two differ; then the header names the base by its path, not our fd
            base_fd, base_path, base_format = backing
            run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-u', '-b', base_path, '-F', base_format, target,
                 str(size)], option, pass_fds=fds)
            overlay = {'driver': 'qcow2', 'file': {'driver': 'file', 'filename': target},
                       'backing': view_spec}
            run(['qemu-img', 'rebase', '-f', 'qcow2', '-b', '/proc/self/fd/%d' % base_fd, '-F', base_format,
                 'json:' + json.dumps(overlay, sort_keys=True)], option, size=size, pass_fds=fds + (base_fd,))
            run(['qemu-img', 'rebase', '-u', '-f', 'qcow2', '-b', base_path, '-F', base_format, target], option,
                pass_fds=fds)
    os.fsync(fd)


def set_backing_format(path: str, backing: str, backing_format: str, option: str) -> None:
    """Write the backing format into a qcow2 overlay's header (``qemu-img rebase -u``: the header only,
    the base stays where it is), so nothing ever probes the base."""
    run(['qemu-img', 'rebase', '-u', '-f', 'qcow2', '-b', backing, '-F', backing_format, path], option=option)
    flush(path)


def virtual_size(path: str, disk_format: str, fd: int | None = None) -> int:
    """A disk's virtual size: a qcow2 container's header says it, a raw file is its size (never probed).

    ``fd``: the file already open (``path`` then only names it)."""
    if disk_format == 'qcow2':
        return read_qcow2_overlay(path, fd=fd)[0]
    return os.fstat(fd).st_size if fd is not None else os.stat(path).st_size
