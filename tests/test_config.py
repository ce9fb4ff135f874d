"""config.json across releases: every schema facezoo ever wrote loads through its migrations, and a
newer schema is refused with the version found and the advice to upgrade; a value out of its type
or bounds, in a file or in code, is a ConfigError naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import facezoo
from facezoo import ModelConfig, config

#: config.json of every shipped model, as each release wrote them: tests/assets/configs/schema<n>/.
FIXTURES = sorted((Path(__file__).resolve().parent / "assets" / "configs").glob("schema*/*.json"))


def test_every_older_schema_has_its_migration_and_the_configs_it_wrote():
    assert sorted(config.MIGRATIONS) == list(range(1, config.SCHEMA)), "raising SCHEMA needs a migration from each older schema"
    written = {int(path.parent.name.removeprefix("schema")) for path in FIXTURES}
    assert written >= set(range(1, config.SCHEMA)) and 1 in written, "keep the configs each older schema wrote as fixtures"


@pytest.mark.parametrize("path", FIXTURES, ids=[f"{p.parent.name}/{p.stem}" for p in FIXTURES])
def test_configs_of_older_releases_load_and_save_at_the_current_schema(path, tmp_path):
    written = json.loads(path.read_text())
    loaded = ModelConfig.load(path)
    assert loaded.to_dict() == {**config._migrate(written, str(path)), "schema": config.SCHEMA}, "a value was lost or changed on loading"
    loaded.save(tmp_path / "config.json")
    assert json.loads((tmp_path / "config.json").read_text())["schema"] == config.SCHEMA
    assert ModelConfig.load(tmp_path / "config.json") == loaded


def test_a_config_without_schema_is_schema_1():
    [path] = [p for p in FIXTURES if p.parent.name == "schema1" and p.name.startswith("beauty.")]
    written = json.loads(path.read_text())
    assert "schema" not in written
    assert ModelConfig.from_dict({**written, "schema": 1}) == ModelConfig.from_dict(written)


def test_migrations_run_in_order_from_the_schema_found(monkeypatch):
    """The chain itself, with two stand-in migrations: each step sees the output of the one before."""
    steps = []

    def one_to_two(data):
        steps.append(1)
        return {**data, "added_in_2": "default"}

    def two_to_three(data):
        steps.append(2)
        return {**{k: v for k, v in data.items() if k != "added_in_2"}, "renamed_in_3": data["added_in_2"]}

    monkeypatch.setattr(config, "SCHEMA", 3)
    monkeypatch.setattr(config, "MIGRATIONS", {1: one_to_two, 2: two_to_three})
    assert config._migrate({"task": "beauty"}, "old.json") == {"task": "beauty", "renamed_in_3": "default"} and steps == [1, 2]
    steps.clear()
    assert config._migrate({"schema": 2, "task": "beauty", "added_in_2": "kept"}, "new.json") == {"task": "beauty", "renamed_in_3": "kept"}
    assert steps == [2]
    assert config._migrate({"schema": 3, "task": "beauty"}, "current.json") == {"task": "beauty"} and steps == [2]


def test_a_newer_schema_names_both_versions_and_says_to_upgrade(tmp_path):
    model = facezoo.load("beauty", "test_resnet", pretrained=False)
    model.save_pretrained(tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())
    assert written["schema"] == config.SCHEMA
    future = config.SCHEMA + 1
    (tmp_path / "config.json").write_text(json.dumps({**written, "schema": future, "facezoo_version": "9.0.0", "new_field": 1}))
    message = (
        rf"config\.json has config schema {future}, and facezoo {facezoo.__version__} reads schemas up to {config.SCHEMA}; "
        r"it was written by facezoo 9\.0\.0: upgrade with pip install -U facezoo"
    )
    with pytest.raises(facezoo.WeightsError, match=message):
        facezoo.load(str(tmp_path))


@pytest.mark.parametrize("schema", ["1", 0, -1, 1.0, True, None])
def test_a_schema_that_is_not_a_version_is_an_error_naming_it(schema):
    data = {**ModelConfig(task="beauty", backbone="resnet18").to_dict(), "schema": schema}
    with pytest.raises(facezoo.WeightsError, match=rf"edited\.json: schema must be a whole number of at least 1, got {schema!r}"):
        ModelConfig.from_dict(data, source="edited.json")


def test_unknown_keys_are_refused_at_every_schema():
    data = {**ModelConfig(task="beauty", backbone="resnet18").to_dict(), "colour": "bgr"}
    with pytest.raises(facezoo.WeightsError, match=rf"edited\.json has keys that config schema {config.SCHEMA} does not define: \['colour'\]; remove them"):
        ModelConfig.from_dict(data, source="edited.json")


def test_a_bad_value_in_code_is_a_config_error_naming_the_field():
    """The checks are the same for a Preprocess a plugin builds as for a config.json read from a Hub."""
    with pytest.raises(facezoo.ConfigError, match=r"scale must be a finite number at least 0\.1 and at most 10, got 0") as info:
        facezoo.Preprocess(scale=0)
    assert isinstance(info.value, facezoo.WeightsError) and isinstance(info.value, ValueError)
    with pytest.raises(facezoo.ConfigError, match=r"tag must be a string or null, got 3"):
        ModelConfig(task="beauty", backbone="resnet18", tag=3)


@pytest.mark.parametrize("model_id", ["beauty", "Beauty/resnet18", "beauty/", "beauty/resnet18/v1", None])
def test_an_ill_formed_model_id_is_a_config_error_showing_the_form(model_id):
    with pytest.raises(facezoo.ConfigError, match=rf"{model_id!r} is not a model id: write task/backbone\.tag \(e\.g\. beauty/resnet18\.demo\)"):
        facezoo.PretrainedSpec(model_id, source="hf-hub:me/model")
