"""The checks a task plugin's own tests call: the contract every facezoo task keeps.

:func:`check_task` builds a task on a tiny randomly initialised timm backbone and checks that it
predicts typed results that survive a JSON round trip (the same alone as in a batch), that
``decode`` and ``metrics`` work on numpy with the task's synthetic targets, that a few
optimisation steps with its loss reduce the loss, that ``save_pretrained`` → :func:`facezoo.load`
gives identical outputs, and that its ONNX export computes what torch does. Each ``check_*``
raises :class:`AssertionError` naming the task and what failed, so they work under pytest,
unittest or a plain script. The kit needs a task's training targets; a classification task's
labels give them, any other task states ``TaskSpec(synthetic_targets=...)``.

``FACES`` are five small public-domain face photos shipped with facezoo (``photos/README.md``);
without ``photos`` the checks run on seeded noise images with ``detect=False``.

Example:
    >>> from facezoo.testing import FACES, check_task
    >>> results = check_task("beauty", photos=FACES[:2], onnx=False)
    >>> all(1.0 <= r.score <= 5.0 for r in results)
    True

torch is imported by the checks that build models, not by importing this module.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import json
import math
import os
import struct
import tempfile
import unittest
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .. import _plugins
from .._factory import load
from ..registry import TaskSpec
from ..results import FaceResult

__all__ = [
    "BACKBONES",
    "FACES",
    "PHOTOS",
    "check_build",
    "check_metrics",
    "check_onnx",
    "check_predict",
    "check_save_load",
    "check_task",
    "check_training",
    "png_claiming",
    "synthetic_photos",
    "synthetic_targets",
]

#: timm's tiny randomly initialised models of three families (ResNet, EfficientNet, and a ViT
#: built for one input size): every task builds on them in milliseconds.
BACKBONES = ("test_resnet", "test_efficientnet", "test_vit")
#: The folder of the test photos (their provenance and licences are in its README.md).
PHOTOS = Path(__file__).resolve().parent / "photos"
#: Real face photos: three portraits (two of one person), a group of two and a grayscale one.
FACES = [PHOTOS / name for name in ("portrait.jpg", "portrait_same_person.jpg", "portrait_other_person.jpg", "group.jpg", "grayscale.jpg")]
#: ONNX Runtime's outputs agree with torch's to this, relative to their scale (float32 kernels
#: differ in summation order); the same bound ``FaceModel.export_onnx`` checks.
ONNX_TOLERANCE = 1e-3
#: A result alone and in a batch agree to this: batch size changes float rounding in the last
#: digits, and 0.01 is far below any quantity's meaning (pixels for keypoints, units of 1 else).
BATCH_TOLERANCE = 1e-2
#: ``repr`` of one result stays under this many characters (``print(faces)`` is a few lines).
REPR_LIMIT = 200


def synthetic_photos(count: int = 4, size: tuple[int, int] = (120, 100), seed: int = 0) -> list[np.ndarray]:
    """``count`` RGB ``H×W×3`` uint8 images of seeded noise, ``size`` (h, w): inputs for checks
    that need no real face (with ``detect=False``).

    Example:
        >>> [image.shape for image in synthetic_photos(2)]
        [(120, 100, 3), (120, 100, 3)]
    """
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(count)]


def synthetic_targets(task: TaskSpec, count: int) -> np.ndarray:
    """``count`` training targets of ``task`` (the space its loss and ``metrics`` take).

    The task's ``synthetic_targets(count)`` when it states one; otherwise its labels in turn,
    through ``encode_target`` (with no crop) when it has one. Targets are a numpy array, float32
    or int64 class indices.

    Example:
        >>> import facezoo
        >>> synthetic_targets(facezoo.load("expression", "test_resnet", pretrained=False).task, 3).shape
        (3, 7)
    """
    if task.synthetic_targets is not None:
        with _step(task.name, "synthetic_targets"):
            targets = task.synthetic_targets(count)
    elif task.labels:
        indices = [i % len(task.labels) for i in range(count)]
        if task.encode_target is None:
            targets = np.array(indices, dtype=np.int64)
        else:
            with _step(task.name, "encode_target(class index, None) for its synthetic targets (give TaskSpec(synthetic_targets=...) if it needs a crop)"):
                targets = np.stack([np.asarray(task.encode_target(i, None)) for i in indices])
    else:
        raise AssertionError(
            f"task {task.name!r} has no labels to make synthetic targets from: give its TaskSpec synthetic_targets=... "
            "(a function of the count returning training targets; see docs/plugins.md)"
        )
    shape, dtype = getattr(targets, "shape", None), getattr(targets, "dtype", None)
    _require(
        isinstance(targets, np.ndarray) and targets.ndim >= 1 and shape[0] == count and dtype in (np.float32, np.int64),
        task.name,
        f"synthetic targets must be a numpy array of {count} float32 targets or int64 class indices, got {type(targets).__name__} of shape {shape} and dtype {dtype}",
    )
    return targets


def check_build(task: str | TaskSpec, backbone: str = BACKBONES[0]):
    """Build an untrained ``task`` model on ``backbone`` (seeded, the caller's RNG untouched) and
    run its network forward on a batch of two; returns the model.

    Example:
        >>> check_build("beauty").config.model_id
        'beauty/test_resnet'
    """
    import torch

    spec = _registered(task)
    with _step(spec.name, f"facezoo.load({spec.name!r}, {backbone!r}, pretrained=False)"), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = load(spec.name, backbone, pretrained=False)
    config = model.config
    _require(
        (config.model_id, config.trained) == (f"{spec.name}/{backbone}", False),
        spec.name,
        f"an untrained model on {backbone} should have the id {spec.name}/{backbone} and trained=False, got {config.model_id} trained={config.trained}",
    )
    height, width = config.preprocess.input_size
    with _step(spec.name, "a forward pass of its network"), torch.no_grad():
        outputs = model.network(torch.randn(2, 3, height, width, generator=torch.Generator().manual_seed(0)))
    _require(
        outputs.shape[0] == 2 and bool(torch.isfinite(outputs).all()),
        spec.name,
        f"the network's outputs for a batch of 2 should be finite with 2 rows, got shape {tuple(outputs.shape)}",
    )
    declared = spec.width(config.head)  # what an ONNX graph of this model is checked against when it loads
    if declared is not None:
        width = math.prod(outputs.shape[1:])
        _require(width == declared, spec.name, f"TaskSpec.output_width says {declared} outputs per face for {config.head}, the network gives {width}")
    return model


def check_predict(model, photos: Sequence[Any] | None = None, *, detect: bool = False) -> list[FaceResult]:
    """``predict`` on ``photos`` (default :func:`synthetic_photos`): typed results stamped with the
    model, whose ``to_dict()`` survives a JSON round trip unchanged, and the same numbers for a
    photo alone as in the batch. Returns every face's result, in order.

    Example:
        >>> [result] = check_predict(check_build("glasses"), FACES[:1])
        >>> type(result).__name__
        'GlassesResult'
    """
    config, name = model.config, model.config.task
    photos = _photos(photos)
    with _step(name, f"predict on {len(photos)} photos (detect={detect})"):
        per_photo = model.predict(photos, detect=detect)
    _require(len(per_photo) == len(photos), name, f"predict on {len(photos)} photos gave {len(per_photo)} lists of results")
    if not detect:
        _require(all(len(faces) == 1 for faces in per_photo), name, f"with detect=False each photo is one face, got {[len(f) for f in per_photo]} results")
    results = _flat(per_photo)
    _require(bool(results), name, f"predict found no face in any of the {len(photos)} photos")
    for result in results:
        _require(isinstance(result, FaceResult), name, f"postprocess must return facezoo.FaceResult subclasses, got {type(result).__name__}")
        kind = type(result).__name__
        shown = repr(result)
        _require(
            shown.startswith(f"{kind}(") and len(shown) < REPR_LIMIT,
            name,
            f"repr({kind}) should be short (under {REPR_LIMIT} characters: long lists by their length, as FaceResult.__repr__ does), got {shown:.300}",
        )
        _require(
            (result.model, result.trained) == (config.model_id, config.trained) and (result.face is None) == (not detect),
            name,
            f"{kind} should carry model={config.model_id!r}, trained={config.trained} and a face only when detecting, got "
            f"model={result.model!r}, trained={result.trained}, face={result.face}",
        )
        with _step(name, f"{kind}.to_dict()"):
            data = result.to_dict()
        try:
            text = json.dumps(data, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise AssertionError(f"task {name!r}: {kind}.to_dict() is not JSON ({exc}): {data!r:.300}") from None
        _require(json.loads(text) == data, name, f"{kind}.to_dict() changes through JSON (a tuple, a numpy number or a non-str key?): {data!r:.300}")
    with _step(name, "predict on one photo"):
        alone = model.predict(photos[0], detect=detect)
    a, b = _numbers([r.to_dict() for r in alone]), _numbers([r.to_dict() for r in per_photo[0]])
    _require(
        len(a) == len(b) and np.allclose(a, b, rtol=0.0, atol=BATCH_TOLERANCE),
        name,
        f"the first photo alone and in a batch of {len(photos)} give different results (beyond {BATCH_TOLERANCE}): {a[:8]} vs {b[:8]}",
    )
    return results


def check_metrics(model, photos: Sequence[Any] | None = None) -> dict[str, float]:
    """``decode`` the outputs for ``photos`` (whole images as faces) into predictions shaped like
    the task's :func:`synthetic_targets`, and score them with ``metrics`` on numpy arrays: a dict
    of finite floats. Returns the scores (``{}`` for a task without metrics).

    Example:
        >>> sorted(check_metrics(check_build("glasses")))
        ['accuracy']
    """
    spec, config, name = model.task, model.config, model.config.task
    crops, _, _ = model.prepare(_photos(photos), detect=False)
    outputs = model.network.run(model.transform.to_array(crops))
    targets = synthetic_targets(spec, len(crops))
    with _step(name, "decode(outputs, config) on numpy outputs"):
        predictions = np.asarray(spec.predictions(outputs, config))
    _require(len(predictions) == len(crops), name, f"decode gave {len(predictions)} predictions for {len(crops)} faces")
    if np.issubdtype(targets.dtype, np.floating):
        _require(
            predictions.shape == targets.shape,
            name,
            f"decode gives predictions of shape {predictions.shape} but the training targets have {targets.shape}: "
            "decode must give predictions in the training-target space",
        )
    if spec.metrics is None:
        return {}
    with _step(name, "metrics(predictions, targets, config) on numpy arrays"):
        scores = spec.metrics(predictions, targets, config)
    _require(isinstance(scores, dict) and bool(scores), name, f"metrics must return a non-empty dict, got {scores!r:.200}")
    bad = {k: v for k, v in scores.items() if not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, float) or not math.isfinite(v)}
    _require(not bad, name, f"metrics must map names to finite Python floats; these are not: {bad!r:.300}")
    return scores


def check_training(model, photos: Sequence[Any] | None = None, steps: int = 8) -> list[float]:
    """``steps`` Adam steps (lr 1e-3) with the task's loss on ``photos`` (whole images as faces)
    and its :func:`synthetic_targets` reduce the loss by at least 10 %, and ``sample_groups``
    (where the task has it) gives one whole number per target. Trains a copy of the
    network (``model`` is left as it was), dropout off so that the losses are comparable; returns
    the losses.

    Example:
        >>> losses = check_training(check_build("beauty"))
        >>> losses[-1] < losses[0]
        True
    """
    import torch
    from torch import nn

    spec, config, name = model.task, model.config, model.config.task
    crops, _, _ = model.prepare(_photos(photos), detect=False)
    images = torch.from_numpy(model.transform.to_array(crops))
    targets = torch.from_numpy(synthetic_targets(spec, len(crops)))
    classes = int(targets.max()) + 1 if targets.dtype == torch.int64 and targets.ndim == 1 else None  # as facezoo.train does
    if spec.sample_groups is not None:
        with _step(name, "sample_groups(targets) on numpy targets"):
            groups = np.asarray(spec.sample_groups(targets.numpy()))
        _require(
            groups.shape == (len(targets),) and np.issubdtype(groups.dtype, np.integer), name,
            f"sample_groups must give one whole number per target: {len(targets)} targets gave shape {groups.shape}, dtype {groups.dtype}",
        )
    network = copy.deepcopy(model.network).train()
    for module in network.modules():
        if isinstance(module, nn.Dropout):
            module.eval()  # the loss of one fixed batch must be comparable from step to step
    losses = []
    with _step(name, f"{steps} optimisation steps with the task's loss"), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        loss_fn = spec.make_loss(config.head, num_classes=classes)
        optimizer = torch.optim.Adam([*network.parameters(), *loss_fn.parameters()], lr=1e-3)
        for _ in range(steps):
            loss = loss_fn(network(images), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    _require(all(math.isfinite(v) for v in losses), name, f"the loss is not finite: {losses}")
    _require(losses[-1] < 0.9 * losses[0], name, f"{steps} optimisation steps on {len(crops)} faces did not reduce the loss by 10 %: {losses}")
    return losses


def check_save_load(model, directory: str | Path, photos: Sequence[Any] | None = None):
    """``save_pretrained(directory)`` (a new or empty folder) writes the three Hub files, and
    :func:`facezoo.load` of it gives the same config, class, outputs and results; returns the
    loaded model.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     check_save_load(check_build("beauty"), tmp).config.model_id
        'beauty/test_resnet'
    """
    import torch

    name, directory, photos = model.config.task, Path(directory), _photos(photos)
    with _step(name, f"save_pretrained({str(directory)!r})"):
        model.save_pretrained(directory)
    files = sorted(p.name for p in directory.iterdir())
    _require(files == ["README.md", "config.json", "model.safetensors"], name, f"save_pretrained should write README.md, config.json and model.safetensors, the folder holds {files}")
    with _step(name, "facezoo.load of the saved folder"), torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)  # a load that forgot the weights would now differ
        loaded = load(str(directory), runtime="torch")
    _require(loaded.config == model.config, name, f"config.json does not load back as the config it was saved from: {loaded.config} != {model.config}")
    _require(
        type(loaded) is type(model) and not loaded.network.training,
        name,
        f"facezoo.load gave a {type(loaded).__name__} in training mode={loaded.network.training}, not a {type(model).__name__} in eval mode",
    )
    batch = model.transform.to_array(model.prepare(photos, detect=False)[0])
    _require(bool((model.network.run(batch) == loaded.network.run(batch)).all()), name, "the loaded model's outputs differ from the saved one's")
    saved, back = (_flat(m.predict(photos, detect=False)) for m in (model, loaded))
    _require([r.to_dict() for r in back] == [r.to_dict() for r in saved], name, "the loaded model's results differ from the saved one's")
    return loaded


def check_onnx(model, directory: str | Path, photos: Sequence[Any] | None = None):
    """``save_pretrained`` into ``directory/model``, then ``facezoo.load`` of it with
    ``runtime="onnx"``, which exports the network afresh (into ``directory/cache``, never an export
    cached by an earlier run): its outputs agree with torch's within :data:`ONNX_TOLERANCE` and it gives results of
    the same types. Returns the ONNX model.

    Raises :class:`unittest.SkipTest` (a skip under pytest too) when onnxruntime or onnxscript is
    not installed (``pip install 'facezoo[onnx]'``).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:   # doctest: +SKIP
        ...     check_onnx(check_build("beauty"), tmp).runtime
        'onnx'
    """
    name, directory, photos = model.config.task, Path(directory), _photos(photos)
    missing = [module for module in ("onnxruntime", "onnxscript") if importlib.util.find_spec(module) is None]
    if missing:
        raise unittest.SkipTest(f"task {name!r}: ONNX parity not checked, {' and '.join(missing)} not installed (pip install 'facezoo[onnx]')")
    with _step(name, "save_pretrained, then facezoo.load(..., runtime='onnx')"):
        model.save_pretrained(directory / "model")
        with _environment(FACEZOO_CACHE=str(directory / "cache")):
            on_onnx = load(str(directory / "model"), runtime="onnx")
    batch = model.transform.to_array(model.prepare(photos, detect=False)[0])
    with _step(name, "running the ONNX export"):
        expected, got = np.asarray(model.network.run(batch)), np.asarray(on_onnx.network.run(batch))
    _require(expected.shape == got.shape, name, f"the ONNX export gives outputs of shape {got.shape}, torch {expected.shape}")
    error = float(np.abs(expected - got).max() / max(1.0, float(np.abs(expected).max())))
    _require(error <= ONNX_TOLERANCE, name, f"the ONNX export's outputs differ from torch's by {error:.2g} (> {ONNX_TOLERANCE}, relative to their scale)")
    kinds = [[type(r) for r in faces] for faces in (model.predict(photos, detect=False), on_onnx.predict(photos, detect=False))]
    _require(kinds[0] == kinds[1], name, "the ONNX model's results are not of the torch model's types")
    return on_onnx


def check_task(
    task: str | TaskSpec,
    *,
    backbone: str = BACKBONES[0],
    photos: Sequence[Any] | None = None,
    detect: bool = False,
    check_result: Callable[[FaceResult], None] | None = None,
    onnx: bool = True,
) -> list[FaceResult]:
    """Every check of this module on ``task`` (a registered task's name or its ``TaskSpec``):
    build on ``backbone``, predict on ``photos`` (paths or images; default
    :func:`synthetic_photos`) with ``detect``, call ``check_result(result)`` on each result (your
    task's own assertions: what its numbers mean), ``decode`` → ``metrics``, training steps,
    save → load and, with ``onnx``, ONNX parity last. Returns the results of predict.

    Raises :class:`AssertionError` naming the task and what failed; :class:`unittest.SkipTest`
    when only the ONNX check could not run (onnxruntime not installed; the message says so).

    Example:
        >>> def in_range(result):
        ...     assert 0.0 <= result.probability <= 1.0, result
        >>> len(check_task("glasses", photos=FACES[:2], check_result=in_range, onnx=False))
        2
    """
    spec = _registered(task)
    photos = _photos(photos)
    model = check_build(spec, backbone)
    results = check_predict(model, photos, detect=detect)
    if check_result is not None:
        for result in results:
            try:
                check_result(result)
            except AssertionError as exc:
                raise AssertionError(f"task {spec.name!r}: check_result failed on {result}: {exc}") from exc
    check_metrics(model, photos)
    check_training(model, photos)
    with tempfile.TemporaryDirectory(prefix="facezoo-check-") as tmp:
        check_save_load(model, Path(tmp) / "saved", photos)
        if onnx:
            try:
                check_onnx(model, Path(tmp) / "onnx", photos)
            except unittest.SkipTest as skip:
                raise unittest.SkipTest(f"{skip}; every other check passed") from None
    return results


def png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims ``width``×``height`` pixels: a decompression bomb's shape,
    to test that an application refuses it before decoding.

    Example:
        >>> len(png_claiming(30000, 30000)) < 100
        True
    """

    buffer = io.BytesIO()
    Image.new("L", (16, 16)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:33] = ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


def _registered(task: str | TaskSpec) -> TaskSpec:
    """The registered spec of ``task``; a spec that is not the registered one is an error (models
    are always built from the registry)."""
    name = task.name if isinstance(task, TaskSpec) else task
    registry = _plugins.registry()
    if name not in registry.names("task"):
        raise AssertionError(f"task {name!r} is not registered (tasks: {registry.names('task')}): install its plugin, or facezoo.register_plugin(module, name=...)")
    spec = registry.get("task", name)
    if isinstance(task, TaskSpec) and task != spec:
        raise AssertionError(f"task {name!r}: the TaskSpec given is not the one plugin {registry.owner('task', name)!r} registered, which facezoo.load builds from")
    return spec


def _photos(photos: Sequence[Any] | None) -> list[Any]:
    return list(photos) if photos is not None else synthetic_photos()


def _flat(per_photo: list[list[FaceResult]]) -> list[FaceResult]:
    return [result for faces in per_photo for result in faces]


def _numbers(data: Any) -> list[float]:
    """The numbers in a result's ``to_dict()``, in order (to compare results approximately)."""
    if isinstance(data, dict):
        return [v for key in sorted(data) for v in _numbers(data[key])]
    if isinstance(data, list):
        return [v for item in data for v in _numbers(item)]
    return [float(data)] if isinstance(data, (int, float)) else []


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Set environment variables for the duration of a block (facezoo reads them at call time)."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _require(ok: bool, task: str, what: str) -> None:
    if not ok:
        raise AssertionError(f"task {task!r}: {what}")


@contextlib.contextmanager
def _step(task: str, what: str) -> Iterator[None]:
    """Turn an exception raised inside a plugin's code into an AssertionError naming the task and the step."""
    try:
        yield
    except (AssertionError, unittest.SkipTest):
        raise
    except Exception as exc:
        raise AssertionError(f"task {task!r}: {what} raised {type(exc).__name__}: {exc}") from exc
