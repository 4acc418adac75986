"""Faces in an image or a video's keyframes, with dlib's HOG detector and ResNet embedder.

Why dlib: its weights ship inside a registry package (``face_recognition_models``), so nothing is
downloaded at run time, and it is published with its accuracy (99.38% on LFW). dlib is an optional
extra (``pip install tgwatch[faces]``): it is imported here, lazily, and only by the detector and
enrollment. The models' package is located without importing it (its ``__init__`` needs the
deprecated ``pkg_resources``).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from crawler.hashing.images import ImageLimits, open_checked
from crawler.hashing.sniff import IMAGE_MIMES, VIDEO_MIMES, sniff
from foundation.errors import TgwatchError, Undecodable

MODEL_VERSION = "dlib-resnet-v1+hog"
EMBEDDING_DIM = 128
#: a face narrower than this (after upsampling) is not looked for: HOG's window is 80 px
SMALL_IMAGE_SIDE = 800
#: keyframes of a video that are looked at (evenly over what decodes), and the pixel cap per frame
MAX_KEYFRAMES = 12
#: faces embedded per media item (the largest first): each costs ~0.09 s of CPU, so an image tiled
#: with hundreds of faces must not hold the detector for minutes; a verdict carries at most 100 matches
MAX_FACES = 48

Embedding = npt.NDArray[np.float32]


class FacesUnavailable(TgwatchError):
    """dlib or the models' package is not installed (``pip install tgwatch[faces]``)."""

    kind = "faces_unavailable"


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]  # left, top, right, bottom in pixels of the image (or frame)
    embedding: Embedding
    frame: int | None = None  # keyframe index in a video


def models_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FacesUnavailable("the face models are not installed: pip install 'tgwatch[faces]'")
    path = Path(next(iter(spec.submodule_search_locations))) / "models"
    if not (path / "dlib_face_recognition_resnet_model_v1.dat").is_file():
        raise FacesUnavailable(f"face_recognition_models has no ResNet model under {path}")
    return path


class FaceModel:
    """One loaded detector + landmark predictor + embedder (about 0.7 s and 100 MB to load)."""

    def __init__(self) -> None:
        try:
            import dlib
        except ImportError:
            raise FacesUnavailable("dlib is not installed: pip install 'tgwatch[faces]'") from None
        base = models_dir()
        self._dlib: Any = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(str(base / "shape_predictor_5_face_landmarks.dat"))
        self._embedder = dlib.face_recognition_model_v1(str(base / "dlib_face_recognition_resnet_model_v1.dat"))

    def faces(self, rgb: npt.NDArray[np.uint8], *, frame: int | None = None, limit: int = MAX_FACES) -> list[Face]:
        """The frontal faces in an RGB array (at most ``limit``, the largest first), each with its
        128-d embedding."""
        rgb = np.ascontiguousarray(rgb[:, :, :3], dtype=np.uint8)
        upsample = 1 if max(rgb.shape[:2]) <= SMALL_IMAGE_SIDE else 0
        found: list[Face] = []
        rects = sorted(self._detector(rgb, upsample), key=lambda r: -int(r.width()) * int(r.height()))
        for rect in rects[: max(limit, 0)]:
            shape = self._shape(rgb, rect)
            vec = np.asarray(self._embedder.compute_face_descriptor(rgb, shape, 0), dtype=np.float32)
            box = (
                max(0, rect.left()),
                max(0, rect.top()),
                min(rgb.shape[1], rect.right()),
                min(rgb.shape[0], rect.bottom()),
            )
            found.append(Face(box=box, embedding=vec, frame=frame))
        return found

    def faces_in(self, data: bytes, limits: ImageLimits | None = None) -> list[Face]:
        """Faces in an image (its first frame) or in a video's keyframes; other media have none.

        Raises ``Undecodable``/``Bomb``/``TooLarge`` for media that cannot be looked at safely.
        """
        mime = sniff(data[:64])
        if mime in IMAGE_MIMES:
            return self.faces(image_rgb(data, limits or ImageLimits()))
        if mime in VIDEO_MIMES:
            out: list[Face] = []
            for index, rgb in enumerate(video_keyframes(data)):
                out += self.faces(rgb, frame=index, limit=MAX_FACES - len(out))
            return out
        return []


def image_rgb(data: bytes, limits: ImageLimits) -> npt.NDArray[np.uint8]:
    """The first frame as RGB, refusing bombs before decoding (the hashing library's checks)."""
    img = open_checked(data, limits)
    try:
        img.seek(0)
        return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError, EOFError) as exc:
        raise Undecodable(f"image could not be decoded: {exc}") from exc


def video_keyframes(
    data: bytes, *, max_frames: int = MAX_KEYFRAMES, max_pixels: int = 3840 * 2160
) -> list[npt.NDArray[np.uint8]]:
    """Up to ``max_frames`` keyframes (I-frames only: the decoder skips the rest), as RGB."""
    import io

    import av

    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise Undecodable(f"not a decodable video: {exc}") from exc
    frames: list[npt.NDArray[np.uint8]] = []
    try:
        if not container.streams.video:
            return []
        stream = container.streams.video[0]
        declared = int(stream.codec_context.width or 0) * int(stream.codec_context.height or 0)
        if declared > max_pixels:  # refuse before the decoder allocates a frame of that size
            raise Undecodable(
                f"video of {stream.codec_context.width}×{stream.codec_context.height} exceeds the pixel cap"
            )
        stream.codec_context.skip_frame = "NONKEY"
        for frame in container.decode(stream):
            if frame.width * frame.height > max_pixels:
                raise Undecodable(f"frame of {frame.width}×{frame.height} exceeds the pixel cap")
            frames.append(np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8))
            if len(frames) >= max_frames:
                break
    except (av.FFmpegError, OSError, ValueError, EOFError) as exc:
        raise Undecodable(f"video could not be decoded: {exc}") from exc
    finally:
        container.close()
    return frames
