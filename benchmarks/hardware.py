"""Peak FLOP/s and interconnect bandwidth of the accelerators the benchmarks report MFU against, the device lookup,
and the measured matmul peak that stands in for "peak" on a CPU (or an accelerator not in the table).

Sources (dense figures; the 2x "with sparsity" numbers of NVIDIA's sheets are never used):
  A100  NVIDIA A100 Tensor Core GPU datasheet (SXM4): BF16 312, TF32 156, FP32 19.5 TFLOP/s; NVLink 3 600 GB/s.
  H100  NVIDIA H100 Tensor Core GPU datasheet (SXM5): BF16 989.4, TF32 494.7, FP32 67 TFLOP/s; NVLink 4 900 GB/s.
  H200  NVIDIA H200 Tensor Core GPU datasheet (SXM): BF16 989.4, TF32 494.7, FP32 67 TFLOP/s; NVLink 900 GB/s.
  TPU   cloud.google.com/tpu/docs/{v4,v5e,v5p}: peak bf16 per chip 275 / 197 / 459 TFLOP/s; v5e and v5p give the
        bidirectional ICI bandwidth per chip (400 / 1200 GB/s); v4 gives the all-reduce bandwidth per pod
        (1.1 PB/s over 4096 chips, i.e. 268 GB/s per chip).

"fp32" is what a float32 matmul or convolution runs at under JAX's default precision, which the models use (no
`precision=` in mat_jax/models): TF32 tensor cores on NVIDIA Ampere and newer, one bfloat16 MXU pass on TPU, so
the TPU fp32 peak is its bf16 peak (with precision=HIGHEST a TPU takes ~6 passes and an NVIDIA GPU runs FP32 on its
CUDA cores: the `fp32_highest` column).

`allreduce_bw` (bytes/s) is the per-chip bandwidth in one direction that the ring all-reduce model uses (half the
vendors' bidirectional NVLink / ICI figure; v4: the per-chip all-reduce bandwidth above), within `node_size` chips
(an NVLink domain: 8 GPUs; a TPU slice is all ICI). Beyond a node a ring runs at `network_bw`: 8x 200 Gb/s HDR
InfiniBand per DGX A100 and 8x 400 Gb/s NDR per DGX H100/H200, i.e. 25 / 50 GB/s per GPU. Vendor figures are upper
bounds: NCCL's measured bus bandwidth is lower, so projected all-reduce times are optimistic.
"""

from __future__ import annotations

import dataclasses
import time


@dataclasses.dataclass(frozen=True)
class Chip:
    name: str
    patterns: tuple[str, ...]  # lower-case substrings of jax's device_kind, e.g. "NVIDIA H100 80GB HBM3"
    bf16: float  # dense peak FLOP/s, bfloat16 inputs
    fp32: float  # dense peak FLOP/s of float32 inputs at JAX's default precision (TF32 / one bf16 pass)
    fp32_highest: float  # float32 at precision=HIGHEST (CUDA-core FP32; TPU: bf16 peak / 6 passes)
    allreduce_bw: float  # bytes/s per chip, one direction, on the fast interconnect (the ring model's bandwidth)
    interconnect: str
    node_size: int  # chips on that interconnect
    network_bw: float  # bytes/s per chip between nodes (0: the interconnect spans the whole slice)

    def peak(self, dtype: str) -> float:
        return {"bfloat16": self.bf16, "float32": self.fp32}[dtype]


T = 1e12
G = 1e9
# PCIe and NVL cards (other clocks, NVLink bridges) match no row: their peak is measured, not taken from the SXM row.
NOT_SXM = ("pcie", "nvl")
CHIPS = (  # first match wins: the more specific names first
    Chip("H200 SXM", ("h200",), 989.4 * T, 494.7 * T, 67 * T, 450 * G, "NVLink 4, 900 GB/s bidirectional", 8, 50 * G),
    Chip("H100 SXM", ("h100",), 989.4 * T, 494.7 * T, 67 * T, 450 * G, "NVLink 4, 900 GB/s bidirectional", 8, 50 * G),
    Chip("A100 SXM", ("a100",), 312 * T, 156 * T, 19.5 * T, 300 * G, "NVLink 3, 600 GB/s bidirectional", 8, 25 * G),
    Chip("TPU v5e", ("tpu v5 lite", "tpu v5e"), 197 * T, 197 * T, 197 / 6 * T, 200 * G, "ICI, 400 GB/s bidir.", 256, 0),
    Chip("TPU v5p", ("tpu v5p", "tpu v5"), 459 * T, 459 * T, 459 / 6 * T, 600 * G, "ICI, 1200 GB/s bidir.", 8960, 0),
    Chip("TPU v4", ("tpu v4",), 275 * T, 275 * T, 275 / 6 * T, 268 * G, "ICI, 1.1 PB/s per 4096-chip pod", 4096, 0),
)


def lookup(device_kind: str) -> Chip | None:
    """The table's chip for a jax device_kind ("NVIDIA H200", "TPU v5 lite", ...); None for CPUs and unknown chips."""
    kind = device_kind.lower()
    if kind.startswith("nvidia") and any(x in kind for x in NOT_SXM):
        return None
    for chip in CHIPS:
        if any(p in kind for p in chip.patterns):
            return chip
    return None


def by_name(name: str) -> Chip:
    """A chip of the table by its name ("H100 SXM") or a device_kind-like string ("h100"); ValueError lists them."""
    for chip in CHIPS:
        if chip.name.lower() == name.lower():
            return chip
    chip = lookup(name)
    if chip is None:
        raise ValueError(f"unknown chip {name!r}; known: {', '.join(c.name for c in CHIPS)}")
    return chip


def measure_matmul_peak(dtype: str, n: int = 2048, repeats: int = 10, device=None) -> float:
    """FLOP/s of the best of `repeats` jitted n x n @ n x n matmuls (2 n^3 FLOPs each) in `dtype` on `device`: the
    "peak" MFU is measured against where the table has no entry (a CPU, an unlisted accelerator)."""
    import jax
    import jax.numpy as jnp

    dt = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}[dtype]
    device = device or jax.devices()[0]
    a_NxN, b_NxN = (jax.device_put(jax.random.normal(jax.random.key(i), (n, n), dt), device) for i in (0, 1))
    mm = jax.jit(jnp.matmul).lower(a_NxN, b_NxN).compile()
    jax.block_until_ready(mm(a_NxN, b_NxN))  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(mm(a_NxN, b_NxN))
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def peak_flops(device, dtype: str, repeats: int = 20) -> tuple[float, str]:
    """(peak FLOP/s for `dtype` on `device`, where it comes from): the table for known chips, else measured."""
    chip = lookup(device.device_kind)
    if chip is not None:
        return chip.peak(dtype), f"{chip.name} spec sheet"
    peak = measure_matmul_peak(dtype, repeats=repeats, device=device)
    return peak, f"measured {dtype} matmul (2048^3, best of {repeats})"


def peaks_in_subprocess(dtypes: list[str], env: dict) -> dict[str, list]:
    """{dtype: [peak FLOP/s, source]} of this machine's first device, found once in a fresh process, so that every
    case of a sweep is measured against the same peak (a CPU's measured peak varies with other load)."""
    import json
    import subprocess
    import sys

    res = subprocess.run([sys.executable, __file__, "--peaks", *dtypes], env=env, capture_output=True, text=True)
    lines = [x for x in res.stdout.splitlines() if x.startswith("RESULT ")]
    if res.returncode or not lines:
        raise RuntimeError(f"peak measurement failed ({res.returncode}):\n{res.stderr[-2000:]}")
    return json.loads(lines[0][7:])


def host_description() -> str:
    """This host's CPU model and the cores this process may use ("AMD EPYC, 2 cores")."""
    import os
    import pathlib
    import platform

    cpuinfo = pathlib.Path("/proc/cpuinfo")  # Linux; elsewhere platform.processor()
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    fallback = platform.processor() or platform.machine()
    model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), fallback)
    return f"{model}, {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()} cores"


def run_fields(devices: list, dtype: str, peak: tuple[float, str] | None = None) -> dict:
    """The machine a run used and the peak its MFU is measured against (the first device's kind; runs use one
    kind): `peak` = (FLOP/s, source) as peaks_in_subprocess found it, or None to find it here."""
    import os

    import jax

    peak, source = peak if peak is not None else peak_flops(devices[0], dtype)
    return {
        "host": host_description(),
        "host_load_1m": os.getloadavg()[0],  # other processes on a shared machine slow the step and the peak
        "device_kind": devices[0].device_kind,
        "platform": devices[0].platform,
        "devices": len(devices),
        "local_devices": jax.local_device_count(),
        "dtype": dtype,
        "peak_flops": peak,
        "peak_tflops": peak / 1e12,
        "peak_source": source,
    }


def peak_memory_fields(devices: list) -> dict:
    """Peak memory in GiB: the largest device peak (`memory_stats()["peak_bytes_in_use"]`, GPU/TPU) or, where the
    backend keeps no statistics (CPU), this process's peak RSS."""
    import resource

    stats = [d.memory_stats() or {} for d in devices]
    if all("peak_bytes_in_use" in s for s in stats):
        return {"peak_mem_gb": max(s["peak_bytes_in_use"] for s in stats) / 2**30, "peak_mem_source": "device"}
    return {"peak_mem_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "peak_mem_source": "RSS"}


def ring_allreduce_s(nbytes: float, n: int, bw: float) -> float:
    """Bandwidth term of a ring all-reduce of nbytes over n chips: 2 (n - 1) / n * nbytes / bw (latency ignored)."""
    return 0.0 if n <= 1 else 2 * (n - 1) / n * nbytes / bw


def chip_allreduce_s(chip: Chip, nbytes: float, n: int) -> float:
    """The ring model on `chip`: its interconnect within a node, the inter-node network beyond (the slowest link
    bounds a ring)."""
    bw = chip.allreduce_bw if n <= chip.node_size or not chip.network_bw else chip.network_bw
    if n > chip.node_size and not chip.network_bw:
        raise ValueError(f"{chip.name}: {n} chips exceed its interconnect ({chip.node_size}) and no network is known")
    return ring_allreduce_s(nbytes, n, bw)


if __name__ == "__main__":  # python benchmarks/hardware.py --peaks float32 bfloat16 (peaks_in_subprocess)
    import argparse
    import json

    ap = argparse.ArgumentParser(description="Peak FLOP/s of this machine's first device per dtype")
    ap.add_argument("--peaks", nargs="+", choices=["float32", "bfloat16"], required=True)
    import jax

    device = jax.devices()[0]
    print("RESULT " + json.dumps({d: list(peak_flops(device, d)) for d in ap.parse_args().peaks}), flush=True)
