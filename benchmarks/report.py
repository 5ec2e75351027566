"""What the benchmarks report about a timed program, and the one table printer they share (bench_train.py,
bench_models.py, the projection tables).

Throughput: images/s per device = images per step / step time / devices in the run; per host = that x the host's
local devices (the host's measured rate when the run used all of them, as on a CPU or a 1-GPU host). FLOPs are
XLA's count of the whole step (xla_flops.py), so MFU = FLOPs / step time / devices / the device's peak for the
run's dtype (hardware.py: a spec sheet, or the measured matmul peak on CPU).
"""

from __future__ import annotations

import dataclasses
import math


def speed(flops_per_step: float, step_s: float, images_per_step: int, devices: int, local_devices: int, peak: float):
    """Per-device and per-host images/s, GFLOP per image, achieved TFLOP/s per device and MFU of one timed step."""
    per_device = images_per_step / step_s / devices
    achieved = flops_per_step / step_s / devices
    return {
        "images_per_s_device": per_device,
        "images_per_s_host": per_device * local_devices,
        "gflop_per_image": flops_per_step / images_per_step / 1e9,
        "tflops_device": achieved / 1e12,
        "mfu": achieved / peak,
    }


@dataclasses.dataclass(frozen=True)
class Col:
    header: str
    key: str
    fmt: str = ""  # format spec for numbers ("" = str()); None and NaN print as "–"


def _cell(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return format(value, fmt) if fmt and isinstance(value, (int, float)) else str(value)


def table(rows: list[dict], cols: list[Col], markdown: bool = False) -> str:
    """rows as a table of cols: aligned plain text, or a GitHub markdown table. A missing key prints as "–"."""
    cells = [[_cell(r.get(c.key), c.fmt) for c in cols] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(c.header for c in cols) + " |", "|" + "---|" * len(cols)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])
    widths = [max([len(c.header)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]
    pad = lambda i, v, w: v.rjust(w) if i else v.ljust(w)  # first column left-aligned, numbers right-aligned
    fmt_row = lambda row: "  ".join(pad(i, v, w) for i, (v, w) in enumerate(zip(row, widths, strict=True)))
    return "\n".join([fmt_row([c.header for c in cols])] + [fmt_row(row) for row in cells])


# The columns both benchmarks print for a timed program (after their own identifying columns).
SPEED_COLS = [
    Col("img/s/device", "images_per_s_device", ".3f"),
    Col("img/s/host", "images_per_s_host", ".3f"),
    Col("GFLOP/img", "gflop_per_image", ".1f"),
    Col("TFLOP/s/dev", "tflops_device", ".3f"),
    Col("peak TFLOP/s", "peak_tflops", ".3f"),
    Col("MFU", "mfu", ".1%"),
    Col("peak mem GiB", "peak_mem_gb", ".2f"),
    Col("mem", "peak_mem_source"),
]


def hardware_lines(rows: list[dict]) -> list[str]:
    """One line per distinct machine the rows ran on: device kind, platform, devices used / local, where the peak
    comes from."""
    keys = ("host", "device_kind", "platform", "devices", "local_devices", "dtype", "peak_source")
    seen = dict.fromkeys(tuple(r[k] for k in keys) for r in rows)
    return [
        f"measured on: {kind} ({platform}; host {host}), {n} of {local} local device(s); {dtype} peak: {source}"
        for host, kind, platform, n, local, dtype, source in seen
    ]


def write_markdown(path, title: str, lines: list[str], markdown_table: str) -> None:
    """Append `title`, the hardware lines and a markdown table to `path`."""
    with open(path, "a") as f:
        f.write(f"\n### {title}\n\n" + "".join(f"- {x}\n" for x in lines) + "\n" + markdown_table + "\n")
