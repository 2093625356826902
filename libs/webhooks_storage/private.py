"""Files at rest readable by their owner only: the data dir 0700, every file in it 0600.

The data dir holds the SQLite stores (sealed secrets, payloads of failed deliveries), the
key files that open those secrets, the tokens file and NATS's store: nothing in it is for
other users of the machine. ``webhooks up`` and ``webhooks serve`` set the umask
(``keep_private``), so whatever they and their children (nats-server, SQLite's -wal and
-shm) create is private from the start, and ``tighten`` what an older version left group-
or world-readable.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077
DIRECTORY_MODE = 0o700
FILE_MODE = 0o600


def use_private_umask() -> None:
    """From now on this process and its children create files for their owner only."""
    os.umask(PRIVATE_UMASK)


def keep_private(data_dir: Path) -> None:
    """For ``up`` and ``serve``: what this process and its children create is private, and
    so is what an older version left in ``data_dir``."""
    use_private_umask()
    tighten(data_dir)


def make_private(path: Path) -> None:
    """``path`` (a file or a directory, not followed when a link) without group or other
    permissions; one this process does not own, or that went away, is left alone."""
    with contextlib.suppress(FileNotFoundError, PermissionError):
        found = path.lstat()
        if stat.S_ISLNK(found.st_mode) or found.st_uid != os.geteuid():
            return
        if found.st_mode & 0o077:
            os.chmod(path, stat.S_IMODE(found.st_mode) & ~0o077, follow_symlinks=False)


def tighten(data_dir: Path) -> None:
    """The data dir and everything under it made private (see ``make_private``)."""
    if not data_dir.is_dir():
        return
    make_private(data_dir)
    for root, directories, files in os.walk(data_dir):
        for name in (*directories, *files):
            make_private(Path(root) / name)


def write_private(path: Path, text: str) -> None:
    """A new file holding ``text``, mode 0600 whatever the umask; fails if it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(fd, "w") as out:
        out.write(text)
