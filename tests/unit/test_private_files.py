"""The data dir made private (issue 11): ``tighten`` takes group and other permissions off
every directory and file under it, leaves symlinks' targets alone, and a new SQLite store
is owner-only with its -wal and -shm whatever the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from webhooks_storage import SQLiteConnector, tighten


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_tighten_makes_everything_owner_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "nats" / "jetstream").mkdir(parents=True)
    files = [data / "failures.sqlite", data / "nats.log", data / "nats" / "jetstream" / "meta"]
    for path in files:
        path.write_text("x")
        path.chmod(0o644)
    script = data / "hook.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours to change")
    outside.chmod(0o644)
    (data / "link").symlink_to(outside)
    for directory in (data, data / "nats", data / "nats" / "jetstream"):
        directory.chmod(0o755)

    tighten(data)

    assert [mode(p) for p in files] == [0o600] * 3
    assert mode(script) == 0o700  # the owner keeps what it had
    assert [mode(d) for d in (data, data / "nats", data / "nats" / "jetstream")] == [0o700] * 3
    assert mode(outside) == 0o644, "a link is not followed out of the data dir"
    tighten(tmp_path / "missing")  # nothing there: nothing to do


def test_a_new_sqlite_store_is_owner_only_under_any_umask(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        store = SQLiteConnector(tmp_path / "view.sqlite")
        with store.transaction() as cursor:
            cursor.execute("CREATE TABLE t (x INTEGER)")
            cursor.execute("INSERT INTO t VALUES (1)")
        made = sorted(p.name for p in tmp_path.iterdir())
        assert made == ["view.sqlite", "view.sqlite-shm", "view.sqlite-wal"]
        assert {p.name: mode(p) for p in tmp_path.iterdir()} == dict.fromkeys(made, 0o600)
        store.close()
    finally:
        os.umask(previous)
