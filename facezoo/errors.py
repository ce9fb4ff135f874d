"""Exceptions raised by facezoo.

Every error a user can cause is a :class:`FacezooError` whose message names the offending input
and says what to do next. Catch ``facezoo.FacezooError`` to handle them all.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterable, Iterator


class FacezooError(Exception):
    """Base class of every error facezoo raises on purpose."""


class UnknownNameError(FacezooError, LookupError):
    """A task, model, backbone, dataset or detector name that is not registered."""


class InputError(FacezooError, ValueError):
    """An image or tensor handed to facezoo that it cannot use."""


class NotAnImageError(InputError):
    """Bytes or a file that no image decoder recognises (a server answers 415 Unsupported Media Type)."""


class ImageTooLargeError(InputError):
    """An image with more pixels than allowed: the guard against decompression bombs (a server answers 413)."""


class WeightsError(FacezooError):
    """Missing, mismatched or unsafe model weights."""


class ConfigError(WeightsError, ValueError):
    """A model config facezoo cannot use: a ``config.json``, :class:`~facezoo.ModelConfig` or
    :class:`~facezoo.Preprocess` value out of its type or bounds (the message names the field), a
    config of a newer schema, or a model id that is not ``task/backbone.tag``."""


class HubError(FacezooError):
    """A Hugging Face Hub repository or revision that cannot be reached or does not exist."""


class PluginError(FacezooError):
    """A plugin that registers something badly (for example a name twice)."""


class DatasetError(FacezooError):
    """A dataset that is missing or not laid out as its adapter expects."""


class MissingExtraError(FacezooError, ImportError):
    """An optional dependency is needed; the message names the extra to install."""

    def __init__(self, module: str, extra: str, purpose: str):
        super().__init__(
            f"{purpose} needs the optional package {module!r}: pip install 'facezoo[{extra}]'"
        )


# The packages of the torch layer and the extra that brings each (the lean install has none of them).
TORCH_EXTRAS = {"torch": "torch", "torchvision": "torch", "timm": "torch", "onnx": "onnx", "onnxscript": "onnx"}


@contextlib.contextmanager
def needs_torch(purpose: str, extra: str | None = None) -> Iterator[None]:
    """Turn a missing package of the torch layer (torch, torchvision, timm; onnx and onnxscript
    for exporting) into a :class:`MissingExtraError` that names its extra (or ``extra``, one that
    brings them all) and ``purpose``.

    Example:
        >>> with needs_torch("facezoo train"):         # doctest: +SKIP
        ...     import torch
        facezoo.MissingExtraError: facezoo train needs the optional package 'torch': pip install 'facezoo[torch]'
    """
    try:
        yield
    except ModuleNotFoundError as exc:
        package = (exc.name or "").partition(".")[0]
        if package not in TORCH_EXTRAS:
            raise
        raise MissingExtraError(package, extra or TORCH_EXTRAS[package], purpose) from None


def unknown_name(kind: str, name: str, choices: Iterable[str], hint: str = "") -> UnknownNameError:
    """Build an :class:`UnknownNameError` that lists the valid choices and the closest match.

    Example:
        >>> str(unknown_name("task", "beuty", ["beauty", "identity"]))
        "unknown task 'beuty'. Did you mean 'beauty'? Valid: beauty, identity"
    """
    choices = sorted(set(choices))
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    message = f"unknown {kind} {name!r}."
    if close:
        message += f" Did you mean {close[0]!r}?"
    if len(choices) > 30:
        nearby = difflib.get_close_matches(name, choices, n=5, cutoff=0.3)
        message += f" Close names: {', '.join(nearby)} ({len(choices)} valid in all)" if nearby else f" ({len(choices)} valid names)"
    elif choices:
        message += f" Valid: {', '.join(choices)}"
    else:
        message += f" No {kind} is registered."
    if hint:
        message += f". {hint}"
    return UnknownNameError(message)
