"""Probe and decode: geometry, timing, and one clear error for every kind of bad file."""

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from curate.container import VideoError, probe
from curate.video import DecodeOptions, VideoReader
from tests import synth


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    out = {}
    frames = synth.join([synth.Shot(1, 24, 2.0), synth.Shot(2, 24, 0.0)], 160, 96)
    out["cut"] = synth.write(d / "cut.mp4", frames, fps=24)
    # A bright block in the top-left corner of the coded frame shows where rotation puts it.
    marked = np.zeros((96, 160, 3), np.uint8)
    marked[:24, :24] = 255
    out["rot90"] = synth.write(d / "rot90.mp4", [marked] * 6, fps=24, rotation=90)
    times = [0, 0.04, 0.08, 0.3, 0.35, 0.9, 1.0, 1.1, 1.2, 1.3]
    out["vfr"] = synth.write(d / "vfr.mp4", [marked] * len(times), fps=25, times_s=times)
    out["vfr_times"] = times
    out["mkv"] = synth.write(d / "long.mkv", frames, fps=24)

    (d / "zero.mp4").write_bytes(b"")
    out["zero"] = str(d / "zero.mp4")
    (d / "garbage.mp4").write_bytes(np.random.default_rng(0).bytes(20000))
    out["garbage"] = str(d / "garbage.mp4")
    (d / "text.mp4").write_text("not a video\n" * 200)
    out["text"] = str(d / "text.mp4")
    data = Path(out["cut"]).read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 2])
    out["truncated_mp4"] = str(d / "truncated.mp4")
    mkv = Path(out["mkv"]).read_bytes()
    (d / "truncated.mkv").write_bytes(mkv[: len(mkv) * 2 // 3])
    out["truncated_mkv"] = str(d / "truncated.mkv")
    # The h264 sample entry renamed to a fourcc no decoder knows.
    (d / "codec.mp4").write_bytes(data.replace(b"avc1", b"zzz1").replace(b"avcC", b"zzzC"))
    out["codec"] = str(d / "codec.mp4")
    out["audio"] = _write_audio(d / "audio.m4a")
    out["sar"] = _write_sar(d / "sar.mp4")
    return out


def _write_audio(path):
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate = 16000
        for i in range(10):
            frame.pts = i * 1024
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return str(path)


def _write_sar(path):
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=24)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.codec_context.sample_aspect_ratio = Fraction(2, 1)
        for _ in range(5):
            img = np.zeros((48, 64, 3), np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return str(path)


def test_probe_reports_geometry_and_timing(videos):
    info = probe(videos["cut"])
    assert (info.width, info.height) == (160, 96)
    assert info.fps == pytest.approx(24)
    assert info.num_frames == 48
    assert info.duration_s == pytest.approx(2.0, abs=0.05)
    assert info.codec == "h264" and not info.has_audio and not info.is_vfr


def test_decode_counts_every_frame_in_display_order(videos):
    with VideoReader(videos["cut"]) as reader:
        frames = [(f.index, f.time_s) for f in reader]
    assert [i for i, _ in frames] == list(range(48))
    assert frames[24][1] == pytest.approx(1.0)


def test_analysis_size_keeps_short_side_near_target(tmp_path):
    path = synth.write(tmp_path / "big.mp4", [synth.texture(0, 360, 640)] * 3, fps=24)
    with VideoReader(path, DecodeOptions(analysis_short_side=90)) as reader:
        frame = next(iter(reader))
        assert frame.gray().shape == (90, 160)
        assert frame.bgr().shape == (90, 160, 3)
        assert frame.rgb(180).shape == (180, 320, 3)


def test_reduced_frame_matches_full_decode(videos):
    with VideoReader(videos["cut"], DecodeOptions(analysis_short_side=24)) as reader:
        frame = next(iter(reader))
        small = frame.bgr().astype(float)
        full = frame.rgb(96)[:, :, ::-1].astype(float)
    ky = full.shape[0] // small.shape[0]
    reference = full[::ky, ::ky][: small.shape[0], : small.shape[1]]
    assert np.abs(small - reference).mean() < 12  # same picture, up to subsampling


def test_rotation_is_applied(videos):
    info = probe(videos["rot90"])
    assert info.rotation == 90 and (info.width, info.height) == (96, 160)
    with VideoReader(videos["rot90"]) as reader:
        frame = next(iter(reader))
        gray, rgb = frame.gray(), frame.rgb(96)
    assert gray.shape[0] > gray.shape[1] and rgb.shape[:2] == (160, 96)
    # counter-clockwise 90: the coded top-left corner lands bottom-left
    h = gray.shape[0]
    assert gray[h - 2, 1] > 200 and gray[1, 1] < 60
    assert rgb[158, 1].mean() > 200 and rgb[1, 1].mean() < 60


def test_sample_aspect_ratio_is_applied(videos):
    info = probe(videos["sar"])
    assert (info.width, info.height) == (128, 48)
    with VideoReader(videos["sar"]) as reader:
        frame = next(iter(reader))
        assert frame.rgb(48).shape == (48, 128, 3)
        assert frame.gray().shape[1] / frame.gray().shape[0] == pytest.approx(128 / 48, 0.05)


def test_variable_frame_rate_keeps_true_times(videos):
    info = probe(videos["vfr"])
    assert info.is_vfr
    with VideoReader(videos["vfr"]) as reader:
        times = [f.time_s for f in reader]
    assert times == pytest.approx(videos["vfr_times"], abs=1e-3)
    with VideoReader(videos["vfr"]) as reader:
        sampled = [f.time_s for f in reader.sample(2.0)]
    # at most one frame per half second, by time, not by frame count
    assert sampled == pytest.approx([0.0, 0.9, 1.2], abs=1e-3)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("zero", "empty"),
        ("garbage", "unreadable"),
        ("text", "unreadable"),
        ("truncated_mp4", "unreadable"),
        ("audio", "no_video"),
        ("codec", "unsupported_codec"),
    ],
)
def test_bad_files_raise_one_typed_error(videos, name, kind):
    with pytest.raises(VideoError) as e, VideoReader(videos[name]) as reader:
        sum(1 for _ in reader)
    assert e.value.kind == kind
    assert "\n" not in str(e.value) and len(str(e.value)) < 400
    with pytest.raises(VideoError):
        probe(videos[name])


def test_missing_file(tmp_path):
    with pytest.raises(VideoError) as e:
        probe(tmp_path / "nope.mp4")
    assert e.value.kind == "missing"


def test_truncated_stream_keeps_the_frames_before_the_damage(videos):
    with VideoReader(videos["truncated_mkv"]) as reader:
        n = sum(1 for _ in reader)
    assert 0 < n < 48


def test_time_limit_stops_decoding(videos):
    options = DecodeOptions(timeout_s=1e-9)
    with pytest.raises(VideoError) as e, VideoReader(videos["cut"], options) as reader:
        sum(1 for _ in reader)
    assert e.value.kind == "timeout"


def test_real_videos_decode_with_known_frame_counts(shared_videos):
    import json

    truth = json.loads((shared_videos / "truth.json").read_text())
    for name, t in truth.items():
        path = shared_videos / name
        if not path.is_file() or "frames" not in t:
            continue
        with VideoReader(path) as reader:
            n = sum(1 for _ in reader)
        assert n == t["frames"], name


def test_video_error_survives_pickling():
    import pickle

    e = pickle.loads(pickle.dumps(VideoError("empty", "file is empty: x.mp4")))
    assert (e.kind, e.reason, str(e)) == (
        "empty",
        "file is empty: x.mp4",
        "empty: file is empty: x.mp4",
    )
