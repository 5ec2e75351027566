"""Training: the MAT GAN recipe as pure, sharded step functions and the loop around them.

Modules: `optim` (Adam with lazy-regularisation scaling), `losses` (adversarial, R1, perceptual), `vgg` (VGG19 for
the perceptual loss), `steps` (train state, G/D/R1/EMA steps), `sharding` (mesh and parameter rules),
`checkpoint` (orbax manager, auto-resume), `logs` (TensorBoard, metrics.jsonl, grids, progress), `loop` (the
train loop), `run_dir` / `nets_io` / `finetune` (nets in and out of runs). The command is `mat_jax/commands/train.py`.
"""
