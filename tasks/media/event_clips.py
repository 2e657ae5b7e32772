"""Event clips: a short browser-playable H.264 MP4 around each anomalous event of a video, and a JPEG poster frame.

All clips of one video are cut in one child process (started with `subprocess`: Dask's worker processes are daemonic;
it dies with its parent through PR_SET_PDEATHSIG, see `decoder`), under a time limit: some files make decoders spin
for ever inside C code, so the parent kills the child when the limit passes and reports every clip not yet made as an
`ExportedClip` with `error` set. Nothing here raises for a bad video.

The child reads its arguments as JSON on stdin and writes one JSON line per finished request on stdout, as soon as
that request is done, so the clips made before a timeout are kept. Times are seconds from the video's first frame
(`(pts - stream.start_time) * time_base`), so frame i of a constant-rate video is at i / fps.

Each clip covers `[max(0, start - padding), min(duration, end + padding))` of the source, begins at the first frame at
or after its start, and is re-encoded (libx264, yuv420p, crf 26, preset veryfast, even size at most `max_width` wide,
`+faststart` so a browser plays it while loading) at the source's frame rate with timestamps from 0. A variable-rate
source is resampled to that constant rate (each output slot shows the source frame nearest it). Files are written
under a temporary name next to the target and renamed, so no partial file ever has the final name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from .decoder import _die_with_parent

_RESULT = "@@event_clip "  # marks the child's result lines on stdout
_DEFAULT_RATE = Fraction(25)


@dataclass(frozen=True)
class ClipRequest:
    start_s: float  # event start in the source (seconds)
    end_s: float  # event end (exclusive), seconds
    poster_s: float  # time of the poster frame (the event's peak)
    clip_path: str  # local output .mp4 path
    poster_path: str  # local output .jpg path


@dataclass(frozen=True)
class ExportedClip:
    clip_path: str
    poster_path: str
    clip_start_s: float  # where the clip starts in the source (the first decoded frame at or after start - padding)
    clip_end_s: float  # where it ends in the source: min(duration, end + padding)
    frames: int
    error: str | None = None  # set (and the paths may not exist) when this clip could not be made


def export_clips(
    video_path: str,
    requests: list[ClipRequest],
    padding_s: float = 2.0,
    max_width: int = 640,
    time_limit_s: float = 120.0,
) -> list[ExportedClip]:
    """All clips of one local video in one child process (one decode pass over the video in order, seeking to each
    event's start with PyAV, decoding until its end); re-encodes H.264 (libx264, yuv420p, even width/height, scaled
    down to at most max_width keeping aspect ratio, crf ~26, preset veryfast, `movflags=+faststart` so browsers can
    play while loading), output timestamps start at 0 at clip_start_s, constant frame rate = source rate. Poster: the
    frame at poster_s as JPEG (PIL), same size as the clip. Writes to a temp name next to the target and renames, so a
    partial file is never left under the final name. On timeout or any error in the child: every not-yet-done request
    gets an ExportedClip with error set (message names the video and why, e.g. 'timed out after 120 s'), nothing
    raised."""
    if not requests:
        return []
    token = uuid.uuid4().hex[:12]
    args = {
        "video": video_path,
        "requests": [
            [float(r.start_s), float(r.end_s), float(r.poster_s), os.fspath(r.clip_path), os.fspath(r.poster_path)]
            for r in requests
        ],
        "padding_s": padding_s,
        "max_width": max_width,
        "token": token,
        "parent": os.getpid(),
    }
    failure: str | None = None
    started = time.time()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "tasks.media.event_clips"],
            input=json.dumps(args).encode(), capture_output=True, timeout=max(time_limit_s, 0.0),
        )  # fmt: skip
        out, err = proc.stdout, proc.stderr
        if proc.returncode != 0:
            failure = f"export child failed (exit code {proc.returncode}){_last_line(err)}"
    except subprocess.TimeoutExpired as exc:  # subprocess.run has killed and reaped the child
        out, err = exc.stdout or b"", exc.stderr or b""
        failure = f"timed out after {time_limit_s:g} s"
    except Exception as exc:  # the child could not even start (no memory, no such interpreter, ...)
        out, err = b"", b""
        failure = f"export child did not run: {exc.__class__.__name__}: {exc}"

    done: dict[int, dict[str, Any]] = {}
    for line in out.decode(errors="replace").splitlines():
        if line.startswith(_RESULT):
            try:
                item = json.loads(line[len(_RESULT) :])
                done[int(item["index"])] = item
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by the kill
    if failure is None and len(done) < len(requests):
        failure = f"export child gave no result{_last_line(err)}"

    results = []
    for i, r in enumerate(requests):
        item = done.get(i)
        if item is None:
            _remove(_temp_name(r.clip_path, token), _temp_name(r.poster_path, token))
            _remove_made_since(started, r.clip_path, r.poster_path)  # renamed just before the kill, not reported
            clip_start, clip_end = max(0.0, r.start_s - padding_s), r.end_s + padding_s
            results.append(
                ExportedClip(r.clip_path, r.poster_path, clip_start, clip_end, 0, f"{video_path}: {failure}")
            )
        else:
            error = item["error"]
            results.append(
                ExportedClip(
                    r.clip_path, r.poster_path, float(item["clip_start_s"]), float(item["clip_end_s"]),
                    int(item["frames"]), None if error is None else f"{video_path}: {error}",
                )
            )  # fmt: skip
    return results


def _last_line(err: bytes) -> str:
    lines = [line.strip() for line in err.decode(errors="replace").splitlines() if line.strip()]
    return f": {lines[-1][:500]}" if lines else ""


def _temp_name(path: str, token: str) -> str:
    """A name next to `path`, unique to one export call, that keeps the extension (the muxer and PIL go by it)."""
    head, tail = os.path.split(path)
    return os.path.join(head, f".{tail}.{token}.part{os.path.splitext(tail)[1]}")


def _remove_made_since(since: float, *paths: str) -> None:
    for path in paths:
        try:
            if os.path.getmtime(path) >= since:  # written by this call's child (it starts well after `since`)
                os.remove(path)
        except OSError:
            pass


def _remove(*paths: str) -> None:
    for path in paths:
        try:
            os.remove(path)
        except OSError:
            pass


# ---------------------------------------------------------------------------------------------------------------------
# The child: everything below runs in the export process.


class _ExportError(Exception):
    """A request that cannot be exported, with the reason as its message."""


class _NoTimestamps(Exception):
    """A frame without pts: the frame's time is then its count from the start of the video."""


def _export_all(args: dict[str, Any]) -> None:
    import av

    video, token = args["video"], args["token"]
    padding, max_width = float(args["padding_s"]), int(args["max_width"])
    order = sorted(range(len(args["requests"])), key=lambda i: (args["requests"][i][0], i))
    container: Any = None
    for index in order:
        start, end, poster, clip_path, poster_path = args["requests"][index]
        clip_start, clip_end = max(0.0, float(start) - padding), float(end) + padding
        result: dict[str, Any] = {"index": index, "clip_start_s": clip_start, "clip_end_s": clip_end, "frames": 0}
        try:
            if container is None:
                container = av.open(video)
                if container.streams.video:
                    container.streams.video[0].thread_type = "AUTO"  # before the first decode opens the codec
            _export_one(container, result, float(poster), clip_path, poster_path, max_width, token)
            result["error"] = None
        except Exception as exc:
            result["error"] = str(exc) if isinstance(exc, _ExportError) else f"{exc.__class__.__name__}: {exc}"
            if container is not None and not isinstance(exc, _ExportError):
                container.close()  # reopened for the next request, in case the error left the demuxer in a bad state
                container = None
        sys.stdout.write(_RESULT + json.dumps(result) + "\n")
        sys.stdout.flush()
    if container is not None:
        container.close()


def _video_stream(container: Any) -> Any:
    if not container.streams.video:
        raise _ExportError("no video stream")
    return container.streams.video[0]


def _rate(stream: Any) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and 1 <= rate <= 240:
            return Fraction(rate).limit_denominator(1001)
    return _DEFAULT_RATE


def _duration(container: Any, stream: Any) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return float(container.duration / 1_000_000)  # AV_TIME_BASE
    return None


def _frames_from(container: Any, stream: Any, at_s: float, rate: Fraction) -> Iterator[tuple[float, Any]]:
    """(time, frame) of the video's frames from the last one at or before `at_s` on (a few before it may come too).

    Seeks to the keyframe before `at_s`; if the demuxer lands after it, seeks further back, and at last to the start.
    """
    tb = stream.time_base
    origin = stream.start_time or 0
    half = 0.5 / float(rate)
    for back_s in (0.0, 5.0, 30.0, None):
        target = 0.0 if back_s is None else max(0.0, at_s - back_s)
        if tb is None:  # no timestamps to seek by: decode from the start, counting frames
            yield from _counted(container, stream, rate)
            return
        container.seek(origin + int(target / tb), stream=stream, backward=True)
        frames = container.decode(stream)
        first = next(frames, None)
        if first is None:
            return
        if first.pts is None:
            yield from _counted(container, stream, rate)
            return
        t = float((first.pts - origin) * tb)
        if t > at_s + half and target > 0.0:
            continue  # landed after the start: seek further back
        yield t, first
        for frame in frames:
            if frame.pts is None:
                raise _NoTimestamps
            yield float((frame.pts - origin) * tb), frame
        return


def _counted(container: Any, stream: Any, rate: Fraction) -> Iterator[tuple[float, Any]]:
    container.seek(0)
    for i, frame in enumerate(container.decode(stream)):
        yield i / float(rate), frame


def _size(width: int, height: int, max_width: int) -> tuple[int, int]:
    out_w = max(2, min(width, max_width) // 2 * 2)
    out_h = max(2, int(round(height * out_w / width / 2)) * 2)
    return out_w, out_h


def _export_one(
    container: Any, result: dict[str, Any], poster_s: float, clip_path: str, poster_path: str, max_width: int,
    token: str,
) -> None:  # fmt: skip
    """Makes one clip and its poster; sets the clip's range and frame count in `result` (the range also on failure)."""
    clip_start, clip_end = result["clip_start_s"], result["clip_end_s"]
    if not (clip_end > clip_start):  # also refuses NaN
        raise _ExportError(f"empty range {clip_start:g}-{clip_end:g} s")
    stream = _video_stream(container)
    rate = _rate(stream)
    duration = _duration(container, stream)
    if duration is not None:
        clip_end = result["clip_end_s"] = min(clip_end, duration)
        if not clip_end > clip_start:
            raise _ExportError(f"the event lies after the end of the video ({duration:g} s)")
    try:
        frames = _frames_from(container, stream, clip_start, rate)
        made = _encode(frames, stream, rate, clip_start, clip_end, poster_s, clip_path, poster_path, max_width, token)
    except _NoTimestamps:
        frames = _counted(container, stream, rate)
        made = _encode(frames, stream, rate, clip_start, clip_end, poster_s, clip_path, poster_path, max_width, token)
    result.update(made)


def _encode(
    frames: Iterator[tuple[float, Any]], stream: Any, rate: Fraction, clip_start: float, clip_end: float,
    poster_s: float, clip_path: str, poster_path: str, max_width: int, token: str,
) -> dict[str, Any]:  # fmt: skip
    import av

    width, height = _size(stream.codec_context.width, stream.codec_context.height, max_width)
    tmp_clip, tmp_poster = _temp_name(clip_path, token), _temp_name(poster_path, token)
    for path in (clip_path, poster_path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    step, half = 1 / float(rate), 0.5 / float(rate)
    eps = 1e-6
    out = av.open(tmp_clip, "w", format="mp4", options={"movflags": "+faststart"})
    try:
        ostream = out.add_stream("libx264", rate=rate)
        ostream.width, ostream.height, ostream.pix_fmt = width, height, "yuv420p"
        ostream.options = {"crf": "26", "preset": "veryfast"}
        ostream.codec_context.time_base = 1 / rate
        written = 0
        first_t: float | None = None
        prev: tuple[float, Any] | None = None
        poster: tuple[float, Any] | None = None

        def emit_until(limit: float) -> None:  # emit `prev` in every output slot before `limit`
            nonlocal written
            assert prev is not None and first_t is not None
            image = None
            while first_t + written * step < limit - eps:
                if image is None:
                    image = prev[1].reformat(width=width, height=height, format="yuv420p")
                image.pts, image.time_base = written, 1 / rate
                for packet in ostream.encode(image):
                    out.mux(packet)
                written += 1
                image = None  # a fresh frame per slot: the encoder may keep a reference to the one it got

        for t, frame in frames:
            if t < clip_start - eps:
                continue
            if first_t is None:
                first_t = t
                if first_t >= clip_end:
                    break
            elif prev is not None:
                emit_until(min(t - half, clip_end))
            if t >= clip_end - eps:
                prev = None
                break
            prev = (t, frame)
            if poster is None or abs(t - poster_s) < abs(poster[0] - poster_s):
                poster = (t, frame)
        if prev is not None:  # the video ended inside the clip: the last frame keeps its own slot
            emit_until(min(clip_end, prev[0] + half))
            clip_end = min(clip_end, prev[0] + step)  # shorter than its container said (or it said nothing)
        if written == 0 or poster is None or first_t is None:
            raise _ExportError(f"no frame decoded in {clip_start:g}-{clip_end:g} s")
        for packet in ostream.encode(None):
            out.mux(packet)
        out.close()
        poster[1].to_image(width=width, height=height).save(tmp_poster, format="JPEG", quality=85)
        os.replace(tmp_clip, clip_path)
        os.replace(tmp_poster, poster_path)
        return {"clip_start_s": first_t, "clip_end_s": clip_end, "frames": written}
    finally:
        out.close()
        _remove(tmp_clip, tmp_poster)


def _main() -> None:
    args = json.loads(sys.stdin.read())
    if os.getppid() != int(args["parent"]):  # the parent died before PR_SET_PDEATHSIG took effect
        sys.exit(0)
    _export_all(args)


if __name__ == "__main__":
    _die_with_parent()
    _main()
