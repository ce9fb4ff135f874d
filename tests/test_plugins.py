"""Plugin discovery through entry points, the environment switches, broken and clashing plugins,
and each hook of facezoo.hookspecs exercised through a plugin registered by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types
import uuid

import facezoo_beauty
import numpy as np
import pytest
import torch
from facezoo_beauty import BeautyResult
from facezoo_glasses.detector import build_detector
from torch import nn

import facezoo
import facezoo.data
from facezoo import _plugins
from facezoo._backbone import imagenet_weights
from facezoo._detect import detect_faces
from facezoo._images import load_image
from facezoo.cli import main
from facezoo.detection import Detection, FaceDetector
from facezoo.heads import linear_head
from facezoo.testing import FACES, PHOTOS, check_build, check_task
from facezoo.training.data import Source, training_data

BUILT_IN = {"age-gender", "beauty", "expression", "identity", "keypoints", "detectors"}
ALL_HOOKS = (
    "facezoo_register_backbones",
    "facezoo_register_commands",
    "facezoo_register_datasets",
    "facezoo_register_detectors",
    "facezoo_register_models",
    "facezoo_register_tasks",
    "facezoo_register_teachers",
)


@pytest.fixture(autouse=True)
def fresh_plugins():
    """Every test starts and ends with plugins loaded afresh from the environment."""
    _plugins.reset()
    yield
    _plugins.reset()


def install_distribution(tmp_path, monkeypatch, dist: str, entry_name: str, source: str) -> None:
    """Put a real distribution (dist-info with a ``facezoo`` entry point) and its module on sys.path."""
    module = f"fake_plugin_{uuid.uuid4().hex[:8]}"
    site = tmp_path / "site"
    info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[facezoo]\n{entry_name} = {module}\n")
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(site))


def test_entry_points_are_discovered_with_their_distribution():
    plugins = {p.name: p for p in facezoo.list_plugins()}
    assert BUILT_IN | {"glasses"} <= set(plugins), "is the example plugin installed? pip install ./docs/example_plugin"
    for name in BUILT_IN:
        assert (plugins[name].distribution, plugins[name].version) == ("facezoo", facezoo.__version__)
    assert "facezoo_register_tasks" in plugins["beauty"].hooks
    assert plugins["detectors"].hooks == ("facezoo_register_detectors",)
    glasses = plugins["glasses"]
    assert (glasses.distribution, glasses.version, glasses.hooks) == ("facezoo-glasses", "0.1.0", ALL_HOOKS)
    assert json.loads(json.dumps(glasses.to_dict()))["hooks"] == list(ALL_HOOKS)
    assert _plugins.registry().owner("task", "glasses") == "glasses"


def test_allow_list_loads_only_the_named_plugins(monkeypatch):
    monkeypatch.setenv("FACEZOO_PLUGINS", "beauty, glasses")
    assert facezoo.list_tasks() == ["beauty", "glasses"]
    assert [p.name for p in facezoo.list_plugins()] == ["beauty", "glasses"]


def test_autoload_off_loads_nothing_until_registered_by_hand(monkeypatch):
    monkeypatch.setenv("FACEZOO_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert facezoo.list_tasks() == [] and facezoo.list_plugins() == []
    with pytest.raises(facezoo.UnknownNameError, match="No task is registered"):
        facezoo.load("beauty", "test_resnet", pretrained=False)
    facezoo.register_plugin(facezoo_beauty, name="beauty")
    assert facezoo.list_tasks() == ["beauty"]
    assert facezoo.list_plugins()[0].distribution == "(registered by hand)"
    facezoo.unregister_plugin("beauty")
    assert facezoo.list_tasks() == []


def test_a_plugin_that_fails_to_import_is_a_warning_naming_its_distribution(tmp_path, monkeypatch):
    install_distribution(tmp_path, monkeypatch, "facezoo-broken", "broken", "import a_module_that_does_not_exist\n")
    with pytest.warns(RuntimeWarning, match=r"plugin 'broken' from distribution 'facezoo-broken' failed to load.*ModuleNotFoundError"):
        tasks = facezoo.list_tasks()
    assert {"beauty", "glasses"} <= set(tasks)
    assert "broken" not in [p.name for p in facezoo.list_plugins()]
    model = facezoo.load("beauty", "test_resnet", pretrained=False)
    assert model.predict(FACES[0], detect=False)[0].trained is False


def test_a_third_party_distribution_registering_a_taken_name_names_both_plugins(tmp_path, monkeypatch):
    install_distribution(
        tmp_path,
        monkeypatch,
        "facezoo-clash",
        "clash",
        """
        import facezoo_beauty
        from facezoo import hookimpl

        @hookimpl
        def facezoo_register_tasks(register):
            facezoo_beauty.facezoo_register_tasks(register)
        """,
    )
    with pytest.raises(facezoo.PluginError, match=r"task 'beauty' is registered twice: by plugin '(beauty|clash)' and by plugin '(clash|beauty)'.*FACEZOO_PLUGINS"):
        facezoo.list_tasks()
    monkeypatch.setenv("FACEZOO_PLUGINS", "beauty,clash")
    _plugins.reset()
    with pytest.raises(facezoo.PluginError):
        facezoo.list_tasks()
    monkeypatch.setenv("FACEZOO_PLUGINS", "beauty,glasses")
    _plugins.reset()
    assert facezoo.list_tasks() == ["beauty", "glasses"]


def test_a_duplicate_registered_by_hand_is_refused_and_rolled_back():
    class Clash:
        @facezoo.hookimpl
        def facezoo_register_tasks(self, register):
            register(facezoo.TaskSpec(name="glasses", summary="again", build_head=print, build_loss=print, postprocess=print))

    with pytest.raises(facezoo.PluginError, match="'glasses' is registered twice: by plugin 'glasses' and by plugin 'my-clash'"):
        facezoo.register_plugin(Clash(), name="my-clash")
    assert "my-clash" not in [p.name for p in facezoo.list_plugins()]
    assert facezoo.load("glasses", "test_resnet", pretrained=False).task.summary != "again"


def test_two_default_models_for_one_task_are_an_error_naming_both():
    def register_models(register):
        register(facezoo.PretrainedSpec("beauty/resnet18.mine", source="hf-hub:me/beauty-resnet18", default=True))

    shipped = facezoo.list_models("beauty/*")
    with pytest.raises(
        facezoo.PluginError,
        match=r"task 'beauty' has two default models: 'beauty/dlib_resnet\.face-init' \(plugin 'beauty'\) and 'beauty/resnet18\.mine' \(plugin 'mine'\)",
    ):
        facezoo.register_plugin(types.SimpleNamespace(facezoo_register_models=facezoo.hookimpl(register_models)), name="mine")
    assert "mine" not in [p.name for p in facezoo.list_plugins()]
    assert facezoo.list_models("beauty/*") == shipped == ["beauty/dlib_resnet.face-init", "beauty/efficientnet_lite0.face-init"]


def test_register_takes_one_spec_or_an_iterable_and_builders_may_be_import_paths():
    """``"module:function"`` builders are imported on first use, so a plugin needs no wrapper
    functions around its submodules; a bad path is an error naming the spec."""
    specs = [
        facezoo.DetectorSpec("path-detector", build="facezoo_glasses.detector:build_detector"),
        facezoo.DetectorSpec("other-detector", build="no_such_module_anywhere:build"),
    ]
    plugin = types.SimpleNamespace(facezoo_register_detectors=facezoo.hookimpl(lambda register: (register(specs), register(facezoo.DetectorSpec("one", build=print)))))
    facezoo.register_plugin(plugin, name="paths")
    registry = _plugins.registry()
    assert {"path-detector", "other-detector", "one"} <= set(registry.names("detector"))

    assert registry.get("detector", "path-detector").build.resolve() is build_detector
    with pytest.raises(facezoo.PluginError, match=r"DetectorSpec 'other-detector' build: 'no_such_module_anywhere:build' cannot be imported \(ModuleNotFoundError"):
        registry.get("detector", "other-detector").build()
    with pytest.raises(facezoo.PluginError, match=r"TeacherSpec 't' build: 'a teacher' is not an import path; write 'package\.module:function'"):
        facezoo.TeacherSpec("t", task="beauty", build="a teacher", license="x")


def test_task_arguments_have_one_section_and_each_builder_gets_exactly_its_own():
    identity = _plugins.registry().get("task", "identity")
    assert set(identity.arguments) == {"embedding_dim", "dropout", "target_spread", "loss", "margin", "scale", "relational", "threshold"}
    arguments = {**identity.arguments, "embedding_dim": 16, "margin": 0.5, "threshold": 0.7}
    assert type(identity.make_loss(arguments, num_classes=3)).__name__ == "MarginLoss"
    assert type(identity.make_loss(arguments)).__name__ == "DistillationLoss", "without class indices: the teacher's embeddings"
    assert identity.make_head(32, arguments).fc.out_features == 16
    with pytest.raises(facezoo.ConfigError, match=r"task 'identity' has no arguments \['margn'\]; valid: \['dropout', 'embedding_dim'"):
        identity.make_head(32, {**arguments, "margn": 0.5})
    with pytest.raises(facezoo.PluginError, match=r"task 't': argument 'dropout' is in both head and loss"):
        facezoo.TaskSpec("t", "", print, print, print, head={"dropout": 0.1}, loss={"dropout": 0.1})


def test_forgetting_models_keeps_plugins_registered_by_hand(tmp_path):
    """What export calls after writing a model directory into a plugin's weights folder."""
    facezoo.register_plugin(types.SimpleNamespace(facezoo_register_tasks=facezoo.hookimpl(lambda register: register(_toy_task()))), name="toy-task")
    folder = tmp_path / "weights"

    def register_models(register):
        register(facezoo.registry.shipped_models("toy", folder))

    facezoo.register_plugin(types.SimpleNamespace(facezoo_register_models=facezoo.hookimpl(register_models)), name="toy-models")
    assert facezoo.list_models("toy/*") == []
    facezoo.load("toy", "test_resnet", pretrained=False).save_pretrained(folder / "test_resnet.new")
    assert facezoo.list_models("toy/*") == [], "the registry is cached"
    _plugins.forget_models()
    assert facezoo.list_models("toy/*") == ["toy/test_resnet.new"]
    assert "toy" in facezoo.list_tasks() and {"toy-task", "toy-models"} <= {p.name for p in facezoo.list_plugins()}


def test_plugins_import_no_torch():
    code = "import sys, facezoo; facezoo.list_tasks(); facezoo.list_models(); facezoo.list_plugins(); print(sorted(m for m in ('torch', 'timm') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- each hook, through a plugin registered by hand -------------------------------------------------


def _toy_task(detector: str | None = None) -> facezoo.TaskSpec:
    """A one-number regression task built from facezoo.heads (a plugin's simplest possible task)."""

    def build_head(num_features):
        return linear_head(num_features, 1)

    def postprocess(outputs, crops, config):
        return [BeautyResult(score=float(v)) for v in outputs[:, 0].tolist()]

    return facezoo.TaskSpec(
        name="toy",
        summary="a test task",
        build_head=build_head,
        build_loss=lambda: None,
        postprocess=postprocess,
        preprocess=facezoo.Preprocess(input_size=(32, 32), detector=detector),
    )


def test_facezoo_register_tasks_adds_a_task_that_loads_and_predicts():
    plugin = types.SimpleNamespace(facezoo_register_tasks=facezoo.hookimpl(lambda register: register(_toy_task())))
    facezoo.register_plugin(plugin, name="toy-plugin")
    assert "toy" in facezoo.list_tasks()
    model = facezoo.load("toy", "test_resnet", pretrained=False)
    assert model.config.preprocess.input_size == (32, 32)
    assert [type(r).__name__ for r in model.predict(FACES[0])] == ["BeautyResult"]


def test_facezoo_register_models_makes_a_local_model_loadable_by_id(tmp_path):
    facezoo.register_plugin(types.SimpleNamespace(facezoo_register_tasks=facezoo.hookimpl(lambda register: register(_toy_task()))), name="toy-task")
    trained = facezoo.load("toy", "test_resnet", pretrained=False)
    trained.save_pretrained(tmp_path / "toy-weights")

    def register_models(register):
        register(facezoo.PretrainedSpec("toy/test_resnet.local", source=str(tmp_path / "toy-weights"), default=True))

    facezoo.register_plugin(types.SimpleNamespace(facezoo_register_models=facezoo.hookimpl(register_models)), name="toy-models")
    assert facezoo.list_models("toy/*") == ["toy/test_resnet.local"]
    assert facezoo.list_models(task="toy", pretrained=True) == ["toy/test_resnet.local"]
    expected = trained.predict(FACES[0])[0].score
    assert facezoo.load("toy/test_resnet.local", runtime="torch").predict(FACES[0])[0].score == expected
    assert facezoo.load("toy", runtime="torch").predict(FACES[0])[0].score == expected  # the default model of the task


def test_facezoo_register_datasets_adds_an_adapter(tmp_path):
    def build(data_root, split):
        return facezoo.data.image_folder(data_root / "toy" / split, task="toy", split=split)

    plugin = types.SimpleNamespace(
        facezoo_register_datasets=facezoo.hookimpl(lambda register: register(facezoo.DatasetSpec("toy-faces", task="toy", build=build, splits=("train",))))
    )
    facezoo.register_plugin(plugin, name="toy-data")
    for cls, image in (("a", "portrait.jpg"), ("b", "group.jpg")):
        (tmp_path / "toy" / "train" / cls).mkdir(parents=True)
        (tmp_path / "toy" / "train" / cls / image).write_bytes((PHOTOS / image).read_bytes())
    assert facezoo.data.list_datasets(task="toy") == ["toy-faces"]
    dataset = facezoo.data.load_dataset("toy-faces", "train", root=tmp_path)
    assert (len(dataset), dataset.labels, [s.target for s in dataset.samples]) == (2, ("a", "b"), [0, 1])


def test_the_example_plugins_dataset_adapter(tmp_path):
    for label, images in (("no_glasses", FACES[:2]), ("glasses", FACES[2:3])):
        folder = tmp_path / "glasses" / "val" / label
        folder.mkdir(parents=True)
        for image in images:
            (folder / image.name).write_bytes(image.read_bytes())
    (tmp_path / "glasses" / "val" / "glasses" / "notes.txt").write_text("not an image")
    dataset = facezoo.data.load_dataset("glasses-folder", "val", root=tmp_path)
    assert dataset.labels == ("no_glasses", "glasses") and [s.target for s in dataset.samples] == [0, 0, 1]
    with pytest.raises(facezoo.DatasetError, match=r"glasses/train is missing"):
        facezoo.data.load_dataset("glasses-folder", "train", root=tmp_path)


class FixedBox(FaceDetector):
    """A detector that always finds the same face (to check how predict uses a detector)."""

    name = "fixed-box"

    def detect(self, images):
        return [[Detection((10.0, 20.0, 90.0, 110.0), 0.9, ((30, 50), (70, 50), (50, 70), (35, 90), (65, 90)))] for _ in images]


def test_facezoo_register_detectors_adds_a_detector_predict_uses():
    name = f"fixed-box-{uuid.uuid4().hex[:6]}"  # detectors are built once per process and name
    plugin = types.SimpleNamespace(
        facezoo_register_tasks=facezoo.hookimpl(lambda register: register(_toy_task(detector=name))),
        facezoo_register_detectors=facezoo.hookimpl(lambda register: register(facezoo.DetectorSpec(name, build=FixedBox))),
    )
    facezoo.register_plugin(plugin, name="toy-detector")
    model = facezoo.load("toy", "test_resnet", pretrained=False)
    [[a], [b]] = model.predict([FACES[0], np.asarray(load_image(FACES[1]))])
    assert a.face.box == b.face.box == (10.0, 20.0, 90.0, 110.0)
    assert a.to_dict()["face"]["landmarks"][0] == [30.0, 50.0]
    assert [r.face for r in model.predict(FACES[0], detect=False)] == [None]


def test_the_example_plugins_detector_keeps_the_largest_face():
    model = facezoo.load("glasses", "test_resnet", pretrained=False)
    group = PHOTOS / "group.jpg"
    everyone = detect_faces("mtcnn", [load_image(group)])[0]
    assert len(everyone) == 2
    [result] = model.predict(group)
    largest = max(everyone, key=lambda f: f.width * f.height)  # on ONNX Runtime; the plugin's MTCNN runs on torch: equal to 1e-3 px
    assert np.allclose(result.face.box, largest.box, atol=1e-3) and np.allclose(result.face.landmarks, largest.landmarks, atol=1e-3)


def test_facezoo_register_commands_adds_a_subcommand(capsys):
    def run(args):
        print(f"hello {args.who}")
        return 0

    spec = facezoo.CommandSpec("hello", help="say hello", add_arguments=lambda p: p.add_argument("who"), run=run)
    facezoo.register_plugin(types.SimpleNamespace(facezoo_register_commands=facezoo.hookimpl(lambda register: register(spec))), name="hello-plugin")
    assert main(["hello", "world"]) == 0
    assert capsys.readouterr().out == "hello world\n"
    main(["list", "commands"])
    assert "hello" in capsys.readouterr().out


def _backbone_plugin(name: str, spec: facezoo.BackboneSpec) -> None:
    facezoo.register_plugin(types.SimpleNamespace(facezoo_register_backbones=facezoo.hookimpl(lambda register: register(spec))), name=name)


def _tiny_net(input_size=None, pooled=True):
    """A third party's backbone that timm does not know: two convolutions with batch norm, and a mean."""

    class TinyNet(nn.Module):
        num_features = 24

        def __init__(self):
            super().__init__()
            self.convs = nn.Sequential(nn.Conv2d(3, 12, 3, 2, 1), nn.BatchNorm2d(12), nn.ReLU(), nn.Conv2d(12, 24, 3, 2, 1), nn.BatchNorm2d(24), nn.ReLU())

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            features = self.convs(images)
            return features.mean(dim=(2, 3)) if pooled else features

    return TinyNet()


def test_facezoo_register_backbones_makes_a_non_timm_network_a_backbone(tmp_path, capsys):

    _backbone_plugin("tiny-plugin", facezoo.BackboneSpec("tiny_net", build=_tiny_net, summary="two convolutions"))
    # build, predict, metrics, training steps, save → load, ONNX parity: all as for a timm backbone
    check_task("expression", backbone="tiny_net", photos=FACES[:2])
    assert check_build("keypoints", "tiny_net").network.backbone.convs[0].out_channels == 12  # unpooled, for a spatial head
    main(["list", "backbones"])
    assert "tiny_net" in capsys.readouterr().out
    with pytest.raises(facezoo.UnknownNameError, match="Did you mean 'tiny_net'"):
        facezoo.load("beauty", "tiny_nett", pretrained=False)


def test_a_plugin_backbone_is_refused_where_it_cannot_work():

    _backbone_plugin("tiny-plugin", facezoo.BackboneSpec("tiny_net", build=_tiny_net))
    with pytest.raises(facezoo.WeightsError, match="no ImageNet weights for it: pass init="):
        imagenet_weights("tiny_net")
    _backbone_plugin("timm-clash", facezoo.BackboneSpec("resnet18", build=_tiny_net))
    with pytest.raises(facezoo.PluginError, match="backbone 'resnet18' of plugin 'timm-clash' is also a timm model's name"):
        facezoo.load("beauty", "resnet18", pretrained=False)
    with pytest.raises(facezoo.PluginError, match="'tiny_net' is registered twice: by plugin 'tiny-plugin' and by plugin 'again'"):
        _backbone_plugin("again", facezoo.BackboneSpec("tiny_net", build=_tiny_net))
    _backbone_plugin("no-width", facezoo.BackboneSpec("widthless", build=lambda **_: __import__("torch").nn.Identity()))
    with pytest.raises(facezoo.PluginError, match="'widthless' of plugin 'no-width': the built module needs a num_features attribute"):
        facezoo.load("beauty", "widthless", pretrained=False)


def test_a_plugin_command_cannot_take_a_core_name(capsys):
    spec = facezoo.CommandSpec("predict", help="clash", add_arguments=lambda p: None, run=lambda a: 0)
    facezoo.register_plugin(types.SimpleNamespace(facezoo_register_commands=facezoo.hookimpl(lambda register: register(spec))), name="clash-plugin")
    assert main(["list"]) == 2
    assert "plugin 'clash-plugin' registers the command 'predict', which is facezoo's own" in capsys.readouterr().err


def test_the_example_plugins_command(capsys, tmp_path):
    facezoo.load("glasses", "test_resnet", pretrained=False).save_pretrained(tmp_path / "model")
    photos = tmp_path / "photos"
    photos.mkdir()
    for image in FACES[:2]:
        (photos / image.name).write_bytes(image.read_bytes())
    assert main(["glasses-report", str(photos), "--model", str(tmp_path / "model")]) == 0
    assert capsys.readouterr().out.endswith(" of 2 faces in 2 photos wear glasses\n")
    assert main(["glasses-report", str(tmp_path / "nowhere")]) == 2


class ConstantBeautyTeacher:
    """Says every face scores 5.0."""

    shape = ()
    key = "constant-5"

    def label(self, images, faces):
        return np.full(len(images), 5.0, dtype=np.float32)


def test_facezoo_register_teachers_adds_labels_training_mixes_with_the_datasets(tmp_path, monkeypatch):
    """Targets are gt_weight × label + (1 − gt_weight) × teacher where a face has both."""

    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path / "cache"))
    spec = facezoo.TeacherSpec("constant-5", task="beauty", build=ConstantBeautyTeacher, license="CC0, made up for a test")
    facezoo.register_plugin(types.SimpleNamespace(facezoo_register_teachers=facezoo.hookimpl(lambda register: register(spec))), name="teacher-plugin")
    model = facezoo.load("beauty", "test_resnet", pretrained=False)
    task = _plugins.registry().get("task", "beauty")
    data_root = facezoo.data.data_root(None) if "FACEZOO_DATA" in __import__("os").environ else pytest.skip("needs the shared data")
    labels = training_data([Source("scut-fbp5500", "test")], model.transform, task, frame_limit=6, data_root=data_root)
    mixed = training_data([Source("scut-fbp5500", "test")], model.transform, task, teacher="constant-5", gt_weight=0.25, frame_limit=6, data_root=data_root)
    assert len(labels) == len(mixed) > 0
    assert np.allclose(mixed.targets.numpy(), 0.25 * labels.targets.numpy() + 0.75 * 5.0)
    teacher_only = training_data([Source("scut-fbp5500", "test")], model.transform, task, teacher="constant-5", gt_weight=0.0, frame_limit=6, data_root=data_root)
    assert (teacher_only.targets == 5.0).all()


BROKEN_HOOK = """
    import facezoo

    @facezoo.hookimpl
    def facezoo_register_tasks(register):
        register(facezoo.TaskSpec("half-task", "registered before the error", print, print, print))
        import some_optional_dependency_that_is_missing  # the lazy import docs/plugins.md recommends

    @facezoo.hookimpl
    def facezoo_register_teachers(register):
        register(facezoo.TeacherSpec("half-teacher", task="half-task", build=print, license="x"))
"""


def test_a_plugin_whose_hook_raises_is_skipped_whole_with_a_warning(tmp_path, monkeypatch):
    install_distribution(tmp_path, monkeypatch, "facezoo-half", "half", BROKEN_HOOK)
    with pytest.warns(RuntimeWarning, match=r"plugin 'half' \(distribution 'facezoo-half'\) failed while registering.*ModuleNotFoundError"):
        tasks = facezoo.list_tasks()
    assert "half-task" not in tasks and "beauty" in tasks
    assert "half-teacher" not in _plugins.registry().names("teacher")
    assert facezoo.load("beauty", "test_resnet", pretrained=False).config.task == "beauty"


def test_evaluate_against_a_teachers_labels_on_another_tasks_dataset(tmp_path, monkeypatch):
    """A model can be measured against a teacher on faces of any dataset (e.g. keypoints against
    dlib's on LFW), even one whose own protocol is pairs."""

    if "FACEZOO_DATA" not in os.environ:
        pytest.skip("needs the shared data")
    spec = facezoo.TeacherSpec("constant-5", task="beauty", build=ConstantBeautyTeacher, license="CC0, made up for a test")
    facezoo.register_plugin(types.SimpleNamespace(facezoo_register_teachers=facezoo.hookimpl(lambda register: register(spec))), name="teacher-plugin")
    model = facezoo.load("beauty", "test_resnet", pretrained=False)
    report = facezoo.evaluate(model, "lfw", "view2", limit=6, teacher="constant-5")
    assert report.extra["faces_scored"] == 6 and "against constant-5's labels" in report.protocol
    assert 0.0 < report.metrics["mae"] <= 4.0, "the error of 1-5 scores against a constant 5"


class RandomEmbeddingTeacher:
    """Labels faces with fixed random unit vectors (a stand-in for dlib's ResNet)."""

    shape = (16,)
    key = "random-16"

    def label(self, images, faces):
        rows = np.random.default_rng(len(images)).normal(size=(len(images), 16)).astype(np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_identity_learns_a_teachers_embeddings_and_validates_on_held_out_people(tmp_path, monkeypatch):
    """The distillation recipe's shape: teacher embeddings to learn, people's ids to validate and
    calibrate the threshold on (CelebA's val people)."""

    if "FACEZOO_DATA" not in os.environ:
        pytest.skip("needs the shared data")
    spec = facezoo.TeacherSpec("random-16", task="identity", build=RandomEmbeddingTeacher, license="made up for a test")
    facezoo.register_plugin(types.SimpleNamespace(facezoo_register_teachers=facezoo.hookimpl(lambda register: register(spec))), name="teacher-plugin")
    out = facezoo.train(
        "identity", "celeba", output_dir=tmp_path / "run", teacher="random-16", gt_weight=0.0, monitor="pair_accuracy:max",
        head={"embedding_dim": 16}, backbone="test_efficientnet", init="random", input_size=(32, 32), limit=24, batch_size=8,
        head_epochs=1, finetune_epochs=1, test_split=None, freeze=2, views=1, progress=False,
    )
    history = json.loads((out / "training" / "history.json").read_text())
    assert "val_pair_accuracy" in history[-1] and "val_loss" not in history[-1]
    model = facezoo.load(out, runtime="torch")
    assert -1.0 <= model.threshold <= 1.0 and model.config.teachers == ("random-16",)
    assert model.config.head["target_spread"] is not None, "the head starts at the teacher's spread"
