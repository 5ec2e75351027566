"""VGG19 feature extractor for MAT's perceptual loss, and the import of torchvision `vgg19` weights.

The official loss (losses/pcp.py, losses/vggNet.py) feeds (x + 1) / 2, ImageNet-normalised, through torchvision's
`vgg19(pretrained=True).features` truncated after conv5_4 (3x3 convs with padding 1, 2x2/2 max-pools) and takes
conv4_4 (features index 25) and conv5_4 (index 34) *before* their ReLU. Weights are never downloaded here: pass a
torchvision vgg19 state_dict saved as `.pth` (torch needed, imported lazily) or `.safetensors`.

Parameter names follow the torchvision indices (`features_25` <-> `features.25`), so the import is a table.
"""

from __future__ import annotations

import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
STAGE_CONVS = (2, 2, 4, 4, 4)  # convs per stage in VGG19 ('E')
OFFICIAL_WIDTHS = (64, 128, 256, 512, 512)
FEATURE_INDEX = {"conv4_4": 25, "conv5_4": 34}  # torchvision `features` indices of the extracted convs


def conv_indices() -> list[tuple[int, int, str]]:
    """[(torchvision features index, stage, layer name)] of the 16 convs up to conv5_4."""
    out, idx = [], 0
    for s, n in enumerate(STAGE_CONVS):
        for i in range(n):
            out.append((idx, s, f"conv{s + 1}_{i + 1}"))
            idx += 2  # conv, relu
        idx += 1  # max-pool
    return out


class VGG19Features(nn.Module):
    """[B,H,W,3] in [0,1] -> {"conv4_4": [B,H/8,W/8,C4], "conv5_4": [B,H/16,W/16,C5]} (pre-ReLU).

    `widths` are the stage widths (official (64,128,256,512,512)); tests use narrow random networks.
    """

    widths: tuple[int, ...] = OFFICIAL_WIDTHS

    @nn.compact
    def __call__(self, x):
        mean = jnp.asarray(IMAGENET_MEAN, x.dtype)
        std = jnp.asarray(IMAGENET_STD, x.dtype)
        x = (x - mean) / std
        feats = {}
        prev_stage = 0
        for idx, stage, name in conv_indices():
            if stage != prev_stage:
                x = nn.max_pool(x, (2, 2), (2, 2))
                prev_stage = stage
            x = nn.Conv(self.widths[stage], (3, 3), padding=((1, 1), (1, 1)), name=f"features_{idx}")(x)
            if name in FEATURE_INDEX:
                feats[name] = x
                if name == "conv5_4":
                    break
            x = nn.relu(x)
        return feats


def widths_from_params(params) -> tuple[int, ...]:
    """Stage widths of a VGG19 parameter tree (so a narrow test network needs no extra config)."""
    return tuple(
        int(params[f"features_{idx}"]["kernel"].shape[-1]) for idx, _, name in conv_indices() if name.endswith("_1")
    )


def _read_state_dict(path: pathlib.Path) -> dict[str, np.ndarray]:
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.numpy import load_file

        return dict(load_file(str(path)))
    if suffix in (".pth", ".pt", ".bin"):
        try:
            import torch
        except ImportError as e:
            raise ImportError(
                f"reading {path} needs torch (pip install 'mat-jax[torch]'), or convert it to .safetensors first"
            ) from e
        sd = torch.load(str(path), map_location="cpu", weights_only=True)
        if not isinstance(sd, dict):
            raise ValueError(f"{path}: expected a state_dict (dict of tensors), got {type(sd).__name__}")
        return {k: v.detach().float().numpy() for k, v in sd.items() if hasattr(v, "detach")}
    raise ValueError(
        f"{path}: unsupported VGG19 weights format {suffix!r}; use a torchvision vgg19 state_dict "
        "saved as .pth or .safetensors"
    )


def load_vgg19_params(path: str | pathlib.Path) -> dict:
    """Flax params of `VGG19Features` from a torchvision vgg19 state_dict file (`features.N.weight/bias`).

    Accepts keys with or without the `features.` prefix (a saved `vgg19().features` has none). Conv weights
    OIHW -> HWIO. Extra keys (classifier, deeper layers) are ignored.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"VGG19 weights file not found: {path} (loss.vgg_weights)")
    sd = _read_state_dict(path)
    params, missing = {}, []
    for idx, _, name in conv_indices():
        w = sd.get(f"features.{idx}.weight", sd.get(f"{idx}.weight"))
        b = sd.get(f"features.{idx}.bias", sd.get(f"{idx}.bias"))
        if w is None or b is None:
            missing.append(f"features.{idx} ({name})")
            continue
        w = np.asarray(w, np.float32)
        if w.ndim != 4 or w.shape[2:] != (3, 3):
            raise ValueError(f"{path}: features.{idx}.weight has shape {w.shape}, expected [out, in, 3, 3]")
        params[f"features_{idx}"] = {
            "kernel": jnp.asarray(w.transpose(2, 3, 1, 0)),
            "bias": jnp.asarray(np.asarray(b, np.float32)),
        }
    if missing:
        raise ValueError(f"{path} is not a torchvision vgg19 state_dict: missing {', '.join(missing)}")
    return params


def random_vgg19_params(key: jax.Array, widths: tuple[int, ...] = OFFICIAL_WIDTHS, resolution: int = 32) -> dict:
    """Randomly initialised VGG19 params (tests and benchmarks only: the loss is meaningless without real weights)."""
    x = jnp.zeros((1, resolution, resolution, 3), jnp.float32)
    return VGG19Features(widths).init(key, x)["params"]
