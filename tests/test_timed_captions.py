"""Timed caption sidecars: SubRip, WebVTT and JSON parse to spans; malformed files name
the file and the line; a clip takes the caption it overlaps most."""

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
