"""Decoder backends: the same frame counts, sizes and clip boundaries, frames within the documented tolerance of
decord's, the same refusal of a corrupted file, and an extraction through each."""

import os
import shutil

import numpy as np
import pytest

from flows.settings import load_settings
from tasks.jobs.extract import ExtractJob, extract_video
from tasks.media.backends import DECODERS, PARITY_MAE
from tasks.media.specs import ExtractorSpec
from tasks.media.video import ClipReader, VideoDecodeError, VideoSource
from tasks.store.archive import discover_videos
from tasks.store.output import OutputStore
from tests.conftest import VIDEOS

REAL = os.path.join(VIDEOS, "v_GGSY1Qvo990.mp4")


def clips(backend: str, short_side: int | None):
    reader = ClipReader(REAL, 16, 16, short_side=short_side, backend=backend)
    got = list(reader)
    return reader, [(c.start_frame, c.end_frame, c.center_frame) for c in got], np.stack([c.frames for c in got])


@pytest.fixture(scope="module")
def reference():
    return {size: clips("decord", size) for size in (None, 128)}


@pytest.mark.parametrize("backend", [b for b in DECODERS if b != "decord"])
def test_backends_agree_with_decord(reference, backend):
    for size, tolerance in ((None, PARITY_MAE["native"]), (128, PARITY_MAE["resized"])):
        ref_reader, ref_ranges, ref_frames = reference[size]
        reader, ranges, frames = clips(backend, size)
        assert (reader.n_frames, reader.height, reader.width) == (ref_reader.n_frames, ref_reader.height,
                                                                  ref_reader.width)  # fmt: skip
        assert reader.fps == pytest.approx(ref_reader.fps, rel=0.01)
        assert ranges == ref_ranges and frames.shape == ref_frames.shape
        assert np.abs(frames.astype(np.int16) - ref_frames).mean() <= tolerance, (backend, size)


@pytest.mark.parametrize("backend", DECODERS)
def test_a_corrupted_file_is_a_decode_error_with_every_backend(backend):
    with pytest.raises(VideoDecodeError) as err:
        list(ClipReader(os.path.join(VIDEOS, "corrupted.mp4"), short_side=64, backend=backend))
    assert err.value.reason


def test_pyav_reads_backwards_by_reopening():
    source = VideoSource(REAL, backend="pyav")
    reader = source.reader(60, 80)
    late, early = source.read(reader, [40, 41]), source.read(reader, [3])
    decord = VideoSource(REAL)
    ref = decord.read(decord.reader(60, 80), [40, 41, 3])
    assert np.abs(np.concatenate([late, early]).astype(np.int16) - ref).mean() <= PARITY_MAE["resized"]
    with pytest.raises(IndexError):
        source.read(reader, [source.n_frames])


@pytest.mark.parametrize("backend", ["pyav", "torchcodec"])
def test_extraction_through_a_backend_records_it(tmp_path, backend):
    shutil.copy(REAL, tmp_path / "v.mp4")  # a symlink out of the archive would be skipped
    entry = discover_videos(str(tmp_path))[0]
    spec = ExtractorSpec(size=32)
    stores = {b: OutputStore(str(tmp_path / b)) for b in ("decord", backend)}
    for b, store in stores.items():
        assert extract_video(entry, store, ExtractJob(spec, decoder=b)).status == "done"
    ref, got = (stores[b].read_table(stores[b].features(spec.extractor_id, "v.mp4")) for b in ("decord", backend))
    assert got.metadata["decoder"] == backend and ref.metadata["decoder"] == "decord"
    assert got.column("start_frame").tolist() == ref.column("start_frame").tolist()
    assert np.corrcoef(got.features.ravel(), ref.features.ravel())[0, 1] > 0.99


def test_an_unknown_decoder_names_the_field(tmp_path):
    config = tmp_path / "vad.yaml"
    config.write_text("extractor: {decoder: opencv}\n")
    with pytest.raises(Exception, match="decoder"):
        load_settings(str(config))
