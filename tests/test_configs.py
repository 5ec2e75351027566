"""Configs share one base built from the dataclasses' defaults (mat_jax/config.py): each default lives once."""

from __future__ import annotations

import ast
import dataclasses
import pathlib
import subprocess
import sys

import pytest

from mat_jax.commands import train as train_cmd
from mat_jax.config import ConfigError, base_config, load_config, model_config
from mat_jax.data.pipeline import DataConfig, from_config
from mat_jax.models import MATConfig
from mat_jax.train import steps
from mat_jax.train.optim import OptimizerConfig

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").glob("*.py"))


class _Mesh:
    size = 8


def test_base_is_the_dataclass_defaults_plus_the_official_recipe():
    config = base_config()
    assert model_config(config) == MATConfig()
    data = config.data.to_dict()
    assert from_config({**data, "path": "x"}) == DataConfig(path="x", num_workers=4, read_threads=4, prefetch_batches=4)
    recipe = steps.recipe_from_config(config, _Mesh)
    assert recipe == steps.Recipe(model=MATConfig(), global_batch=32, mbstd_shards=8)
    assert dict(config.optimizer) == dataclasses.asdict(OptimizerConfig())
    for f in dataclasses.fields(MATConfig):  # every architecture switch is a config field
        assert f.name in config.model, f.name
    for f in dataclasses.fields(DataConfig):
        assert f.name in config.data, f.name


def _flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = tuple(v) if isinstance(v, list) else v
    return out


def test_places256_is_places512_with_two_differences():
    a = _flat(load_config(REPO / "configs" / "places512.py").to_dict())
    b = _flat(load_config(REPO / "configs" / "places256.py").to_dict())
    assert {k for k in a if a[k] != b[k]} == {"model.resolution", "data.resolution"}


def _assigned(path: pathlib.Path) -> dict[str, object]:
    """`config.SEC.KEY = literal` and `config.SEC.update(dict(KEY=literal))` items of a config file."""
    out = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Attribute):
            t = node.targets[0]
            if isinstance(t.value, ast.Attribute) and isinstance(t.value.value, ast.Name):
                out[f"{t.value.attr}.{t.attr}"] = ast.literal_eval(node.value)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "update"
            and node.args
            and isinstance(node.args[0], ast.Call)
        ):
            for kw in node.args[0].keywords:
                out[f"{node.func.value.attr}.{kw.arg}"] = ast.literal_eval(kw.value)
    return out


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_files_set_only_differences(path):
    """No config file writes a value its base already has (a default is written once)."""
    base = _flat((load_config(REPO / "configs" / "tiny.py") if path.name == "demo.py" else base_config()).to_dict())
    same = {k: v for k, v in _assigned(path).items() if k in base and base[k] == v}
    assert same == {}
    assert len(path.read_text().splitlines()) < 60


def test_a_user_config_elsewhere_shares_the_base(tmp_path):
    user = tmp_path / "mine.py"
    user.write_text(
        "from mat_jax.config import base_config\n\n\ndef get_config():\n"
        "    config = base_config()\n    config.model.attention = 'window'\n    return config\n"
    )
    code = (
        f"from mat_jax.config import load_config, model_config\n"
        f"c = load_config({str(user)!r}, ['model.resolution=256', 'data.source=demo'])\n"
        f"m = model_config(c)\nassert (m.attention, m.resolution, c.data.source) == ('window', 256, 'demo')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)  # any working directory


def test_unknown_keys_and_wrong_types_name_the_key():
    with pytest.raises(ConfigError, match=r"no config field 'model.resolutoin'.*known in model: .*resolution"):
        load_config(REPO / "configs" / "tiny.py", ["model.resolutoin=32"])
    with pytest.raises(ConfigError, match="no config field 'nope'"):
        load_config(REPO / "configs" / "tiny.py", ["nope.x=1"])
    with pytest.raises(ConfigError, match="model.resolution='big'"):
        load_config(REPO / "configs" / "tiny.py", ["model.resolution=big"])
    with pytest.raises(ConfigError, match="must look like"):
        load_config(REPO / "configs" / "tiny.py", ["model.resolution"])
    with pytest.raises(ValueError, match="unknown data config keys"):
        from_config({"source": "demo", "resolutoin": 64})


def test_train_command_and_load_config_parse_overrides_the_same_way():
    f = str(REPO / "configs" / "tiny.py")
    overrides = [
        "model.conv='custom'",
        "data.source=demo",
        "model.stage1_depths=(1, 1, 1, 1, 1)",
        "init.nets=('G', 'G_ema')",
        "ema.rampup=0.05",
    ]
    _, from_cli = train_cmd.parse(["x", "--config", f, "--workdir", "w", *(f"--config.{o}" for o in overrides)])
    direct = load_config(f, overrides)
    assert from_cli.to_dict() == direct.to_dict()
    assert direct.model.conv == "custom" and direct.ema.rampup == 0.05
    assert steps.recipe_from_config(direct, _Mesh).ema_rampup == 0.05
