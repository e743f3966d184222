"""Writing outputs through a temporary path: a failure never leaves a finished-looking file."""

from __future__ import annotations

import pytest

from iae_pipeline.files import remove, staged


def test_staged_renames_only_on_success(tmp_path):
    dest = tmp_path / "out" / "table.tsv"
    with staged(dest, suffix=".part.tsv") as tmp:
        assert tmp.name.endswith(".part.tsv") and tmp.parent == dest.parent
        tmp.write_text("a\tb\n")
        assert not dest.exists()
    assert dest.read_text() == "a\tb\n"
    with pytest.raises(RuntimeError), staged(dest) as tmp:
        tmp.write_text("half")
        raise RuntimeError("the writer failed")
    assert dest.read_text() == "a\tb\n"  # the old output is untouched
    assert sorted(p.name for p in dest.parent.iterdir()) == ["table.tsv"]  # no leftovers


def test_staged_directories_replace_the_old_one_and_remove_deletes_trees(tmp_path):
    dest = tmp_path / "model"
    for content in ("first", "second"):
        with staged(dest) as tmp:
            tmp.mkdir()
            (tmp / "weights").write_text(content)
    assert (dest / "weights").read_text() == "second"
    remove(dest)
    remove(tmp_path / "missing")  # absent: nothing to do
    assert list(tmp_path.iterdir()) == []


def test_staged_removes_what_a_killed_writer_left(tmp_path):
    dest = tmp_path / "prepared.h5ad"
    stale = tmp_path / ".prepared.h5ad.0123456789ab.part.h5ad"
    stale.write_text("half")
    stale_dir = tmp_path / ".prepared.h5ad.ba9876543210.part"
    stale_dir.mkdir()
    other = tmp_path / ".other.h5ad.0123456789ab.part.h5ad"  # another output's: kept
    other.write_text("x")
    with staged(dest, suffix=".part.h5ad") as tmp:
        tmp.write_text("done")
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name, "prepared.h5ad"]
