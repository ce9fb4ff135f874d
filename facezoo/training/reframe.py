"""Re-measure a shipped model under a new framing (another detector, another score), weights unchanged.

When the framing contract changes, e.g. a better detector, a model trained on the old framing is
re-measured on exactly the path ``predict`` now takes before it ships again: its headline,
checks, smoke subset, teacher comparison and ONNX / int8 measurements, and task values fitted
after training (identity's threshold) are fitted again. What the model learnt from and how
stays as its card says (the training command in the card is the source of the run's settings); the
card says that the framing changed after training, and what the headline was before.

Example:
    >>> reframe("plugins/facezoo_beauty/weights/efficientnet_lite0.face-init", detector="yunet", min_face_score=0.5)  # doctest: +SKIP
    {'pc': (0.8773, 0.8761)}
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

from .. import _plugins
from .._factory import load_directory
from .._model_dir import CARD_NAME, write_model_dir
from ..errors import WeightsError
from .card import measured_card
from .settings import TrainSettings, add_arguments, from_arguments
from .trainer import calibrate, measure


def _section(card: str, title: str) -> str:
    """The body of the card's ``## title`` section."""
    match = re.search(
        rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)",
        card,
        flags=re.DOTALL | re.MULTILINE,
    )
    if match is None:
        raise WeightsError(f"the card has no '## {title}' section: re-measure it with facezoo export from its run instead")
    return match.group(1).strip()


def settings_of(card: str) -> TrainSettings:
    """The run's settings, parsed from the ``facezoo train`` command in the card's Training section.

    Example:
        >>> settings_of("## Training\\n```bash\\nfacezoo train beauty --dataset scut-fbp5500\\n```\\n").dataset
        'scut-fbp5500'
    """
    match = re.search(r"```bash\n(facezoo train .*?)\n```", _section(card, "Training"))
    if match is None:
        raise WeightsError("the card's Training section holds no facezoo train command")
    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    return from_arguments(parser.parse_args(shlex.split(match.group(1))[2:]))


def reframe(
    model_dir: str | Path,
    *,
    data_root: str | None = None,
    checks: tuple[str, ...] = (),
    **framing,
) -> dict[str, tuple[float, float]]:
    """Change ``model_dir``'s framing (:class:`~facezoo.config.Preprocess` fields in ``framing``),
    re-measure it as :func:`facezoo.export` does (``checks`` as there) and rewrite its config and
    card in place; returns each headline metric before and after."""
    directory = Path(model_dir)
    card = (directory / CARD_NAME).read_text()
    settings = settings_of(card)
    data, training = (
        _section(card, "Training data and terms"),
        _section(card, "Training"),
    )
    model = load_directory(directory)
    before = model.config
    model = model.with_preprocess(**framing)
    training = re.sub(r"\n\nFitted after training on .*", "", training)
    training = re.sub(r"\n\nRe-measured on a new framing.*", "", training, flags=re.DOTALL)
    if _plugins.registry().get("task", settings.task).calibrate is not None:
        fitted = calibrate(model, settings, data_root)
        training += f"\n\nFitted after training on `{fitted['on']}`, framed as below: " + ", ".join(f"{k} = {v:.4g}" for k, v in fitted.items() if k != "on")
    reports = measure(model, settings, directory, data_root=data_root, checks=checks, onnx=True, quantize="int8", weights=False)
    was = ", ".join(f"{k} {v:.4g}" for k, v in before.metrics.items() if not re.search(r"_\d|recall_|nme_|std|fitted", k))
    old, new = before.preprocess, model.config.preprocess
    training += (
        f"\n\nRe-measured on a new framing after training, weights unchanged: the faces it learnt from were found by "
        f"`{old.detector}` (score ≥ {old.min_face_score:g}); `predict`, and every number in this card, now use `{new.detector}` "
        f"(score ≥ {new.min_face_score:g}). The headline on the old framing was {was}."
    )
    _plugins.forget_models()  # the model written into a plugin's weights folder is registered now
    write_model_dir(directory, model.config, None, measured_card(model.config, settings, reports, data=data, training=training))  # the weights stay byte for byte
    return {k: (before.metrics[k], model.config.metrics[k]) for k in model.config.metrics if k in before.metrics}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--detector", required=True)
    parser.add_argument("--min-face-score", type=float, required=True)
    parser.add_argument("--check", nargs="+", default=(), metavar="DATASET:SPLIT[@TEACHER]")
    parser.add_argument("--data")
    args = parser.parse_args(argv)
    changes = reframe(
        args.model_dir,
        data_root=args.data,
        checks=tuple(args.check),
        detector=args.detector,
        min_face_score=args.min_face_score,
    )
    for name, (old, new) in changes.items():
        print(f"{name}: {old:.4g} → {new:.4g}")


if __name__ == "__main__":
    main()
