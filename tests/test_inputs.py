"""`lvd curate` INPUT expansion: files, folders, globs, list files, sidecar captions."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.common.errors import UsageError
from pipelines.curation.inputs import list_inputs


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "b").mkdir()
    for name in ("a/one.mp4", "a/b/two.MOV", "a/b/three.webm", "a/notes.pdf", "a/b/x.json"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "a" / "one.txt").write_text("a red ball\n")
    return tmp_path


def test_folder_is_searched_recursively_and_non_videos_counted(tree):
    out = list_inputs([str(tree / "a")])
    names = [p.split("/")[-1] for p in (i.path for i in out.items)]
    assert names == ["three.webm", "two.MOV", "one.mp4"]  # sorted by path
    assert out.skipped_non_video == 2  # notes.pdf and x.json; one.txt is a sidecar
    assert out.items[2].caption == "a red ball" and out.items[0].caption is None


def test_glob_and_duplicates(tree):
    out = list_inputs([str(tree / "a" / "**" / "*.webm"), str(tree / "a" / "b" / "three.webm")])
    assert len(out.items) == 1


def test_txt_csv_parquet_lists(tree):
    (tree / "list.txt").write_text("# a comment\na/one.mp4\n\na/b/two.MOV\n")
    assert [i.path for i in list_inputs([str(tree / "list.txt")]).items] == [
        str(tree / "a/one.mp4"),
        str(tree / "a/b/two.MOV"),
    ]
    (tree / "list.csv").write_text("video_path,caption\na/one.mp4,dog runs\nhttps://x/y.mp4,\n")
    items = list_inputs([str(tree / "list.csv")]).items
    assert (items[0].caption, items[1].path, items[1].caption) == (
        "dog runs",
        "https://x/y.mp4",
        None,
    )
    pq.write_table(
        pa.table({"path": ["a/b/three.webm"], "caption": ["sky"]}), tree / "list.parquet"
    )
    assert list_inputs([str(tree / "list.parquet")]).items[0].caption == "sky"


def test_list_without_a_path_column_names_the_columns(tree):
    (tree / "bad.csv").write_text("file,text\na.mp4,x\n")
    with pytest.raises(UsageError, match=r"no path column .* found file, text"):
        list_inputs([str(tree / "bad.csv")])


def test_missing_input_and_empty_glob(tree):
    with pytest.raises(UsageError, match="input not found"):
        list_inputs([str(tree / "nope.mp4")])
    with pytest.raises(UsageError, match="no file matches"):
        list_inputs([str(tree / "*.mkv")])
    with pytest.raises(UsageError, match="no INPUT"):
        list_inputs([])
