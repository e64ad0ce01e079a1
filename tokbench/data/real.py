"""The six real datasets, read from their published annotation layouts (each card's ``files``).

Importing this module registers ``kinetics400``, ``ssv2``, ``epic-kitchens-100``,
``diving48``, ``jester`` and ``charades``::

    ds = create_dataset("kinetics400", split="val", root="/data/k400", frames=16)
    loader = DataLoader(ds, batch_size=8, num_workers=8, collate_fn=tokbench.data.batching.collate_clips)
    check_readable(ds)  # DataError if no video of the split decodes

Each is a :class:`RealVideoDataset`: a list of :class:`Sample` built by a per-dataset
annotation parser, decoded with PyAV (:mod:`tokbench.data.video_io`) or from JPEG frame
folders, sampled, resized and cropped by an evaluation protocol
(:mod:`tokbench.data.protocols`; each card names its default and the published code it
follows). Items follow
:mod:`tokbench.data.base`: ``video`` float32 (C, T, S, S) or (V, C, T, S, S), ``label``
(``int``; float multi-hot (num_classes,) for Charades; action id
``verb * num_nouns + noun`` for Epic-Kitchens-100, which also gives ``verb`` and
``noun``), ``id`` and ``index``.

Options (``create_dataset(..., **overrides)``): ``protocol`` (the card's on every split
but ``train``; ``tokbench-segments`` 1 x 1 on ``train``), ``frames`` (16), ``size``
(224), ``stride``, ``temporal_clips`` / ``spatial_crops``, ``aggregation`` (each
defaults to the protocol's), ``limit`` (keep the first N samples).

Failures: a missing data folder or annotation file, an unparsable annotation file, or a
split whose videos are all missing raise :class:`DataError` (one line). Annotated videos
with no file are left out with one :class:`SkippedVideoWarning` (their ids in
``dataset.missing``). A video that fails to decode gives an item ``{"id", "index",
"error"}`` and a warning; :func:`tokbench.data.batching.collate_clips` lists such ids under ``skipped`` so an
evaluation loop counts them, DataLoader workers or not.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from tokbench.data.base import DataError, DatasetCard, register_dataset
from tokbench.data.protocols import Protocol, get_protocol
from tokbench.data.video_io import VideoReadError, read_frame_folder, read_video, require_av
from tokbench.errors import TokbenchError

__all__ = [
    "Sample", "RealVideoDataset", "SkippedVideoWarning", "check_readable", "CARDS",
]

#: Folders under the root where annotation files are looked for, in order.
ANNOTATION_DIRS = ("", "annotations", "labels")
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi")
OPTIONS = ("protocol", "frames", "size", "stride", "temporal_clips", "spatial_crops", "aggregation", "limit")
#: The protocol of the train split (lp/ft training clips): one centred clip, as before protocols.
TRAIN_PROTOCOL = "tokbench-segments"


class SkippedVideoWarning(UserWarning):
    """A video was left out: no file for an annotated clip, or it failed to decode."""


@dataclass(frozen=True)
class Sample:
    """One annotated clip.

    Attributes:
        id: the dataset's own id (youtube clip name, SSv2 id, narration id, ...).
        path: the video file, or the frame folder when ``frames_pattern`` is set.
        label: class index, or the class indices present (multi-label).
        verb, noun: Epic-Kitchens-100 verb and noun classes.
        start_frame, end_frame: the segment, 0-based, end exclusive (None: to the end).
        frames_pattern: JPEG file names in the folder ``path`` (1-based numbering),
            e.g. ``{:05d}.jpg``; None for an encoded video file.
    """

    id: str
    path: Path
    label: int | tuple[int, ...]
    verb: int | None = None
    noun: int | None = None
    start_frame: int = 0
    end_frame: int | None = None
    frames_pattern: str | None = None

    def exists(self) -> bool:
        return self.path.is_dir() if self.frames_pattern else self.path.is_file()


class RealVideoDataset(Dataset):
    """A map-style dataset of :class:`Sample` s; shared by the six real datasets.

    Attributes:
        card, name, split, spec and protocol (the :class:`Protocol`), samples, missing (ids of annotated
        clips with no file), classes (class names; for Epic-Kitchens ``verbs`` and
        ``nouns``), num_classes (from the annotation files; for verb+noun
        ``num_verbs * num_nouns``), num_verbs, num_nouns.
    """

    def __init__(
        self,
        card: DatasetCard,
        split: str,
        samples: Sequence[Sample],
        spec: Protocol,
        *,
        classes: Sequence[str] = (),
        verbs: Sequence[str] = (),
        nouns: Sequence[str] = (),
        missing: Sequence[str] = (),
    ) -> None:
        self.card, self.name, self.split, self.spec = card, card.name, split, spec
        self.protocol = spec
        self.aggregation = spec.aggregation  # how evaluate() merges an item's views
        self.samples = list(samples)
        self.classes, self.verbs, self.nouns = list(classes), list(verbs), list(nouns)
        self.missing = list(missing)
        self.views = spec.views  # views per item (temporal clips x spatial crops)
        self.num_verbs = len(self.verbs) if card.task == "verb_noun" else None
        self.num_nouns = len(self.nouns) if card.task == "verb_noun" else None
        self.num_classes = len(self.verbs) * len(self.nouns) if card.task == "verb_noun" else len(self.classes)
        self._warned: set[str] = set()

    def __len__(self) -> int:
        return len(self.samples)

    def __repr__(self) -> str:
        s = self.spec
        return (f"RealVideoDataset({self.name}/{self.split}, {len(self)} clips, protocol={s.name}, frames={s.frames}, "
                f"size={s.size}, views={s.temporal_clips}x{s.spatial_crops})")

    def read_clips(self, index: int) -> list[Tensor]:
        """Decoded frames of sample ``index``: ``temporal_clips`` uint8 (T, H, W, 3) clips.

        Raises:
            VideoReadError: the video or frame folder could not be read.
        """
        s, F = self.samples[index], self.spec.frames

        def pick(total: int) -> list[int]:
            return [i for clip in self.spec.frame_indices(total, s.id) for i in clip]

        if s.frames_pattern is None:
            frames = read_video(s.path, pick, start_frame=s.start_frame, end_frame=s.end_frame)
        else:
            frames = read_frame_folder(
                s.path, pick, pattern=s.frames_pattern, start_frame=s.start_frame, end_frame=s.end_frame
            )
        return list(frames.split(F))

    def target(self, sample: Sample) -> int | Tensor:
        """``label`` of an item: an int, or a float multi-hot (num_classes,)."""
        if self.card.task == "multilabel":
            hot = torch.zeros(self.num_classes)
            hot[list(sample.label)] = 1.0
            return hot
        return sample.label

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = range(len(self))[index]  # IndexError past the end; negatives resolved
        s = self.samples[index]
        try:
            clips = self.read_clips(index)
        except VideoReadError as e:
            if s.id not in self._warned:
                self._warned.add(s.id)
                warnings.warn(
                    f"{self.name}/{self.split}: skipped video {s.id}: {e}", SkippedVideoWarning, stacklevel=2
                )
            return {"id": s.id, "index": index, "error": e.reason}
        item = {"video": self.spec.to_views(clips), "label": self.target(s), "id": s.id, "index": index}
        if self.card.task == "verb_noun":
            item["verb"], item["noun"] = s.verb, s.noun
        return item


def check_readable(dataset: RealVideoDataset) -> None:
    """Decode samples in order until one works.

    Raises:
        DataError: no sample of the dataset decodes (a wrong root or codec, not bad clips).
    """
    if not dataset.samples:
        raise DataError(f"{dataset.name}/{dataset.split} has no samples")
    first = None
    for i, s in enumerate(dataset.samples):
        try:
            dataset.read_clips(i)
            return
        except VideoReadError as e:
            first = first or f"{s.id}: {e.reason}"
    raise DataError(f"every video of {dataset.name}/{dataset.split} failed to decode (first: {first})")


# ----------------------------------------------------------------------------- parsing


@dataclass
class _Annotations:
    samples: list[Sample]
    source: Path
    classes: Sequence[str] = ()
    verbs: Sequence[str] = ()
    nouns: Sequence[str] = ()


def _find(card: DatasetCard, root: Path, names: Sequence[str]) -> Path:
    """The first of ``names`` under root, root/annotations or root/labels."""
    for d in ANNOTATION_DIRS:
        for n in names:
            if (root / d / n).is_file():
                return root / d / n
    also = f" or {', '.join(names[1:])}" if len(names) > 1 else ""
    raise DataError(
        f"{card.name}: annotation file {root / names[0]} not found{also} (also looked in "
        f"{'/, '.join(d for d in ANNOTATION_DIRS if d)}/); {card.name} needs {', '.join(card.files)}"
    )


@contextlib.contextmanager
def _parsing(card: DatasetCard, path: Path) -> Iterator[None]:
    try:
        yield
    except DataError:
        raise
    except (KeyError, ValueError, TypeError, IndexError, AttributeError, UnicodeDecodeError, OverflowError) as e:
        raise DataError(f"{card.name}: cannot parse {path}: {type(e).__name__}: {e}") from e


# Annotation files are read as "utf-8-sig": a byte-order mark (Excel and Notepad write one)
# is dropped instead of sticking to the first column name (then "has no column 'youtube_id'")
# or failing JSON. Files without one read the same.
_ENCODING = "utf-8-sig"

#: Frame indices beyond this are not frames of any video (and overflow the decoder's int64 seeks).
_MAX_FRAME = 2**31


def _json(card: DatasetCard, path: Path) -> Any:
    with _parsing(card, path), open(path, encoding=_ENCODING) as f:
        return json.load(f)


def _as_number(value: Any) -> int | float | None:
    """A JSON number or CSV text as a number, else None (booleans are not numbers here)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        text = value.strip()
        for kind in (int, float):  # int first: "12345678901234567890" stays exact
            with contextlib.suppress(ValueError):
                return kind(text)
    return None


def _number(card: DatasetCard, path: Path, what: str, value: Any, *, whole: bool = True, low: int = 0,
            high: int | None = None) -> Any:
    """An annotation's numeric field (a label, class id, frame index, time in seconds),
    checked where it is read: finite, whole unless ``whole=False`` (a label of 1.7 is not
    class 1), at least ``low`` and below ``high``. Anything else (Infinity, 1.7, "ten", true)
    is one :class:`DataError` naming the file, the field and the value."""
    number = _as_number(value)
    finite = number is not None and (isinstance(number, int) or math.isfinite(number))  # isfinite(10**400) overflows
    ok = finite and (not whole or number == int(number)) and number >= low and (high is None or number < high)
    if not ok:
        kind = "a whole number" if whole else "a number"
        bound = f" in {low}..{high - 1}" if high is not None else f" >= {low}"
        raise DataError(f"{card.name}: {path} has {what} {value!r}: expected {kind}{bound}")
    return int(number) if whole else float(number)


def _csv(card: DatasetCard, path: Path, need: Sequence[str]) -> list[dict[str, str]]:
    """Rows of a CSV file with a header row; ``need``: columns that must be there."""
    with _parsing(card, path), open(path, newline="", encoding=_ENCODING) as f:
        reader = csv.DictReader(f)
        absent = [c for c in need if c not in (reader.fieldnames or ())]
        if absent:
            raise DataError(f"{card.name}: {path} has no column {absent[0]!r} (columns: {reader.fieldnames})")
        return list(reader)


def _video_index(root: Path) -> dict[str, Path]:
    """Every video file under root by stem (one walk; the first found wins)."""
    index: dict[str, Path] = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            stem, ext = os.path.splitext(f)
            if ext.lower() in VIDEO_EXTENSIONS:
                index.setdefault(stem, Path(dirpath) / f)
    return index


def _class_of(card: DatasetCard, path: Path, name: str, classes: dict[str, int]) -> int:
    if name not in classes:
        raise DataError(f"{card.name}: {path} has class {name!r}, which is not in the class list")
    return classes[name]


def _parse_k400(card: DatasetCard, root: Path, split: str) -> _Annotations:
    files = {"train": ("train.csv",), "val": ("validate.csv", "val.csv"), "test": ("test.csv",)}
    ann = _find(card, root, files[split])
    train_rows = _csv(card, _find(card, root, files["train"]), ("label",))
    classes = sorted({r["label"] for r in train_rows})
    index_of = {c: i for i, c in enumerate(classes)}
    rows = _csv(card, ann, ("youtube_id", "time_start", "time_end"))
    if rows and ("label" not in rows[0] or any(not (r["label"] or "").strip() for r in rows)):
        raise DataError(f"{card.name}/{split}: {ann} has no labels (not every release has test labels)")
    videos = _video_index(root)
    samples = []
    with _parsing(card, ann):
        for r in rows:
            yid = r["youtube_id"]
            start, end = (_number(card, ann, k, r[k], whole=False, high=_MAX_FRAME) for k in ("time_start", "time_end"))
            stem = f"{yid}_{int(start):06d}_{int(end):06d}"
            path = videos.get(stem) or videos.get(yid) or root / split / f"{stem}.mp4"
            samples.append(Sample(stem, path, _class_of(card, ann, r["label"], index_of)))
    return _Annotations(samples, ann, classes=classes)


def _parse_ssv2(card: DatasetCard, root: Path, split: str) -> _Annotations:
    labels_path = _find(card, root, ("something-something-v2-labels.json",))
    labels = _json(card, labels_path)
    ann = _find(card, root, {"train": ("something-something-v2-train.json",),
                             "val": ("something-something-v2-validation.json",)}[split])
    entries = _json(card, ann)
    with _parsing(card, labels_path):
        index_of = {t: _number(card, labels_path, f"class id of {t!r}", i) for t, i in labels.items()}
        classes = [t for t, _ in sorted(index_of.items(), key=lambda kv: kv[1])]
    videos = _video_index(root)
    samples = []
    with _parsing(card, ann):
        for e in entries:
            vid = str(e["id"])
            template = e["template"].replace("[", "").replace("]", "")
            path = videos.get(vid) or root / "20bn-something-something-v2" / f"{vid}.webm"
            samples.append(Sample(vid, path, _class_of(card, ann, template, index_of)))
    return _Annotations(samples, ann, classes=classes)


def _parse_epic(card: DatasetCard, root: Path, split: str) -> _Annotations:
    ann = _find(card, root, {"train": ("EPIC_100_train.csv",), "val": ("EPIC_100_validation.csv",)}[split])
    names = {}
    for kind in ("verb", "noun"):
        path = _find(card, root, (f"EPIC_100_{kind}_classes.csv",))
        with _parsing(card, path):
            rows = sorted(_csv(card, path, ("id", "key")), key=lambda r: _number(card, path, "id", r["id"]))
            names[kind] = [r["key"] for r in rows]
    num_nouns = len(names["noun"])
    rows = _csv(card, ann, ("narration_id", "participant_id", "video_id", "start_frame", "stop_frame",
                            "verb_class", "noun_class"))
    where: dict[str, tuple[Path, str | None]] = {}
    samples = []
    with _parsing(card, ann):
        for r in rows:
            p, v = r["participant_id"], r["video_id"]
            if v not in where:  # prefer the video; else rgb_frames/<video_id>/ (or <video_id>/)
                base = root / p
                found = [(f, None) for f in (base / "videos" / f"{v}.MP4", base / "videos" / f"{v}.mp4")
                         if f.is_file()]
                found += [(d, "frame_{:010d}.jpg") for d in (base / "rgb_frames" / v, base / v) if d.is_dir()]
                where[v] = found[0] if found else (base / "videos" / f"{v}.MP4", None)
            path, pattern = where[v]
            verb = _number(card, ann, "verb_class", r["verb_class"], high=len(names["verb"]))
            noun = _number(card, ann, "noun_class", r["noun_class"], high=num_nouns)
            start = _number(card, ann, "start_frame", r["start_frame"], low=1, high=_MAX_FRAME)  # 1-based
            stop = _number(card, ann, "stop_frame", r["stop_frame"], low=start, high=_MAX_FRAME)
            samples.append(Sample(
                r["narration_id"], path, verb * num_nouns + noun, verb, noun,
                start_frame=start - 1, end_frame=stop, frames_pattern=pattern,
            ))
    return _Annotations(samples, ann, verbs=names["verb"], nouns=names["noun"])


def _parse_diving48(card: DatasetCard, root: Path, split: str) -> _Annotations:
    vocab_path = _find(card, root, ("Diving48_vocab.json",))
    vocab = _json(card, vocab_path)
    classes = [" ".join(map(str, v)) if isinstance(v, list) else str(v) for v in vocab]
    ann = _find(card, root, {"train": ("Diving48_V2_train.json",), "test": ("Diving48_V2_test.json",)}[split])
    samples = []
    with _parsing(card, ann):
        for e in _json(card, ann):
            label = _number(card, ann, "label", e["label"], high=len(classes))
            start = _number(card, ann, "start_frame", e.get("start_frame", 0), high=_MAX_FRAME)
            end = e.get("end_frame")
            end = None if end is None else _number(card, ann, "end_frame", end, low=start + 1, high=_MAX_FRAME)
            samples.append(Sample(
                e["vid_name"], root / "rgb" / f"{e['vid_name']}.mp4", label, start_frame=start, end_frame=end,
            ))
    return _Annotations(samples, ann, classes=classes)


def _parse_jester(card: DatasetCard, root: Path, split: str) -> _Annotations:
    labels_path = _find(card, root, ("jester-v1-labels.csv",))
    with _parsing(card, labels_path), open(labels_path, encoding=_ENCODING) as f:
        classes = [line.strip() for line in f if line.strip()]
    index_of = {c: i for i, c in enumerate(classes)}
    ann = _find(card, root, {"train": ("jester-v1-train.csv",), "val": ("jester-v1-validation.csv",)}[split])
    samples = []
    with _parsing(card, ann), open(ann, newline="", encoding=_ENCODING) as f:
        for row in csv.reader(f, delimiter=";"):
            if not row or not row[0].strip():
                continue
            if len(row) < 2:
                raise DataError(f"{card.name}/{split}: {ann} has no labels (expected 'id;label' lines)")
            vid = row[0].strip()
            samples.append(Sample(vid, root / "20bn-jester-v1" / vid, _class_of(card, ann, row[1].strip(), index_of),
                                  frames_pattern="{:05d}.jpg"))
    return _Annotations(samples, ann, classes=classes)


def _parse_charades(card: DatasetCard, root: Path, split: str) -> _Annotations:
    classes_path = _find(card, root, ("Charades_v1_classes.txt",))
    with _parsing(card, classes_path), open(classes_path, encoding=_ENCODING) as f:
        pairs = [line.strip().split(" ", 1) for line in f if line.strip()]
        index_of = {p[0]: i for i, p in enumerate(pairs)}
        classes = [p[1] if len(p) > 1 else p[0] for p in pairs]
    ann = _find(card, root, {"train": ("Charades_v1_train.csv",), "test": ("Charades_v1_test.csv",)}[split])
    samples = []
    with _parsing(card, ann):
        for r in _csv(card, ann, ("id", "actions")):
            codes = [a.split()[0] for a in (r["actions"] or "").split(";") if a.strip()]
            label = tuple(sorted({_class_of(card, ann, c, index_of) for c in codes}))
            samples.append(Sample(r["id"], root / "Charades_v1_480" / f"{r['id']}.mp4", label))
    return _Annotations(samples, ann, classes=classes)


# ----------------------------------------------------------------------------- cards

_VIEWS_NOTE = ("The protocol applies to every split but train (tokbench-segments 1x1 there); choose another or "
               "change its frames, stride, views and aggregation with the dataset options (CLI: --eval-*).")

CARDS: dict[str, DatasetCard] = {}


def _card(*, protocol: str, **kw: Any) -> DatasetCard:
    """A real dataset's card; its default views and their source come from ``protocol``."""
    p = get_protocol(protocol)
    extra = {**kw.pop("extra", {}), "protocol_source": p.source, "protocol_rules": p.describe()}
    card = DatasetCard(kind="real", protocol=protocol, views=(p.temporal_clips, p.spatial_crops), extra=extra, **kw)
    CARDS[card.name] = card
    return card


K400 = _card(
    name="kinetics400", mirrors="Kinetics-400", task="single", num_classes=400,
    decides="which object or scene is present (appearance)",
    stresses="spatial selection; little temporal need",
    splits=("train", "val", "test"), eval_split="val", protocol="videomae-k400",
    files=("train.csv", "validate.csv", "test.csv"),
    notes="Annotations under root, root/annotations or root/labels; validate.csv or val.csv (cvdfoundation "
          "mirror). Class index = position in the sorted label names of train.csv (so val needs train.csv); "
          "num_classes comes from the data. Clips found by file stem anywhere under root (flat, per-split or "
          "<label>/ folders): <youtube_id>_<start:06d>_<end:06d> or <youtube_id>, .mp4/.webm/.mkv/.avi "
          "(inferred from common mirrors). A test.csv without labels is an error. Protocol videomae-k400: VideoMAE's "
          "K400 test (every 4th frame, 5 windows of 16, 3 crops, mean of softmax). " + _VIEWS_NOTE,
    extra={"layout": "<root>/**/<youtube_id>_<start:06d>_<end:06d>.mp4"},
)
SSV2 = _card(
    name="ssv2", mirrors="Something-Something v2", task="single", num_classes=174,
    decides="how an object moves or interacts with another (motion, object interactions)",
    stresses="temporal relations; tokens that change",
    splits=("train", "val"), eval_split="val", protocol="videomae-ssv2",
    files=("something-something-v2-labels.json", "something-something-v2-train.json",
           "something-something-v2-validation.json"),
    notes="Class = labels[template with '[' and ']' removed]. Videos <id>.webm found by stem anywhere under "
          "root (the archive extracts to 20bn-something-something-v2/; .mp4 re-encodes accepted). The test "
          "split has no public labels. Protocol videomae-ssv2: VideoMAE's SSv2 test (2 clips of 16 frames, both "
          "spanning the whole video, 3 crops, mean of softmax). " + _VIEWS_NOTE,
    extra={"layout": "<root>/**/<id>.webm"},
)
EPIC = _card(
    name="epic-kitchens-100", mirrors="Epic-Kitchens-100", task="verb_noun", num_classes=97 * 300,
    num_verbs=97, num_nouns=300,
    decides="verb + noun of an egocentric action, camera moving",
    stresses="no static background (RLT cannot prune)",
    splits=("train", "val"), eval_split="val", protocol="motionformer-epic",
    files=("EPIC_100_train.csv", "EPIC_100_validation.csv", "EPIC_100_verb_classes.csv",
           "EPIC_100_noun_classes.csv"),
    notes="label = verb * num_nouns + noun (action id; num_nouns from EPIC_100_noun_classes.csv). Segment "
          "start_frame..stop_frame, 1-based and inclusive, as the rgb_frames numbering (inclusive end "
          "inferred). Reads <participant>/videos/<video_id>.MP4 (or .mp4) if present, else frames "
          "<participant>/rgb_frames/<video_id>/frame_0000000001.jpg (or <participant>/<video_id>/). Segments "
          "past 4 s into a video are reached by seeking (frame = timestamp x frame rate). Protocol "
          "motionformer-epic: Motionformer's EK test (10 windows of 16 frames at stride 4 at 30 fps, 3 crops, "
          "verb and noun softmax summed); the segment is the annotation's start_frame..stop_frame (Motionformer "
          "derives it from the timestamps). " + _VIEWS_NOTE,
    extra={"layout": "<root>/<participant>/videos/<video_id>.MP4 | <root>/<participant>/rgb_frames/<video_id>/"},
)
DIVING48 = _card(
    name="diving48", mirrors="Diving48", task="single", num_classes=48,
    decides="the order of several sub-motions (takeoff, somersault, twist, flight position)",
    stresses="fine-grained temporal detail",
    splits=("train", "test"), eval_split="test", protocol="aim-diving48",
    files=("Diving48_V2_train.json", "Diving48_V2_test.json", "Diving48_vocab.json"),
    notes="V2 annotations; segment [start_frame, end_frame) of rgb/<vid_name>.mp4 (exclusive end inferred; a "
          "segment past the video's end is cut to its decoded frames). Protocol aim-diving48: AIM's Diving-48 test "
          "config (one clip of segment-centred frames, 3 crops, mean of softmax). " + _VIEWS_NOTE,
    extra={"layout": "<root>/rgb/<vid_name>.mp4"},
)
JESTER = _card(
    name="jester", mirrors="20BN-Jester v1", task="single", num_classes=27,
    decides="which hand gesture is made",
    stresses="small informative region, static background",
    splits=("train", "val"), eval_split="val", protocol="direcformer-jester",
    files=("jester-v1-labels.csv", "jester-v1-train.csv", "jester-v1-validation.csv"),
    notes="Semicolon-separated 'id;label' without header; class index = line of jester-v1-labels.csv. Frames "
          "20bn-jester-v1/<id>/00001.jpg...; frame count = .jpg files in the folder. The test split has no "
          "public labels. Protocol direcformer-jester: DirecFormer's Jester test (one clip of segment-centred "
          "frames, 3 crops, summed logits). " + _VIEWS_NOTE,
    extra={"layout": "<root>/20bn-jester-v1/<id>/00001.jpg"},
)
CHARADES = _card(
    name="charades", mirrors="Charades v1", task="multilabel", num_classes=157,
    decides="several events per video (multi-label)",
    stresses="many informative regions, long-range time",
    splits=("train", "test"), eval_split="test", protocol="slowfast-charades",
    files=("Charades_v1_train.csv", "Charades_v1_test.csv", "Charades_v1_classes.txt"),
    notes="Video-level target: multi-hot over the classes of Charades_v1_classes.txt of every class in "
          "'actions' (empty: all zeros); frames sampled over the whole video. Videos Charades_v1_480/<id>.mp4 "
          "(SlowFast reads 24 fps frame folders). Protocol slowfast-charades: SlowFast's Charades test (10 "
          "windows of 16 frames at stride 4, 3 crops, per-class max of the sigmoid over views). " + _VIEWS_NOTE,
    extra={"layout": "<root>/Charades_v1_480/<id>.mp4"},
)


def _options(card: DatasetCard, split: str, overrides: dict[str, Any]) -> tuple[Protocol, int | None]:
    unknown = sorted(set(overrides) - set(OPTIONS))
    if unknown:
        raise TokbenchError(f"dataset {card.name!r} has no option {unknown[0]!r}; options: {', '.join(OPTIONS)}")
    given = {k: v for k, v in overrides.items() if v is not None}
    name = given.pop("protocol", TRAIN_PROTOCOL if split == "train" else card.protocol)
    limit = given.pop("limit", None)
    aggregation = given.pop("aggregation", None)
    if split == "train" and name == TRAIN_PROTOCOL:
        given = {"temporal_clips": 1, "spatial_crops": 1, **given}
    try:
        options = {k: int(v) for k, v in given.items()}
        if any(float(v) != options[k] for k, v in given.items()):
            raise ValueError(f"non-integer value in {given}")
        limit = None if limit is None else int(limit)
    except (TypeError, ValueError) as e:
        raise TokbenchError(f"dataset {card.name!r}: options must be integers ({e})") from e
    if limit is not None and limit < 1:
        raise TokbenchError(f"dataset {card.name!r}: limit must be >= 1, got {limit}")
    protocol = get_protocol(str(name), aggregation=aggregation, **options)
    protocol.check_task(card.task, card.name)
    return protocol, limit


def _register(card: DatasetCard, parse: Callable[[DatasetCard, Path, str], _Annotations]) -> None:
    def factory(split: str, root: Path | None, **overrides: Any) -> RealVideoDataset:
        if split not in card.splits:
            raise TokbenchError(f"dataset {card.name!r} has no split {split!r}; splits: {', '.join(card.splits)}")
        spec, limit = _options(card, split, overrides)
        if root is None:
            raise DataError(f"dataset {card.name!r} needs its data folder: pass root=PATH (CLI: --data-root PATH)")
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"{card.name}: data folder {root} does not exist (expected {', '.join(card.files)} in it)")
        ann = parse(card, root, split)
        if not ann.samples:
            raise DataError(f"{card.name}/{split}: {ann.source} lists no samples")
        present = [s for s in ann.samples if s.exists()]
        if any(s.frames_pattern is None for s in present):
            require_av()
        missing = [s for s in ann.samples if not s.exists()]
        if not present:
            raise DataError(f"{card.name}/{split}: none of the {len(missing)} annotated videos was found under "
                            f"{root} (first expected: {missing[0].path})")
        if missing:
            warnings.warn(f"{card.name}/{split}: {len(missing)} of {len(ann.samples)} annotated videos not found "
                          f"(first: {missing[0].path}); left out, ids in dataset.missing", SkippedVideoWarning,
                          stacklevel=3)
        return RealVideoDataset(card, split, present[:limit], spec, classes=ann.classes, verbs=ann.verbs,
                                nouns=ann.nouns, missing=[s.id for s in missing])

    factory.__name__ = factory.__qualname__ = f"create_{card.name.replace('-', '_')}"
    factory.__doc__ = f"{card.mirrors} from its published layout under ``root`` (see tokbench.data.real)."
    register_dataset(card)(factory)


for _c, _p in ((K400, _parse_k400), (SSV2, _parse_ssv2), (EPIC, _parse_epic), (DIVING48, _parse_diving48),
               (JESTER, _parse_jester), (CHARADES, _parse_charades)):
    _register(_c, _p)
