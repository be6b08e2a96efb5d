# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Replacing one name in a directory atomically, also where another user owns the directory.

The nova user owns instance directories and can plant a symlink (or a file)
at any name in them, so no temporary name here is predictable and each is
made with O_EXCL semantics: ``open(O_CREAT|O_EXCL|O_NOFOLLOW)``, ``symlink``
and ``link`` all fail on an existing name, and another random name is tried.
Nothing is ever written, chmod'ed or chown'ed through a name; the new file is
written through the descriptor that made it. The temporary is renamed over
the final name (a symlink there is replaced itself, its target untouched),
and the directory is fsync'ed. Every step is relative to one descriptor of
the directory, so a directory renamed meanwhile cannot split the steps.

Callers hold the host lock: a leftover temporary of the same final name (a
run killed between making and renaming it) is removed before a new one.
"""

from __future__ import annotations

import os
import re
import secrets

SUFFIX = '.spl-tmp'
ATTEMPTS = 64


def _temporary_pattern(name):
    return re.compile(r'\.%s\.[0-9a-f]{16}%s\Z' % (re.escape(name), re.escape(SUFFIX)))


def _discard(dir_fd, name):
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass


def _remove_leftovers(dir_fd, name):
    pattern = _temporary_pattern(name)
    for entry in os.listdir(dir_fd):
        if pattern.match(entry):
            _discard(dir_fd, entry)  # unlink never follows a symlink


def _make_unique(dir_fd, name, make):
    """``make(temporary)`` under a fresh random name next to ``name``; (temporary, what make returned)."""
    _remove_leftovers(dir_fd, name)
    for _attempt in range(ATTEMPTS):
        temporary = '.%s.%s%s' % (name, secrets.token_hex(8), SUFFIX)
        try:
            return temporary, make(temporary)
        except FileExistsError:
            continue  # somebody made that name first: never reuse it
    raise FileExistsError('no free temporary name next to %s after %d attempts' % (name, ATTEMPTS))


def _replace(path, make, dir_fd=None):
    """Make a temporary next to ``path`` with ``make(dir_fd, temporary)``, rename it over ``path``, fsync.

    ``dir_fd``: the directory of ``path`` as the caller opened it (e.g. without following a symlink); else
    it is opened here by name."""
    directory, name = os.path.split(path)
    own = dir_fd is None
    if own:
        dir_fd = os.open(directory or '.', os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        temporary, _made = _make_unique(dir_fd, name, lambda temporary: make(dir_fd, temporary))
        try:
            os.rename(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            _discard(dir_fd, temporary)
            raise
        os.fsync(dir_fd)
    finally:
        if own:
            os.close(dir_fd)


def _owner_of(path, dir_fd=None):
    """(uid, gid) of what is at ``path`` itself (a symlink's own owner, never its target's), or None."""
    try:
        info = os.lstat(os.path.basename(path), dir_fd=dir_fd) if dir_fd is not None else os.lstat(path)
    except FileNotFoundError:
        return None
    return info.st_uid, info.st_gid


def write_atomically(path: str, data: bytes, mode: int = 0o644, owner_like: str | None = None,
                     dir_fd: int | None = None) -> None:
    """Replace ``path`` with a new file holding ``data`` (bytes), mode ``mode``, fsync'ed.

    ``owner_like``: a path whose owner and group the new file takes (read with lstat, so a symlink planted
    there lends only its own owner); usually ``path`` itself, so the file keeps the owner it had.
    """
    owner = None
    if owner_like is not None:
        same_directory = dir_fd is not None and os.path.dirname(owner_like) == os.path.dirname(path)
        owner = _owner_of(owner_like, dir_fd if same_directory else None)

    def make(dir_fd, temporary):
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=dir_fd)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if owner is not None:
                os.fchown(fd, *owner)
            os.fchmod(fd, mode)  # after fchown, which may clear set-id bits
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            _discard(dir_fd, temporary)
            raise
        os.close(fd)

    _replace(path, make, dir_fd)


def symlink_atomically(target: str, path: str, dir_fd: int | None = None) -> None:
    """Replace ``path`` with a symlink to ``target``."""
    _replace(path, lambda dir_fd, temporary: os.symlink(target, temporary, dir_fd=dir_fd), dir_fd)


def link_atomically(source: int | str, path: str, dir_fd: int | None = None) -> None:
    """Replace ``path`` with a hard link to ``source``: an open descriptor (linked through /proc/self/fd, so
    the file checked is the file linked), or a path whose own name is linked (a symlink there is not
    followed). ``dir_fd``: the directory of ``path`` as the caller opened it."""
    if isinstance(source, int):
        _replace(path, lambda dir_fd, temporary: os.link('/proc/self/fd/%d' % source, temporary,
                                                         dst_dir_fd=dir_fd, follow_symlinks=True), dir_fd)
    else:
        _replace(path, lambda dir_fd, temporary: os.link(source, temporary, dst_dir_fd=dir_fd,
                                                         follow_symlinks=False), dir_fd)


def make_temporary(path: str, dir_fd: int) -> tuple[str, int]:
    """A new empty file (0600, O_EXCL, never through a symlink) under a random name next to ``path`` in the
    directory ``dir_fd``: (its name, its descriptor, open for writing). rename_into_place puts it at ``path``."""
    name = os.path.basename(path)
    return _make_unique(dir_fd, name, lambda temporary: os.open(
        temporary, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd))


def rename_into_place(temporary: str, path: str, dir_fd: int) -> None:
    """Rename ``temporary`` (of make_temporary) over ``path`` in ``dir_fd`` (a symlink there is replaced
    itself), then fsync the directory."""
    os.rename(temporary, os.path.basename(path), src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    os.fsync(dir_fd)


def discard_temporary(temporary: str, dir_fd: int) -> None:
    """Remove a temporary of make_temporary (gone already: nothing to do)."""
    _discard(dir_fd, temporary)


def flush(path: str) -> None:
    """fsync a file, block device or directory (the names made in it).

    Needed after another process wrote: qemu-img (convert, rebase; ours or libvirt's) writes with cache
    mode "unsafe" and never flushes, so its output may still be only in the page cache when it exits."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
