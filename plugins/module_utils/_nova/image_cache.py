# -*- coding: utf-8 -*-
# Copyright (c) storagepools.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Nova's image cache rules as Nova 34 has them (nova/virt/libvirt/imagecache.py, nova/virt/imagecache.py).

- A cached image is ``_base/<sha1(image id)>`` (get_cache_fname); a resized copy is ``<sha1>_<GiB>``.
- Nova's ImageCacheManager scans ``_base``: a 40-character name is an *original*, a name of more than 42
  characters with ``_`` after the 40th a *resized* base (so never ``<sha1>_<one digit>``), ``swap_<MiB>`` and ``ephemeral_<GiB>_<7 chars>`` are swap and
  ephemeral bases (which its block device mappings decide).
- A base is in use when it is the fingerprint (or ``<fp>_sm``, ``<fp>_<digits>``) of an image id of an
  instance (image_ref, kernel_id, ramdisk_id), or the backing file of an instance directory's ``disk``.
- An unused base is removed once its mtime is older than ``remove_unused_original_minimum_age_seconds``
  (originals, swap, ephemeral; default 86400) or ``remove_unused_resized_minimum_age_seconds`` (resized;
  default 3600); Nova touches the bases in use on every pass, so the mtime is its last-used clock.
- Nova takes ``<instances_path>/locks/nova-<base name>`` (oslo.concurrency's external lock: a POSIX
  ``lockf`` on the file, opened for appending) to create or remove a base; NovaBaseLock takes the same.

tests/integration/test_nova_image_cache_rules.py runs Nova's own code against these rules.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import stat
import time
from typing import TYPE_CHECKING

from ansible_collections.storagepools.libvirt.plugins.module_utils._core.errors import StoragePoolsError

if TYPE_CHECKING:  # annotations only: nothing more is imported at run time
    from typing import Any, Iterable

    from ansible_collections.storagepools.libvirt.plugins.module_utils._nova.layout import NovaConf

ORIGINAL_MIN_AGE = 86400  # remove_unused_original_minimum_age_seconds
RESIZED_MIN_AGE = 3600  # remove_unused_resized_minimum_age_seconds
LOCKS_DIR = 'locks'  # under instances_path, shared with the instance files (imagebackend.Image.lock_path)
LOCK_PREFIX = 'nova-'  # nova.utils.synchronized = lockutils.synchronized_with_prefix('nova-')
NOVA_METADATA_NS = 'http://openstack.org/xmlns/libvirt/nova/1.1'
_DIGEST_LEN = 40  # hashlib.sha1().digest_size * 2

ORIGINAL, RESIZED, SWAP, EPHEMERAL = 'original', 'resized', 'swap', 'ephemeral'


def cache_fname(image_id: str) -> str:
    """The ``_base`` name of image ``image_id`` (nova.virt.libvirt.imagecache.get_cache_fname)."""
    return hashlib.sha1(image_id.encode('utf-8')).hexdigest()


def scanned_kind(name: str) -> str | None:
    """What Nova's _scan_base_images takes ``name`` in ``_base`` for: ORIGINAL, RESIZED, SWAP, EPHEMERAL, or
    None (a name its manager never removes). Nova goes by length: any 40 characters are an original, and a
    resized name must be longer than 42 characters, so ``<sha1>_<one digit>`` is never scanned."""
    if len(name) == _DIGEST_LEN:
        return ORIGINAL
    if len(name) > _DIGEST_LEN + 2 and name[_DIGEST_LEN] == '_':
        return RESIZED
    parts = name.split('_')
    if len(parts) == 2 and parts[0] == 'swap' and parts[1].isdigit():
        return SWAP
    if len(parts) == 3 and parts[0] == 'ephemeral' and parts[1].isdigit() and len(parts[2]) == 7:
        return EPHEMERAL
    return None


_NAME_KINDS = ((re.compile(r'^[0-9a-f]{40}$'), ORIGINAL), (re.compile(r'^[0-9a-f]{40}_[0-9]+$'), RESIZED),
               (re.compile(r'^swap_[0-9]+$'), SWAP), (re.compile(r'^ephemeral_[0-9]+_[0-9a-f]+$'), EPHEMERAL))


def name_kind(name: str) -> str | None:
    """What Nova names a base ``name`` for (_nova/layout.BASE_NAME_RE): ORIGINAL ``<sha1>``, RESIZED
    ``<sha1>_<GiB>``, SWAP ``swap_<MiB>``, EPHEMERAL ``ephemeral_<GiB>_<hash>``; None: no base's name."""
    for pattern, kind in _NAME_KINDS:
        if pattern.match(name):
            return kind
    return None


def min_age(kind: str, original_age: float = ORIGINAL_MIN_AGE, resized_age: float = RESIZED_MIN_AGE) -> float:
    """The age an unused base of ``kind`` must reach before Nova removes it (resized: the resized age, any
    other: the original age, as _remove_base_file, _remove_swap_file and _remove_ephemeral_file have it)."""
    return resized_age if kind == RESIZED else original_age


def image_base(name: str, fingerprints: Iterable[str]) -> str | None:
    """The fingerprint in ``fingerprints`` whose base ``name`` is (Nova's _find_base_file: ``<fp>``,
    ``<fp>_sm``, ``<fp>_<digits>``), or None."""
    fingerprint = name[:_DIGEST_LEN]
    if fingerprint not in set(fingerprints):
        return None
    rest = name[_DIGEST_LEN:]
    if rest in ('', '_sm') or re.match(r'^_[0-9]+$', rest):
        return fingerprint
    return None


class NovaRules:
    """Whether Nova's own ImageCacheManager (libvirt driver) removes a ``_base`` file, given the host's use.

    ``image_ids``: image_ref, kernel_id and ramdisk_id of the instances Nova passes its manager (every
    instance of the hosts sharing the instances_path); ``disk_backings``: the base names the ``disk`` file of
    an instance directory backs onto (Nova reads only ``disk``); ``bdm_bases``: the swap/ephemeral base names
    the instances' block device mappings use, or None when they are not known (Nova's database): swap and
    ephemeral bases are then never taken for removable. ``remove_unused_base_images``, the ages: nova.conf's
    ``[image_cache]``."""

    def __init__(self, image_ids: Iterable[str], disk_backings: Iterable[str] = (),
                 bdm_bases: Iterable[str] | None = None, original_age: float = ORIGINAL_MIN_AGE,
                 resized_age: float = RESIZED_MIN_AGE, remove_unused_base_images: bool = True) -> None:
        self.fingerprints = set(cache_fname(image_id) for image_id in image_ids if image_id)
        self.disk_backings = set(disk_backings)
        self.bdm_bases = None if bdm_bases is None else set(bdm_bases)
        self.original_age = original_age
        self.resized_age = resized_age
        self.remove_unused_base_images = remove_unused_base_images

    def in_use(self, name: str) -> str | None:
        """Why Nova takes base ``name`` for in use (words an operator reads), or None."""
        kind = scanned_kind(name) or name_kind(name)
        if kind in (SWAP, EPHEMERAL):
            if self.bdm_bases is None:
                return "Nova decides %s bases from block device mappings, which are not known here" % kind
            return 'a block device mapping of an instance uses it' if name in self.bdm_bases else None
        if image_base(name, self.fingerprints):
            return "an instance's image id hashes to it (Nova's in-use rule)"
        if name in self.disk_backings:
            return "an instance's disk backs onto it"
        return None

    def min_age(self, name: str) -> float:
        """The age Nova wants of unused base ``name`` (by its scan for a name it scans, else by the name)."""
        return min_age(scanned_kind(name) or name_kind(name), self.original_age, self.resized_age)

    def why_kept(self, name: str, age: float) -> str | None:
        """None when Nova's manager removes the unused base ``name`` whose mtime is ``age`` seconds old, else
        why it keeps it."""
        if not self.remove_unused_base_images:
            return 'nova.conf sets remove_unused_base_images=False: Nova keeps every base'
        kind = scanned_kind(name)
        if kind is None:
            return "Nova's manager does not scan this name as a base (_scan_base_images), so never removes it"
        used = self.in_use(name)
        if used:
            return used
        wanted = self.min_age(name)
        if age < wanted:
            return 'unused for %ds, younger than Nova\'s %ds for %s bases' % (age, wanted, kind)
        return None

    def removes(self, name: str, age: float) -> bool:
        return self.why_kept(name, age) is None


def _bool(value: str) -> bool:
    return value.strip().lower() in ('1', 'true', 'yes', 'on')


def conf_settings(nova_conf: NovaConf) -> dict:
    """nova.conf's image cache settings ([image_cache], then their deprecated [DEFAULT] names; Nova's
    defaults): remove_unused_base_images, remove_unused_original/resized_minimum_age_seconds,
    subdirectory_name. Raises StoragePoolsError naming nova_conf for a value that is not a number."""
    settings = {}
    defaults = (('remove_unused_base_images', 'true', _bool),
                ('remove_unused_original_minimum_age_seconds', str(ORIGINAL_MIN_AGE), int),
                ('remove_unused_resized_minimum_age_seconds', str(RESIZED_MIN_AGE), int))
    for key, default, kind in defaults:
        value = nova_conf.get('image_cache', key, nova_conf.get('DEFAULT', key, default))
        try:
            settings[key] = kind(value)
        except ValueError:
            raise StoragePoolsError('nova_conf: %s sets %s = %r, not a number' % (nova_conf.path, key, value))
    settings['subdirectory_name'] = nova_conf.get('image_cache', 'subdirectory_name',
                                                  nova_conf.get('DEFAULT', 'image_cache_subdirectory_name', '_base'))
    return settings


def domain_image_ids(document: Any) -> set:
    """The image ids Nova wrote into a domain's metadata (``<nova:root type="image" uuid=...>``) of a
    DomainDocument (_xml/domain.py); Nova keeps kernel_id and ramdisk_id only in its database."""
    found = set()
    for root in document.root.iter('{%s}root' % NOVA_METADATA_NS):
        if root.get('type') == 'image' and root.get('uuid'):
            found.add(root.get('uuid'))
    return found


def lock_name(base_name: str) -> str:
    """The file name of Nova's lock for base ``base_name`` (lockutils._get_lock_path with prefix 'nova-')."""
    return LOCK_PREFIX + base_name.replace(os.sep, '_')


class NovaBaseLock:
    """Nova's external lock for one base, held while a base is removed (Nova holds it while it creates or
    removes the same base): ``<instances_path>/locks/nova-<base>``, a POSIX lockf as oslo.concurrency takes.

    The nova user owns ``locks``: the directory is opened without following a symlink, and the lock file
    through it with O_NOFOLLOW, never truncated, and refused unless a regular file, so a planted symlink, FIFO
    or device makes no file elsewhere and opens nothing. A lock file (or ``locks``) this process creates is
    given to the owner of ``instances_path`` (Nova opens it for appending as its own user). ``timeout``:
    seconds to wait for Nova to let go (StoragePoolsError naming ``option`` then)."""

    def __init__(self, instances_path: str, base_name: str, timeout: float = 60, option: str = 'instances_path'
                 ) -> None:
        self.instances_path = instances_path
        self.name = lock_name(base_name)
        self.path = os.path.join(instances_path, LOCKS_DIR, self.name)
        self.timeout = timeout
        self.option = option
        self.fd = None

    def _refuse(self, what: str):
        raise StoragePoolsError("%s: Nova's lock %s %s; the base is left alone" % (self.option, self.path, what))

    def _locks_dir(self, top: int, owner: os.stat_result) -> int:
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            os.mkdir(LOCKS_DIR, 0o755, dir_fd=top)
            made = True
        except FileExistsError:
            made = False
        try:
            fd = os.open(LOCKS_DIR, flags, dir_fd=top)
        except OSError as exc:
            self._refuse('cannot be reached: %s is %s' % (
                os.path.dirname(self.path), 'a symlink' if exc.errno in (errno.ELOOP, errno.ENOTDIR) else exc.strerror))
        if made:
            os.fchown(fd, owner.st_uid, owner.st_gid)
        return fd

    def _open(self) -> int:
        top = os.open(self.instances_path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # the operator's path
        try:
            owner = os.fstat(top)
            locks = self._locks_dir(top, owner)
        finally:
            os.close(top)
        try:
            flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
            try:
                fd = os.open(self.name, flags | os.O_EXCL, 0o644, dir_fd=locks)
                os.fchown(fd, owner.st_uid, owner.st_gid)
            except FileExistsError:
                fd = os.open(self.name, flags, 0o644, dir_fd=locks)
        except OSError as exc:
            self._refuse('is a symlink' if exc.errno == errno.ELOOP else 'cannot be opened: %s' % exc.strerror)
        finally:
            os.close(locks)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            self._refuse('is not a regular file')
        return fd

    def acquire(self) -> None:
        fd = self._open()
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() >= deadline:
                    os.close(fd)
                    self._refuse('is held (Nova is creating or removing the base) for longer than %ds'
                                 % self.timeout if exc.errno in (errno.EAGAIN, errno.EACCES)
                                 else 'cannot be locked: %s' % exc.strerror)
                time.sleep(0.1)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the POSIX lock
            self.fd = None

    def __enter__(self) -> NovaBaseLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.release()


def mtime_age(found: os.stat_result, now: float | None = None) -> float:
    """The age Nova gives a base file (_get_age_of_file: now - mtime); ``found``: its stat as opened."""
    return (time.time() if now is None else now) - found.st_mtime
