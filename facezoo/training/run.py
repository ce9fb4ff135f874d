"""The ``training/`` folder of a run: settings guard, atomic checkpoint, per-epoch history.

Any trainer (facezoo's own, or a plugin's) can keep its state here; the same call with the same
settings resumes from the last checkpoint.

Example:
    >>> run = RunDirectory(Path("runs/beauty"), settings_json)   # doctest: +SKIP
    >>> state = run.open()                                       # None on a fresh run
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..errors import FacezooError


class RunDirectory:
    """``OUTPUT/training/``: ``settings.json`` (a run refuses other settings, except a new number of
    fine-tuning epochs, logged in ``reschedules.json``), ``state.pt`` (written atomically after every
    epoch) and ``history.json``."""

    RESCHEDULABLE = "finetune_epochs"

    def __init__(self, output: Path, settings_json: str, defaults: dict[str, Any] | None = None):
        """``defaults``: the value of each setting in a run that did not record it."""
        self.output, self.work, self.settings_json = Path(output), Path(output) / "training", settings_json
        self.defaults = defaults or {}

    def open(self) -> dict | None:
        """Record the settings (refusing others) and return the last checkpoint, if any."""
        state_file, settings_file = self.work / "state.pt", self.work / "settings.json"
        if self.output.exists() and not self.output.is_dir():
            raise FacezooError(f"{self.output} is a file; the output of a training run is a directory")
        rescheduled = previous = None
        if settings_file.exists() and settings_file.read_text() != self.settings_json:
            previous = settings_file.read_text()
            # A setting added since the run began reads as its default (it did not exist then).
            old, new = {**self.defaults, **json.loads(previous)}, json.loads(self.settings_json)
            if {**old, self.RESCHEDULABLE: None} != {**new, self.RESCHEDULABLE: None}:
                raise FacezooError(
                    f"{self.output} holds a run with other settings ({settings_file}); use another output directory "
                    "or delete that one to start afresh (only the number of fine-tuning epochs may change on resume)"
                )
            if old[self.RESCHEDULABLE] != new[self.RESCHEDULABLE]:
                rescheduled = {"from": old[self.RESCHEDULABLE], "to": new[self.RESCHEDULABLE]}
        try:
            self.work.mkdir(parents=True, exist_ok=True)
            settings_file.write_text(self.settings_json)
        except OSError as exc:
            raise FacezooError(f"cannot write the run directory {self.output}: {exc.strerror or exc}") from None
        if not state_file.exists():
            return None
        # Our own checkpoint, read with the restricted (weights-only) unpickler.
        state = torch.load(state_file, map_location="cpu", weights_only=True)
        if rescheduled:
            done = state["done"]["finetune"]
            if rescheduled["to"] < done:
                settings_file.write_text(previous)  # the run keeps its settings
                raise FacezooError(f"{self.output} has run {done} fine-tuning epochs already: ask for at least {done}")
            self.write_json("reschedules.json", [*self.reschedules(), {**rescheduled, "after_epoch": done}])
        return state

    def reschedules(self) -> list[dict[str, int]]:
        """Changes of the number of fine-tuning epochs, in order (``from``, ``to``, ``after_epoch``)."""
        path = self.work / "reschedules.json"
        return json.loads(path.read_text()) if path.exists() else []

    def save(self, state: dict[str, Any], history: list[dict[str, Any]]) -> None:
        tmp = self.work / "state.pt.tmp"
        torch.save(state, tmp)
        tmp.replace(self.work / "state.pt")
        tmp = self.work / "history.json.tmp"
        tmp.write_text(json.dumps(history, indent=1))
        tmp.replace(self.work / "history.json")

    def history(self) -> list[dict[str, Any]]:
        path = self.work / "history.json"
        return json.loads(path.read_text()) if path.exists() else []

    def write_json(self, name: str, data: Any) -> Path:
        path = self.work / name
        path.write_text(json.dumps(data, indent=1))
        return path
