"""A model directory on disk: ``config.json`` + ``model.safetensors`` + ``README.md`` (Hub layout).

This layer only reads and writes files; it builds no model and talks to no server. The factory
(:mod:`facezoo._factory`) composes it with model building, and :mod:`facezoo._hub` moves
directories to and from the Hub. Only safetensors is ever read: no pickle.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from .config import ModelConfig
from .errors import WeightsError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
MODEL_FILES = (CONFIG_NAME, WEIGHTS_NAME, CARD_NAME)


def read_config(directory: str | os.PathLike) -> ModelConfig:
    """The config of a model directory, or a :class:`WeightsError` saying what is missing."""
    directory = Path(directory)
    if not directory.exists():
        raise WeightsError(f"{directory}: no such model directory")
    if not directory.is_dir():
        raise WeightsError(f"{directory} is a file; a facezoo model is a directory holding {', '.join(MODEL_FILES)}")
    if not (directory / CONFIG_NAME).is_file():
        found = sorted(p.name for p in directory.iterdir())[:10]
        raise WeightsError(f"{directory} has no {CONFIG_NAME} (found {found or 'nothing'}); a facezoo model directory holds {', '.join(MODEL_FILES)}")
    return ModelConfig.load(directory / CONFIG_NAME)


def weights_path(directory: str | os.PathLike) -> Path:
    """``directory/model.safetensors``, which must exist (facezoo loads no other weights format)."""
    path = Path(directory) / WEIGHTS_NAME
    if not path.is_file():
        found = sorted(p.name for p in Path(directory).iterdir())
        raise WeightsError(f"{Path(directory)} has no {WEIGHTS_NAME} (found {found}); facezoo loads safetensors only")
    return path


def read_weights(directory: str | os.PathLike) -> dict[str, Any]:
    """The state dict of a model directory: safetensors only, floating point and finite."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = weights_path(directory)
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path} is not a readable safetensors file ({exc})") from None
    for name, tensor in state.items():
        if tensor.is_floating_point():
            if not bool(torch.isfinite(tensor).all()):
                raise WeightsError(f"{path}: tensor {name!r} holds NaN or infinite values; the file is damaged or was saved from a diverged run")
        elif not name.endswith("num_batches_tracked"):
            raise WeightsError(f"{path}: tensor {name!r} has dtype {tensor.dtype}; facezoo weights are floating point (quantised files are not loaded)")
    return state


def write_model_dir(directory: str | os.PathLike, config: ModelConfig, state: dict[str, Any] | None, card: str, *, half: bool = False) -> Path:
    """Write a model directory; ``half=True`` stores floating-point weights as float16, and
    ``state=None`` rewrites only the config and card of a directory whose weights stay as they are
    (byte for byte: the digests that ONNX files are stamped with stay valid).

    Each file is written to a temporary name first and then renamed, so an interrupted save never
    leaves a half-written model behind.
    """
    import torch
    from safetensors.torch import save_file

    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise WeightsError(f"cannot save a model to {directory}: it is a file; pass a directory path")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if state is None and not (directory / WEIGHTS_NAME).is_file():
            raise WeightsError(f"cannot update {directory}: it has no {WEIGHTS_NAME} to keep")
        tensors = {}
        for name, tensor in (state or {}).items():
            tensor = tensor.detach().cpu()
            if half and tensor.is_floating_point():
                tensor = tensor.to(torch.float16)
            tensors[name] = tensor.contiguous().clone()
        with tempfile.TemporaryDirectory(dir=directory, prefix=".saving-") as tmp:
            config.save(Path(tmp) / CONFIG_NAME)
            if state is not None:
                save_file(tensors, str(Path(tmp) / WEIGHTS_NAME), metadata={"format": "pt", "model_id": config.model_id})
            (Path(tmp) / CARD_NAME).write_text(card)
            umask = os.umask(0)
            os.umask(umask)
            for name in MODEL_FILES if state is not None else (CONFIG_NAME, CARD_NAME):
                os.chmod(Path(tmp) / name, 0o666 & ~umask)  # temporary files are private; the model is not
                os.replace(Path(tmp) / name, directory / name)
    except PermissionError as exc:
        raise WeightsError(f"cannot save a model to {directory}: permission denied ({exc.filename}); choose a writable directory") from None
    except OSError as exc:
        raise WeightsError(f"cannot save a model to {directory}: {exc.strerror or exc}") from None
    return directory
