"""Hub layout on disk and on the Hugging Face Hub: config.json + model.safetensors + README.md.

Everything remote goes through ``huggingface_hub`` (its cache, ``HF_HUB_OFFLINE``, ``HF_ENDPOINT``
and revision pinning by branch, tag or commit sha). Only safetensors is ever loaded; pickles are
never downloaded.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from .config import ModelConfig
from .errors import HubError, WeightsError

if TYPE_CHECKING:
    from ._model import FaceModel

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
MODEL_FILES = (CONFIG_NAME, WEIGHTS_NAME, CARD_NAME)


def save_model(model: FaceModel, directory: Path, *, card: str | None = None, half: bool = False) -> Path:
    """Write a model directory in Hub layout. ``half=True`` stores weights as float16 (loaded back as float32)."""
    import torch
    from safetensors.torch import save_file

    from .cards import model_card

    directory.mkdir(parents=True, exist_ok=True)
    model.config.save(directory / CONFIG_NAME)
    state = {}
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu()
        if half and tensor.is_floating_point():
            tensor = tensor.to(torch.float16)
        state[name] = tensor.contiguous().clone()
    save_file(state, str(directory / WEIGHTS_NAME), metadata={"format": "pt", "model_id": model.config.model_id})
    (directory / CARD_NAME).write_text(card if card is not None else model_card(model.config))
    return directory


def load_model_dir(directory: Path) -> FaceModel:
    """Build the model described by ``directory/config.json`` and load its weights strictly."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from ._factory import build_model

    directory = Path(directory)
    config = ModelConfig.load(directory / CONFIG_NAME)
    weights = directory / WEIGHTS_NAME
    if not weights.exists():
        found = sorted(p.name for p in directory.iterdir())
        raise WeightsError(f"{directory} has no {WEIGHTS_NAME} (found {found}); facezoo loads safetensors only")
    model = build_model(config)
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        raise WeightsError(f"{weights} is not a readable safetensors file ({exc})") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        raise WeightsError(
            f"{weights} does not match {config.model_id}: missing keys {missing[:8]}, unexpected keys "
            f"{unexpected[:8]}, wrong shapes {wrong[:8]}. Was config.json edited, or the file truncated?"
        )
    model.load_state_dict(state, strict=True)
    return model.eval()


def split_revision(repo: str) -> tuple[str, str | None]:
    """``org/name@rev`` → ``("org/name", "rev")``."""
    repo_id, _, revision = repo.partition("@")
    return repo_id, revision or None


def download(repo_id: str, revision: str | None = None) -> Path:
    """Fetch (or find in the cache) a model repository; returns its local snapshot directory."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"{repo_id}@{revision}" if revision else repo_id
    try:
        path = Path(snapshot_download(repo_id, revision=revision, allow_patterns=list(MODEL_FILES), library_name="facezoo"))
    except RevisionNotFoundError:
        raise HubError(f"hf-hub:{where}: revision {revision!r} does not exist. Use a branch, a tag or a full commit sha.") from None
    except RepositoryNotFoundError:
        raise HubError(f"hf-hub:{where}: no such repository on {_endpoint()} (or it is private: log in with `hf auth login`).") from None
    except LocalEntryNotFoundError:
        raise HubError(
            f"hf-hub:{where} is not in the local cache and the Hub cannot be reached (offline: HF_HUB_OFFLINE is set "
            "or there is no network). Download it once online, or load a local directory."
        ) from None
    except (HfHubHTTPError, OSError) as exc:
        raise HubError(f"hf-hub:{where}: download failed ({exc})") from None
    if not (path / WEIGHTS_NAME).exists() or not (path / CONFIG_NAME).exists():
        raise HubError(f"hf-hub:{where} is not a facezoo model: it needs {CONFIG_NAME} and {WEIGHTS_NAME}")
    return path


def _endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def push_directory(
    directory: str | Path,
    repo_id: str,
    *,
    branch: str | None = None,
    tag: str | None = None,
    commit_message: str | None = None,
    private: bool | None = None,
    token: str | None = None,
) -> str:
    """Upload a facezoo model directory; returns the new commit's sha.

    ``branch`` (created if needed) defaults to ``main``; ``tag`` tags the new commit.

    Example:
        >>> push_directory("my-model", "me/beauty-demo", tag="v1")  # doctest: +SKIP
        '3f2a…'
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    directory = Path(directory)
    config = ModelConfig.load(directory / CONFIG_NAME)
    absent = [name for name in MODEL_FILES if not (directory / name).exists()]
    if absent:
        raise WeightsError(f"{directory} is not a complete facezoo model directory: {absent} missing")
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, exist_ok=True, private=private)
        if branch:
            api.create_branch(repo_id, branch=branch, exist_ok=True)
        info = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(directory),
            allow_patterns=list(MODEL_FILES),
            revision=branch,
            commit_message=commit_message or f"Upload {config.model_id} with facezoo {config.facezoo_version}",
        )
        if tag:
            api.create_tag(repo_id, tag=tag, revision=info.oid)
    except HfHubHTTPError as exc:
        raise HubError(f"push of {directory} to {repo_id} failed: {exc}") from None
    logger.info("pushed %s to %s at %s", directory, repo_id, info.oid)
    return info.oid


def push_to_hub(model: FaceModel, repo_id: str, **kwargs) -> str:
    """Save ``model`` to a temporary directory and :func:`push_directory` it."""
    with tempfile.TemporaryDirectory() as tmp:
        save_model(model, Path(tmp))
        return push_directory(tmp, repo_id, **kwargs)
