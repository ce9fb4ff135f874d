"""ONNX Runtime: sessions with thread settings that suit small machines.

onnxruntime is a core dependency (every shipped model runs on it without torch), imported only
here and only when a model or detector runs on it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from ._model_dir import weights_path
from .errors import MissingExtraError, WeightsError


def onnxruntime():
    """The ``onnxruntime`` module, or an error naming the extra that installs it."""
    try:
        import onnxruntime as module
    except ImportError:
        raise MissingExtraError("onnxruntime", "onnx", "running models on ONNX Runtime (a core dependency; was it uninstalled?)") from None
    return module


def available() -> bool:
    """Whether onnxruntime can be imported (without importing it twice)."""
    try:
        onnxruntime()
    except MissingExtraError:
        return False
    return True


def default_threads() -> int:
    """Intra-op threads: ``$FACEZOO_THREADS``, else the CPU cores (at most 4: small convolutions
    gain little from more, and leave cores to the caller's other work)."""
    value = os.environ.get("FACEZOO_THREADS")
    return max(1, int(value)) if value else max(1, min(4, os.cpu_count() or 1))


def session(path: str | Path, threads: int | None = None):
    """An ``InferenceSession`` of ``path`` on the CPU with ``threads`` intra-op threads and no
    spinning inter-op pool (one graph runs at a time)."""
    ort = onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


ONNX_NAME = "model.onnx"
INT8_NAME = "model.int8.onnx"
OPSET = 18


def weights_digest(directory: str | Path) -> str:
    """SHA-256 of a model directory's ``model.safetensors``: what an ONNX file was built from."""
    return hashlib.sha256(weights_path(directory).read_bytes()).hexdigest()


def graph_key(weights_sha256: str, config) -> str:
    """What a cached float32 ONNX file is named by: the weights' hash and the parts of the config
    that shape the graph (task, backbone, head arguments, input size), hashed together.

    Example:
        >>> from facezoo.config import ModelConfig
        >>> a = ModelConfig(task="beauty", backbone="resnet18", head={"bins": 101})
        >>> graph_key("00", a) == graph_key("00", a.replace(head={"bins": 11}))
        False
    """
    graph = {"task": config.task, "backbone": config.backbone, "head": config.head, "input_size": list(config.preprocess.input_size)}
    text = json.dumps({"weights_sha256": weights_sha256, "graph": graph}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _stamp(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def write_stamp(path: Path, digest: str, **info) -> None:
    """Record beside an ONNX file the weights it was built from (and how)."""
    _stamp(path).write_text(json.dumps({"weights_sha256": digest, "opset": OPSET, **info}, indent=1, sort_keys=True) + "\n")


def check_stamp(path: Path, digest: str) -> None:
    """Raise unless the ONNX file at ``path`` was built from weights with this ``digest``."""
    stamp = _stamp(path)
    try:
        built_from = json.loads(stamp.read_text())["weights_sha256"]
    except (OSError, ValueError, KeyError):
        raise WeightsError(f"{path} has no readable {stamp.name}: it cannot be checked against the weights; rebuild it with facezoo export --format onnx") from None
    if built_from != digest:
        raise WeightsError(
            f"{path} was built from other weights than {path.parent / 'model.safetensors'} (sha256 {built_from[:12]}… vs {digest[:12]}…); "
            "rebuild it with facezoo export MODEL DIR --format onnx, or delete it"
        )


class OnnxNetwork:
    """A model's network on ONNX Runtime: ``run`` maps a normalised float32 ``N×3×H×W`` batch to outputs."""

    runtime = "onnx"

    def __init__(self, path: str | Path, threads: int | None = None):
        self.path = Path(path)
        try:
            self.session = session(self.path, threads)
        except MissingExtraError:
            raise
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise WeightsError(f"{self.path} is not a readable ONNX model ({str(exc).strip().splitlines()[0][:200]}); delete it or rebuild it") from None
        self.input = self.session.get_inputs()[0].name
        self.output_width: int | None = None
        self.expected_by = ""

    def expect_output_width(self, width: int, expected_by: str) -> None:
        """Refuse a graph whose outputs per face are not ``width`` wide (what ``expected_by``, e.g.
        a config.json's head, gives): a :class:`~facezoo.WeightsError` naming the file and both
        widths, now where the graph states its width, else on the first batch."""
        self.output_width, self.expected_by = width, expected_by
        dims = self.session.get_outputs()[0].shape[1:]
        if all(isinstance(d, int) for d in dims):
            self._check_width(math.prod(dims))

    def _check_width(self, width: int) -> None:
        if width != self.output_width:
            raise WeightsError(
                f"{self.path} gives {width} outputs per face, but {self.expected_by} expects {self.output_width}: "
                "the ONNX graph was built for another network. Delete it, or rebuild it with facezoo export MODEL DIR --format onnx"
            )

    def run(self, batch):
        outputs = self.session.run(None, {self.input: batch})[0]
        if self.output_width is not None:
            self._check_width(math.prod(outputs.shape[1:]))
        return outputs


def _store_half(graph) -> None:
    """Store each float32 initializer of ``graph`` that float16 holds exactly as float16 with a
    Cast back to float32: the file shrinks to the size of half-precision weights and ONNX Runtime
    computes with the very same float32 values (it folds the Casts when the session starts)."""
    import onnx
    from onnx import numpy_helper

    casts = []
    for init in list(graph.initializer):
        array = numpy_helper.to_array(init)
        if array.dtype != np.float32 or array.size < 16 or not np.array_equal(array.astype(np.float16).astype(np.float32), array):
            continue
        half = numpy_helper.from_array(array.astype(np.float16), f"{init.name}.float16")
        graph.initializer.remove(init)
        graph.initializer.append(half)
        casts.append(onnx.helper.make_node("Cast", [half.name], [init.name], to=onnx.TensorProto.FLOAT, name=f"{init.name}.cast"))
    nodes = [*casts, *graph.node]
    del graph.node[:]
    graph.node.extend(nodes)


def export_network(model, path: str | Path, check_faces=None, tolerance: float = 1e-3) -> Path:
    """Export a torch model's network to ONNX (dynamic batch, opset :data:`OPSET`), atomically.

    The graph keeps torch's weights as they are (batch norms are not folded into convolutions:
    ONNX Runtime fuses them when a session starts, as fast), so half-precision weights stay exact
    and are stored as such (:func:`_store_half`): a model saved in float16 exports to a file of
    its size, with the same outputs.
    With ``check_faces`` (uint8 ``N×H×W×3`` framed faces), the ONNX outputs are compared with
    torch's; a difference above ``tolerance`` (relative to the outputs' scale) is an error.
    """
    import onnx
    import torch
    from onnxscript import ir, optimizer

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    network = model.network.eval()
    height, width = model.config.preprocess.input_size
    example = torch.zeros(2, 3, height, width)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".export-") as tmp:
        target = Path(tmp) / path.name
        program = torch.onnx.export(
            network, (example,), input_names=["images"], output_names=["outputs"],
            dynamic_shapes={"images": {0: torch.export.Dim("batch")}}, opset_version=OPSET, dynamo=True, optimize=False, verbose=False,
        )
        optimizer.fold_constants(program.model)  # folding only: onnxscript's rewrites would fold batch norms into the weights
        optimizer.remove_unused_nodes(program.model)
        graph = ir.serde.serialize_model(program.model)
        _store_half(graph.graph)
        onnx.save(graph, str(target))
        if check_faces is not None:
            batch = model.transform.normalize(np.asarray(check_faces))
            expected = network.run(batch)
            got = OnnxNetwork(target, threads=1).run(batch)
            error = float(np.abs(expected - got).max() / max(1.0, float(np.abs(expected).max())))
            if error > tolerance:
                raise WeightsError(f"the ONNX export of {model.config.model_id} differs from torch by {error:.2g} (> {tolerance}) on real faces")
        os.replace(target, path)
    return path
