"""Moving model directories to and from the Hugging Face Hub (transport only).

Everything remote goes through ``huggingface_hub`` (its cache, ``HF_HUB_OFFLINE``,
``HF_ENDPOINT`` and revision pinning by branch, tag or commit sha). Only the three Hub-layout files
are ever downloaded (:mod:`facezoo._model_dir`): never a pickle.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ._model_dir import CONFIG_NAME, MODEL_FILES, WEIGHTS_NAME, read_config
from .errors import HubError, WeightsError

logger = logging.getLogger(__name__)

HF_PREFIX = "hf-hub:"


def parse_hub_id(source: str) -> tuple[str, str | None]:
    """``"hf-hub:org/name@rev"`` (the prefix is optional) → ``("org/name", "rev")``, checked.

    Example:
        >>> parse_hub_id("hf-hub:me/beauty@v1")
        ('me/beauty', 'v1')
    """
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    text = source[len(HF_PREFIX) :] if source.startswith(HF_PREFIX) else source
    repo_id, _, revision = text.partition("@")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise HubError(f"{source!r} is not a Hub model id: {exc} Expected hf-hub:org/name or hf-hub:org/name@revision.") from None
    return repo_id, revision or None


def download(repo_id: str, revision: str | None = None) -> Path:
    """Fetch (or find in the cache) a model repository; returns its local snapshot directory."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
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
    except (LocalEntryNotFoundError, OfflineModeIsEnabled):
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
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    directory = Path(directory)
    repo_id, _ = parse_hub_id(repo_id)
    config = read_config(directory)
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
    except OfflineModeIsEnabled:
        raise HubError(f"cannot push {directory} to {repo_id}: HF_HUB_OFFLINE is set; unset it to upload") from None
    except (HfHubHTTPError, OSError) as exc:
        raise HubError(f"push of {directory} to {repo_id} failed: {exc}") from None
    logger.info("pushed %s to %s at %s", directory, repo_id, info.oid)
    return info.oid
