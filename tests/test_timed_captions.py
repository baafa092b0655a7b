"""Timed caption sidecars: SubRip, WebVTT and JSON parse to spans; malformed files name
the file and the line; a clip takes the caption it overlaps most."""

from pathlib import Path

import pytest

from curate.timed_captions import CaptionFileError, CaptionSpan, boundaries, caption_for, parse

SRT = """1
00:00:00,000 --> 00:00:02,500
a dog runs on the <i>beach</i>

2
00:00:02,500 --> 00:01:05,250
a cat sleeps
on a sofa
"""

VTT = """WEBVTT

NOTE made by hand

intro
00:00.000 --> 00:02.500 align:start
a dog runs on the beach

00:00:02.500 --> 00:01:05.250
a cat sleeps on a sofa
"""


def test_srt_vtt_and_json_give_the_same_spans():
    want = [
        CaptionSpan(0.0, 2.5, "a dog runs on the beach"),
        CaptionSpan(2.5, 65.25, "a cat sleeps on a sofa"),
    ]
    assert parse("a.srt", SRT) == want
    assert parse("a.vtt", VTT) == want
    json_text = '[{"start_s": 0, "end_s": 2.5, "caption": "a dog runs on the beach"},\n {"start_s": 2.5, "end_s": 65.25, "caption": "a cat sleeps on a sofa"}]'
    assert parse("a.json", json_text) == want


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("bad.srt", "1\n00:00:01,000 --> 00:00:00,500\nbackwards\n", 2),
        ("bad.srt", "1\n00:00:00,000 --> 00:00:02,000\nok\n\n2\n00:00:xx --> 00:00:03,000\nx\n", 6),
        ("bad.srt", "1\njust text\n", 1),
        ("bad.vtt", "00:00.000 --> 00:01.000\nno header\n", 1),
        (
            "bad.json",
            '[{"start_s": 0, "end_s": 1, "caption": "a"},\n {"start_s": 3, "end_s": 2, "caption": "b"}]',
            2,
        ),
        ("bad.json", '[{"start_s": 0,\n "end_s": 1 "caption": "a"}]', 2),
    ],
)
def test_malformed_files_name_the_file_and_the_line(name, text, line):
    with pytest.raises(CaptionFileError) as e:
        parse(name, text)
    message = str(e.value)
    assert message.startswith(f"{name}: line {line}:") and "\n" not in message, message


def test_a_clip_takes_the_caption_it_overlaps_most():
    spans = parse("a.srt", SRT)
    assert caption_for(spans, 1.0, 3.0) == "a dog runs on the beach"  # 1.5 s against 0.5 s
    assert caption_for(spans, 2.0, 6.0) == "a cat sleeps on a sofa"
    assert caption_for(spans, 70.0, 72.0) is None
    assert boundaries(spans) == [0.0, 2.5, 65.25]


def test_curate_splits_a_shot_where_its_captions_change(tmp_path, ray_local):
    from pipelines.cli import main
    from pipelines.common import shards
    from tests import synth

    raw = tmp_path / "raw"
    raw.mkdir()
    synth.write(raw / "one.mp4", synth.join([synth.Shot(3, 120, 1.0)], 96, 64), fps=24)
    (raw / "one.srt").write_text(
        "1\n00:00:00,000 --> 00:00:02,500\nthe first half\n\n"
        "2\n00:00:02,500 --> 00:00:05,000\nthe second half\n"
    )
    synth.write(raw / "bad.mp4", synth.join([synth.Shot(4, 60, 1.0)], 96, 64), fps=24)
    (raw / "bad.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:0x.000\nbroken\n")
    out = tmp_path / "run"
    args = ["curate", str(raw), "--out", str(out), "--preset", "tiny", "--stages", "shots"]
    assert main(args) == 0
    clips = shards.read_table(out / "clips").sort_by("start_frame").to_pylist()
    assert [(c["start_frame"], c["end_frame"]) for c in clips] == [(0, 60), (60, 120)]
    assert [c["caption"] for c in clips] == ["the first half", "the second half"]
    assert {c["caption_source"] for c in clips} == {"sidecar_timed"}
    assert clips[0]["transition_out"] == clips[1]["transition_in"] == "caption"
    videos = {Path(v["video_path"]).name: v for v in shards.read_table(out / "videos").to_pylist()}
    assert videos["bad.mp4"]["status"] == "error"
    assert videos["bad.mp4"]["error_kind"] == "caption_file"
    assert "bad.vtt: line 3:" in videos["bad.mp4"]["error"]


def test_list_files_with_start_and_end_columns_give_timed_captions(tmp_path, ray_local):
    """Panda-70M's layout: one row per caption span, in a CSV or a Parquet list."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines.cli import main
    from pipelines.common import shards
    from tests import synth

    for name, colour in (("a.mp4", 3), ("b.mp4", 5)):
        synth.write(tmp_path / name, synth.join([synth.Shot(colour, 120, 1.0)], 96, 64), fps=24)
    (tmp_path / "list.csv").write_text(
        'path,start_s,end_s,caption\na.mp4,0,2.5,a red start\na.mp4,2.5,5.0,"a red end, later"\n'
    )
    rows = {"video_path": ["b.mp4"] * 2, "start_s": [0.0, 3.0], "end_s": [3.0, 5.0]}
    rows["caption"] = ["blue first", "blue second"]
    pq.write_table(pa.table(rows), tmp_path / "list.parquet")
    out = tmp_path / "run"
    inputs = [str(tmp_path / "list.csv"), str(tmp_path / "list.parquet")]
    assert (
        main(["curate", *inputs, "--out", str(out), "--preset", "tiny", "--stages", "shots"]) == 0
    )
    clips = shards.read_table(out / "clips").to_pylist()
    got = sorted((Path(c["video_path"]).name, c["start_frame"], c["caption"]) for c in clips)
    assert got == [
        ("a.mp4", 0, "a red start"),
        ("a.mp4", 60, "a red end, later"),
        ("b.mp4", 0, "blue first"),
        ("b.mp4", 72, "blue second"),
    ]
    assert {c["caption_source"] for c in clips} == {"sidecar_timed"}


@pytest.mark.parametrize(
    "text, message",
    [
        ("path,start_s,end_s,caption\na.mp4,0,1,x\na.mp4,2,1,y\n", "list.csv: line 3: needs 0"),
        ("path,start_s,end_s,caption\na.mp4,zero,1,x\n", "list.csv: line 2: start_s and end_s"),
        ("path,start_s,caption\na.mp4,0,x\n", "list.csv: timed captions need start_s, end_s"),
    ],
)
def test_bad_timed_rows_in_a_list_file_are_one_line_errors(tmp_path, text, message):
    from pipelines.common.errors import UsageError
    from pipelines.curation.inputs import list_inputs

    (tmp_path / "list.csv").write_text(text)
    with pytest.raises(UsageError) as e:
        list_inputs([str(tmp_path / "list.csv")])
    assert message in str(e.value) and "\n" not in str(e.value)
