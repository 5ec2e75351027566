"""The real RGB photos that ship inside scikit-image, as a tiny built-in dataset for the demo job and tests.

Why these: they load offline from the scikit-image wheel (never install `pooch`: it would make the other
skimage loaders try the network), are real photographs (inpainting on synthetic noise says nothing), and are
public domain / CC0 (see DEMO_LICENSES). Requires the `demo` or `test` extra (scikit-image).
"""

from __future__ import annotations

import functools

import numpy as np

# name -> license / origin as stated in the scikit-image 0.26 loader docstrings (`help(skimage.data.NAME)`).
DEMO_LICENSES: dict[str, str] = {
    "astronaut": "public domain (NASA Great Images; astronaut Eileen Collins)",
    "coffee": "CC0 (photographer Rachel Michetti)",
    "chelsea": "CC0 (photographer Stefan van der Walt)",
    "rocket": "public domain (SpaceX photos)",
    "hubble_deep_field": "public domain (NASA/HubbleSite)",
    "immunohistochemistry": "no known copyright restrictions (CMMI)",
    "retina": "CC0 1.0 (Wikimedia Commons, Mikael Haggstrom)",
}
DEMO_NAMES: tuple[str, ...] = tuple(DEMO_LICENSES)


@functools.lru_cache(maxsize=None)
def _load(name: str) -> np.ndarray:
    try:
        import skimage.data
    except ImportError as e:
        raise ImportError("the demo photos need scikit-image (a mat-jax dependency): pip install scikit-image") from e
    if name not in DEMO_LICENSES:
        raise ValueError(f"unknown demo photo {name!r}; available: {DEMO_NAMES}")
    image = np.ascontiguousarray(getattr(skimage.data, name)())
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"skimage.data.{name}() is {image.shape} {image.dtype}, expected [H, W, 3] uint8")
    image.setflags(write=False)  # shared by the cache
    return image


def demo_images(names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """{name: [H, W, 3] uint8 RGB} for the bundled photos (default: all of DEMO_NAMES), read-only arrays."""
    return {n: _load(n) for n in (names or DEMO_NAMES)}


class DemoSource:
    """Raw source (see sources.py) over the demo photos; `repeats` tiles the list so a tiny demo run has
    more records per epoch (each repeat gets its own random crop and mask in the pipeline)."""

    def __init__(self, names: tuple[str, ...] | None = None, repeats: int = 1):
        if repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {repeats}")
        self.names = tuple(names or DEMO_NAMES)
        for n in self.names:
            if n not in DEMO_LICENSES:
                raise ValueError(f"unknown demo photo {n!r}; available: {DEMO_NAMES}")
        self.repeats = repeats
        self.name = f"demo:{','.join(self.names)}"

    def __len__(self) -> int:
        return len(self.names) * self.repeats

    def raw(self, i: int):
        name = self.names[i % len(self.names)]
        return _load(name), name
