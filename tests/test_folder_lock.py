"""One run per output folder (``FolderLock``), with lock files that have other names: a folder copied with
``cp -al`` or snapshotted with ``rsync --link-dest`` (its ``.lock`` then has two names), or a hard link planted to
have the file it names emptied."""
from __future__ import annotations

import os

import pytest

from rls_lightning.folder_lock import FolderBusy, FolderLock


def test_a_live_runs_lock_holds_after_a_snapshot_gave_it_another_name(tmp_path):
    """Made anew only once no run holds it: a second run on the folder is refused while the first works, though
    the lock file now has two names."""
    first = FolderLock(tmp_path / "out").acquire()
    (tmp_path / "snap").mkdir()
    os.link(tmp_path / "out" / ".lock", tmp_path / "snap" / ".lock")  # cp -al out snap, while the run works
    try:
        with pytest.raises(FolderBusy, match=f"in use by another run \\(process {os.getpid()}\\)"):
            FolderLock(tmp_path / "out").acquire()
        with pytest.raises(FolderBusy, match="in use by another run"):
            FolderLock(tmp_path / "snap").acquire()  # the snapshot's run would write into a copy of a live folder
    finally:
        first.release()


def test_a_lock_file_with_other_names_is_made_anew_and_they_keep_their_file(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "notes.txt").write_text("the user's file")
    os.link(tmp_path / "notes.txt", tmp_path / "out" / ".lock")  # planted, to have the lock empty it
    with FolderLock(tmp_path / "out"):
        assert (tmp_path / "notes.txt").read_text() == "the user's file"
        assert os.stat(tmp_path / "notes.txt").st_nlink == 1 and os.stat(tmp_path / "out" / ".lock").st_nlink == 1
        assert (tmp_path / "out" / ".lock").read_text() == str(os.getpid())
        with FolderLock(tmp_path / "elsewhere"):  # another folder, another lock
            pass
        with pytest.raises(FolderBusy, match="in use by another run"):
            FolderLock(tmp_path / "out").acquire()
