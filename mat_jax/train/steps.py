"""The MAT training iteration as pure functions of a train-state pytree (official phases, in order):

  Gmain  (every iteration)      G update: softplus(-l(final)) + softplus(-l1(stage1)) + pcp_ratio * PCP(final, real)
  Greg   (every g_reg_interval) no-op in MAT (path-length code disabled); only its Adam scaling survives (optim.py)
  Dmain  (every iteration)      D update on fakes from the *updated*, frozen G (fresh z) and reals on both branches
  Dreg   (every d_reg_interval) separate D update: gamma/2 * (r1 + r1_stg1), times the interval (lazy R1)
  EMA    (every iteration)      G_ema <- G + beta * (G_ema - G); buffers (w_avg, noise_const) copied

The stage-1 D terms (softplus(-l1), D's loss on stage 1, r1_stg1; metrics suffixed `_s1`) exist only with
model.d_stage1: without that branch every phase uses the main one alone and reports no `_s1` metric, the same keys
every step. With model.stages = 1 (which needs d_stage1 = False) the generator's final image is stage 1's.

`main_step` = Gmain + Dmain + EMA + step increment; `r1_step` = Dreg (the loop runs it after `main_step` of every
iteration i with i % d_reg_interval == 0; EMA touches only G and Dreg only D, so this order equals the official one).

Randomness: every iteration derives its keys from (state["rng"], step) with fold_in, so nothing random is carried
between steps and a restored checkpoint continues the identical stream. Per generator run the key is split into
six named streams: z, mixing z, mixing cutoff, mixing coin, SMM maps ('smm'), decoder noise ('noise').

Class conditioning (model.c_dim > 0, the official `--cond`): the batch carries `"label": [B, c_dim]` one-hot
float32 (real_c). As the official loss, G's mapping gets gen_c (both the main and the style-mixing mapping call),
D gets gen_c with the fakes and real_c with the reals, and R1 uses real_c. Choice of gen_c: the official training
loop draws gen_c from the labels of random dataset images, independently of the real batch; here gen_c = real_c,
the batch's own labels. Why: (1) it is deterministic and needs no extra RNG stream or label table in the train
state (resume stays exact); (2) gen_c still follows the dataset's label distribution, the same marginal as the
official draw; (3) for inpainting it matches inference, where the known pixels and the label come from the same
image (a random gen_c would ask G to complete a class-a image as class b, which no user asks for). Unconditional
runs (c_dim = 0) have no "label" in the batch and trace exactly the programs they traced before.

Gradient accumulation (train.grad_accum_steps = A > 1): the global batch of B is split into A contiguous
micro-batches of B/A; every phase (Gmain, Dmain, Dreg) averages the micro-batches' gradients (and metrics) before its
one Adam step, so one iteration is still one optimizer step per phase and the step counter, the EMA, the lazy-R1
interval (counted in optimizer steps) and the images seen are those of the big batch. The iteration's random draws
(z, mixing z and cutoff, SMM maps, decoder noise) are made for the whole batch and sliced per micro-batch, the
mapping (and the w_avg update) sees the whole batch, and each micro-batch's D uses mbstd_shards / A contiguous
minibatch-std shards (A must divide mbstd_shards), i.e. the big batch's groups. So the step equals the big-batch step
up to float summation order (tests/test_train_memory.py); what it saves is activation memory: one micro-batch's
activations live at a time (lax.scan).

A non-finite loss (G or D total) makes `main_step` keep the old parameters, optimiser states, EMA and buffers (the
step counter still advances: the batch was consumed) and report finite=0; `r1_step` likewise.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax

from mat_jax.models import Discriminator, Generator
from mat_jax.models.config import MATConfig
from mat_jax.models.first_stage import bernoulli_map
from mat_jax.models.generator import noise_shapes, smm_shapes
from mat_jax.train import losses
from mat_jax.train.optim import AdamSettings, OptimizerConfig, optimizers_from_config, sanitize_grads

COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Static hyper-parameters of the training step (hashable: jit traces once per recipe and shape)."""

    model: MATConfig
    global_batch: int  # images per iteration over all devices
    style_mixing_prob: float = 0.5  # probability of one style-mixing cutoff per generator call
    truncation_psi: float = 0.5  # training truncation towards w_avg (official README: 0.5)
    pcp_ratio: float = 0.1  # weight of the perceptual loss (0 = off, no VGG needed)
    l1_ratio: float = 0.0  # weight of an L1(final, real) term; 0 = official (logged only)
    r1_gamma: float = 10.0  # R1 weight on both D branches
    d_reg_interval: int = OptimizerConfig.d_reg_interval  # lazy R1 every this many iterations (loss multiplied by it)
    ema_kimg: float = 10.0  # G_ema half-life in thousands of images
    ema_rampup: float | None = None  # None = no ramp; else half-life <= images seen * rampup
    mbstd_shards: int = 1  # contiguous batch shards for the D minibatch-std statistic
    compute_dtype: str = "float32"  # float32 | bfloat16 (parameters stay float32 masters)
    grad_accum_steps: int = 1  # micro-batches per iteration, gradients averaged before each Adam step (docstring)
    g_adam: AdamSettings = OptimizerConfig().settings()[0]  # official: lr 8e-4, betas (0, 0.99 ** 0.8)
    d_adam: AdamSettings = OptimizerConfig().settings()[1]  # official: lr 0.001 * 16/17, betas (0, 0.99 ** (16/17))

    def __post_init__(self):
        if self.compute_dtype not in COMPUTE_DTYPES:
            raise ValueError(f"train.compute_dtype={self.compute_dtype!r} is not one of {tuple(COMPUTE_DTYPES)}")
        if self.global_batch % max(self.mbstd_shards, 1):
            raise ValueError(f"global batch {self.global_batch} is not divisible by mbstd_shards={self.mbstd_shards}")
        a = self.grad_accum_steps
        if a < 1 or self.global_batch % a or max(self.mbstd_shards, 1) % a:
            raise ValueError(
                f"train.grad_accum_steps={a} must be >= 1 and divide train.global_batch_size={self.global_batch} and "
                f"train.mbstd_shards={self.mbstd_shards} (each micro-batch keeps whole minibatch-std shards)"
            )
        if self.d_reg_interval < 1:
            raise ValueError(f"optimizer.d_reg_interval must be >= 1, got {self.d_reg_interval}")

    @property
    def micro_batch(self) -> int:
        return self.global_batch // self.grad_accum_steps

    @property
    def micro_mbstd_shards(self) -> int:
        """Minibatch-std shards of one micro-batch: the big batch's shards that fall into it."""
        return max(self.mbstd_shards // self.grad_accum_steps, 1)

    @property
    def generator(self) -> Generator:
        return Generator(self.model)

    @property
    def discriminator(self) -> Discriminator:
        return Discriminator(self.model)


# Recipe field -> its key in the training config. The defaults are the dataclass's: mat_jax.config.base_config
# writes them into the config through this table and `recipe_from_config` reads them back (g_adam / d_adam come from
# the `optimizer` section, `model` from `model`).
CONFIG_KEYS = {
    "global_batch": "train.global_batch_size",
    "mbstd_shards": "train.mbstd_shards",
    "compute_dtype": "train.compute_dtype",
    "grad_accum_steps": "train.grad_accum_steps",
    "style_mixing_prob": "loss.style_mixing_prob",
    "truncation_psi": "loss.truncation_psi",
    "pcp_ratio": "loss.pcp_ratio",
    "l1_ratio": "loss.l1_ratio",
    "r1_gamma": "loss.r1_gamma",
    "d_reg_interval": "optimizer.d_reg_interval",
    "ema_kimg": "ema.kimg",
    "ema_rampup": "ema.rampup",
}


def recipe_from_config(config, mesh, model: MATConfig | None = None) -> Recipe:
    """The Recipe of a training config; `model` (a resolved MATConfig, see loop.resolve_model_config) replaces
    config.model, and train.mbstd_shards = 0 means one shard per device of `mesh`."""
    from mat_jax.config import model_config

    types = {f.name: f.type for f in dataclasses.fields(Recipe)}  # "float", "int", "float | None", ...
    values = {}
    for field, key in CONFIG_KEYS.items():
        section, name = key.split(".")
        value = config[section][name]
        cast = {"float": float, "int": int, "str": str}[types[field].split(" |")[0]]
        values[field] = None if value is None else cast(value)
    values["mbstd_shards"] = int(values["mbstd_shards"] or mesh.size)
    g_adam, d_adam = optimizers_from_config(config.optimizer)
    return Recipe(model=model_config(config) if model is None else model, g_adam=g_adam, d_adam=d_adam, **values)


def phases(step: int, recipe: Recipe) -> tuple[str, ...]:
    """Phases the official loop runs at iteration `step` (Greg is listed although it computes nothing)."""
    out = ["Gmain"]
    if recipe.g_adam.reg_interval and step % recipe.g_adam.reg_interval == 0:
        out.append("Greg")
    out.append("Dmain")
    if step % recipe.d_reg_interval == 0 and recipe.r1_gamma != 0:
        out.append("Dreg")
    return tuple(out)


def ema_beta(recipe: Recipe, step):
    """beta = 0.5 ** (batch / ema_nimg), ema_nimg = ema_kimg * 1000, optionally <= images_seen * rampup."""
    ema_nimg = jnp.asarray(recipe.ema_kimg * 1000.0, jnp.float32)
    if recipe.ema_rampup is not None:
        seen = jnp.asarray(step, jnp.float32) * recipe.global_batch
        ema_nimg = jnp.minimum(ema_nimg, seen * recipe.ema_rampup)
    return jnp.power(0.5, recipe.global_batch / jnp.maximum(ema_nimg, 1e-8))


# ---------------------------------------------------------------------------------------------------------------
# State


def init_state(recipe: Recipe, key: jax.Array) -> dict:
    """Fresh train state. `key`: a typed PRNG key (jax.random.key(seed)).

    {"step": int32[], "rng": uint32 key data, "g": {"params", "buffers"}, "d": {"params"},
     "ema": {"params", "buffers"}, "g_opt", "d_opt", "skipped": int32[] (non-finite iterations so far)}
    """
    cfg = recipe.model
    k_g, k_d, k_smm, k_noise, k_run = jax.random.split(key, 5)
    images_1xRxRx3 = jnp.zeros((1, cfg.resolution, cfg.resolution, cfg.img_channels), jnp.float32)
    masks_1xRxRx1 = jnp.ones((1, cfg.resolution, cfg.resolution, 1), jnp.float32)
    z_1xZ = jnp.zeros((1, cfg.z_dim), jnp.float32)
    c = (jnp.zeros((1, cfg.c_dim), jnp.float32),) if cfg.c_dim > 0 else ()  # unconditional: the same init call
    g_vars = recipe.generator.init(
        {"params": k_g, "smm": k_smm, "noise": k_noise}, images_1xRxRx3, masks_1xRxRx1, z_1xZ, *c
    )
    d_vars = recipe.discriminator.init(k_d, images_1xRxRx3, masks_1xRxRx1, images_1xRxRx3, *c)
    g = {"params": g_vars["params"], "buffers": g_vars["buffers"]}
    d = {"params": d_vars["params"]}
    return {
        "step": jnp.zeros((), jnp.int32),
        "rng": jax.random.key_data(k_run),
        "g": g,
        "d": d,
        "ema": jax.tree.map(jnp.copy, g),
        "g_opt": recipe.g_adam.make().init(g["params"]),
        "d_opt": recipe.d_adam.make().init(d["params"]),
        "skipped": jnp.zeros((), jnp.int32),
    }


def iteration_keys(state: dict) -> tuple[jax.Array, jax.Array]:
    """(Gmain key, Dmain key) of the iteration `state["step"]`."""
    key = jax.random.fold_in(jax.random.wrap_key_data(state["rng"]), state["step"])
    k_g, k_d = jax.random.split(key)
    return k_g, k_d


# ---------------------------------------------------------------------------------------------------------------
# Generator run (mapping + style mixing + synthesis)


def cast_floating(tree, dtype):
    """Every floating leaf of `tree` in `dtype` (the compute dtype's copy of float32 masters); others unchanged."""
    return jax.tree.map(lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)


def _rows(x, k, n: int):
    """Micro-batch k of n: rows [k*m, (k+1)*m) of x's leading axis, m = len(x) / n (x itself when n = 1)."""
    if n == 1:
        return x
    m = x.shape[0] // n
    return jax.lax.dynamic_slice_in_dim(x, k * m, m, axis=0)


def draw_latents(recipe: Recipe, key, b: int) -> dict:
    """The random inputs of one generator run over a batch of b: z and the style-mixing z/cutoff, both SMM maps, the
    decoder noise. Drawn for the whole batch (then sliced per micro-batch), so accumulation sees the same values."""
    cfg = recipe.model
    k_z, k_mix_z, k_cut, k_coin, k_smm, k_noise = jax.random.split(key, 6)
    cutoff = jnp.asarray(cfg.num_ws, jnp.int32)
    if recipe.style_mixing_prob > 0:
        cutoff = jax.random.randint(k_cut, (), 1, cfg.num_ws)  # uniform in {1, ..., num_ws - 1}
        cutoff = jnp.where(jax.random.uniform(k_coin, ()) < recipe.style_mixing_prob, cutoff, cfg.num_ws)
    smm1, smm2 = smm_shapes(cfg, b)
    k_s1, k_s2 = jax.random.split(k_smm)
    shapes = noise_shapes(cfg, b)
    k_ns = jax.random.split(k_noise, len(shapes))
    return {
        "z": jax.random.normal(k_z, (b, cfg.z_dim), jnp.float32),
        "z_mix": jax.random.normal(k_mix_z, (b, cfg.z_dim), jnp.float32),
        "cutoff": cutoff,
        "smm": (bernoulli_map(k_s1, smm1), bernoulli_map(k_s2, smm2)),
        "noise": {
            name: jax.random.normal(k, s, jnp.float32) for k, (name, s) in zip(k_ns, shapes.items(), strict=True)
        },
    }


def map_ws(recipe: Recipe, g_vars: dict, lat: dict, c_BxC=None):
    """official run_G's mapping half over the whole batch: ws = mapping(z, c, psi) (updates w_avg from the batch
    mean; official: per-GPU mean, buffers never synchronised) and style mixing (same c). -> (ws, new buffers)."""
    G = recipe.generator
    ws, upd = G.apply(
        g_vars,
        lat["z"],
        c_BxC,
        truncation_psi=recipe.truncation_psi,
        update_w_avg=True,
        method=Generator.map,
        mutable=["buffers"],
    )
    buffers = {**g_vars["buffers"], **upd["buffers"]}
    if recipe.style_mixing_prob > 0:
        mixed = {"params": g_vars["params"], "buffers": buffers}
        ws2 = G.apply(mixed, lat["z_mix"], c_BxC, truncation_psi=recipe.truncation_psi, method=Generator.map)
        ws = jnp.where(jnp.arange(recipe.model.num_ws)[None, :, None] < lat["cutoff"], ws, ws2)
    return ws, buffers


def synthesize(recipe: Recipe, g_vars: dict, images_BxRxRx3, masks_BxRxRx1, ws_BxNxW, lat: dict, k=0):
    """Synthesis of micro-batch k (of recipe.grad_accum_steps) with that micro-batch's slice of the drawn SMM maps
    and noise, in the compute dtype. -> (final, stage1) float32."""
    n, dt = lat["z"].shape[0] // images_BxRxRx3.shape[0], COMPUTE_DTYPES[recipe.compute_dtype]
    rows = lambda x: _rows(x, k, n).astype(dt)
    final, stage1, _ = recipe.generator.apply(
        cast_floating(g_vars, dt),
        images_BxRxRx3.astype(dt),
        masks_BxRxRx1.astype(dt),
        rows(ws_BxNxW),
        "random",
        tuple(rows(m) for m in lat["smm"]),
        {name: rows(v) for name, v in lat["noise"].items()},
        method=Generator.synthesize,
    )
    return final.astype(jnp.float32), stage1.astype(jnp.float32)


def run_generator(recipe: Recipe, g_vars: dict, images_BxRxRx3, masks_BxRxRx1, key, c_BxC=None):
    """official run_G on one whole batch: mapping + style mixing, synthesis with random SMM maps and noise.
    c_BxC: gen_c [B, c_dim] one-hot (None when unconditional). -> (final, stage1 [B,R,R,3] f32, new buffers)."""
    lat = draw_latents(recipe, key, images_BxRxRx3.shape[0])
    ws, buffers = map_ws(recipe, g_vars, lat, c_BxC)
    final, stage1 = synthesize(
        recipe, {"params": g_vars["params"], "buffers": buffers}, images_BxRxRx3, masks_BxRxRx1, ws, lat
    )
    return final, stage1, buffers


STAGE1 = "_s1"  # the stage-1 D branch's key in the per-branch dicts below, and its metrics' suffix


def d_branches(cfg: MATConfig) -> tuple[str, ...]:
    """The discriminator's branches, as keys of the per-branch dicts: "" (main) and STAGE1 when cfg.d_stage1."""
    return ("", STAGE1) if cfg.d_stage1 else ("",)


def _d_logits(recipe: Recipe, d_params, images, masks, images_stg1, c=None) -> dict[str, jax.Array]:
    """{branch (d_branches): logits [B, 1] float32} of one (micro-)batch: the main branch on `images`, the stage-1
    branch on `images_stg1` (not read without it); the minibatch-std groups are the big batch's
    (Recipe.micro_mbstd_shards shards of a micro-batch)."""
    dt = COMPUTE_DTYPES[recipe.compute_dtype]
    c = None if c is None else c.astype(dt)
    shards = recipe.micro_mbstd_shards if images.shape[0] == recipe.micro_batch else recipe.mbstd_shards
    branches = d_branches(recipe.model)
    logits = recipe.discriminator.apply(
        {"params": cast_floating(d_params, dt)},
        images.astype(dt),
        masks.astype(dt),
        images_stg1.astype(dt) if STAGE1 in branches else None,
        c,
        mbstd_shards=shards,
    )
    return {b: logit.astype(jnp.float32) for b, logit in zip(branches, logits[: len(branches)], strict=True)}


def micro_batches(recipe: Recipe, batch: dict, sharding=None) -> dict:
    """{key: [A, B/A, ...]}: the batch as A = grad_accum_steps contiguous micro-batches; `sharding` (a sharding of
    that layout, e.g. the batch axes on dimension 1) spreads every micro-batch over all devices."""
    a = recipe.grad_accum_steps
    out = {k: v.reshape(a, v.shape[0] // a, *v.shape[1:]) for k, v in batch.items()}
    return out if sharding is None else jax.lax.with_sharding_constraint(out, {k: sharding for k in out})


def accumulate(fn, n: int):
    """Mean over k < n of fn(k) (a pytree of arrays: gradients, metrics), one k at a time (lax.scan keeps one
    micro-batch's activations alive); fn(0) itself when n = 1."""
    if n == 1:
        return fn(0)
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(fn, 0))
    total, _ = jax.lax.scan(lambda acc, k: (jax.tree.map(jnp.add, acc, fn(k)), None), zeros, jnp.arange(n))
    return jax.tree.map(lambda x: x / n, total)


# ---------------------------------------------------------------------------------------------------------------
# Phases


def g_main(recipe: Recipe, g: dict, g_opt, d_params, batch: dict, key, vgg_params=None):
    """Gmain: one G Adam step on the (micro-batched, see micro_batches) batch. Returns (new g {"params",
    "buffers"}, new g_opt, total loss, metrics)."""
    n = recipe.grad_accum_steps
    c_full = None if "label" not in batch else batch["label"].reshape(-1, batch["label"].shape[-1])
    lat = draw_latents(recipe, key, recipe.global_batch)
    _, buffers = map_ws(recipe, g, lat, c_full)  # the w_avg update of the whole batch

    def loss_fn(g_params, k):
        images, masks = batch["image"][k], batch["mask"][k]
        c = None if c_full is None else batch["label"][k]  # gen_c = real_c (module docstring)
        ws, _ = map_ws(recipe, {"params": g_params, "buffers": g["buffers"]}, lat, c_full)
        final, stage1 = synthesize(recipe, {"params": g_params, "buffers": buffers}, images, masks, ws, lat, k)
        logits = _d_logits(recipe, d_params, final, masks, stage1, c)
        adv = {b: losses.g_adversarial(logit) for b, logit in logits.items()}
        l1 = jnp.mean(jnp.abs(final - images))
        total = sum(adv.values()) + recipe.l1_ratio * l1
        m = {"G/l1": l1}
        for b, logit in logits.items():
            m[f"G/loss{b}"], m[f"scores/fake_g{b}"] = adv[b], jnp.mean(logit)
        if recipe.pcp_ratio > 0:
            pcp = losses.perceptual(vgg_params, final, images)
            total = total + recipe.pcp_ratio * pcp
            m["G/pcp"] = pcp
        m["G/total"] = total
        return total, m

    def micro(k):
        (_, m), grads = jax.value_and_grad(loss_fn, has_aux=True)(g["params"], k)
        return grads, m

    grads, m = accumulate(micro, n)
    grads = sanitize_grads(grads)
    m["G/grad_norm"] = optax.global_norm(grads)
    updates, g_opt = recipe.g_adam.make().update(grads, g_opt, g["params"])
    return {"params": optax.apply_updates(g["params"], updates), "buffers": buffers}, g_opt, m["G/total"], m


def d_main(recipe: Recipe, d: dict, d_opt, g: dict, batch: dict, key):
    """Dmain: fakes from the frozen G (fresh z, w_avg updated), reals on both branches; one D Adam step.
    Returns (new d, new d_opt, new G buffers, total loss, metrics)."""
    n, g = recipe.grad_accum_steps, jax.lax.stop_gradient(g)
    c_full = None if "label" not in batch else batch["label"].reshape(-1, batch["label"].shape[-1])
    lat = draw_latents(recipe, key, recipe.global_batch)
    ws, buffers = map_ws(recipe, g, lat, c_full)
    g_run = {"params": g["params"], "buffers": buffers}

    def micro(k):
        images, masks = batch["image"][k], batch["mask"][k]
        c = None if c_full is None else batch["label"][k]  # gen_c = real_c (module docstring)
        final, stage1 = jax.lax.stop_gradient(synthesize(recipe, g_run, images, masks, ws, lat, k))

        def loss_fn(d_params):
            fake = _d_logits(recipe, d_params, final, masks, stage1, c)
            real = _d_logits(recipe, d_params, images, masks, images, c)
            m = {}
            for b in fake:
                m[f"D/loss{b}"] = losses.d_adversarial(fake[b], real[b])
                m[f"scores/fake{b}"], m[f"scores/real{b}"] = jnp.mean(fake[b]), jnp.mean(real[b])
                m[f"signs/fake{b}"], m[f"signs/real{b}"] = jnp.mean(jnp.sign(fake[b])), jnp.mean(jnp.sign(real[b]))
            m["D/total"] = sum(m[f"D/loss{b}"] for b in fake)
            return m["D/total"], m

        (_, m), grads = jax.value_and_grad(loss_fn, has_aux=True)(d["params"])
        return grads, m

    grads, m = accumulate(micro, n)
    grads = sanitize_grads(grads)
    m["D/grad_norm"] = optax.global_norm(grads)
    updates, d_opt = recipe.d_adam.make().update(grads, d_opt, d["params"])
    return {"params": optax.apply_updates(d["params"], updates)}, d_opt, buffers, m["D/total"], m


def r1_loss(recipe: Recipe, d_params, batch: dict):
    """Dreg loss of one (micro-)batch = mean((r1 + r1_stg1) * gamma / 2) * d_reg_interval (r1 alone without the
    stage-1 branch), and its metrics."""
    images, masks, c = batch["image"], batch["mask"], batch.get("label")  # real_c
    penalties = losses.r1_penalties(
        lambda xs: _d_logits(recipe, d_params, xs[""], masks, xs.get(STAGE1), c),
        {b: images for b in d_branches(recipe.model)},
    )
    reg = jnp.mean(sum(penalties.values()) * (recipe.r1_gamma / 2))
    total = reg * recipe.d_reg_interval
    m = {f"R1/penalty{b}": jnp.mean(p) for b, p in penalties.items()}
    return total, {**m, "R1/reg": reg, "R1/total": total}


def ema_update(recipe: Recipe, ema: dict, g: dict, step):
    """G_ema params <- p + beta * (p_ema - p); buffers copied from G."""
    beta = ema_beta(recipe, step)
    params = jax.tree.map(lambda e, p: p + beta * (e - p), ema["params"], g["params"])
    return {"params": params, "buffers": jax.tree.map(jnp.copy, g["buffers"])}, beta


def _select(ok, new, old):
    return jax.tree.map(lambda n, o: jnp.where(ok, n, o), new, old)


def main_step(recipe: Recipe, state: dict, batch: dict, vgg_params=None, micro_sharding=None) -> tuple[dict, dict]:
    """Gmain, Dmain, EMA of iteration state["step"]; batch {"image": [B,R,R,3] in [-1,1], "mask": [B,R,R,1]
    (1 = known)} (+ "label": [B, c_dim] one-hot when c_dim > 0). Returns (new state with step + 1, metrics of
    scalars). micro_sharding: see micro_batches."""
    k_g, k_d = iteration_keys(state)
    batch = micro_batches(recipe, batch, micro_sharding)
    g, g_opt, g_total, mg = g_main(recipe, state["g"], state["g_opt"], state["d"]["params"], batch, k_g, vgg_params)
    d, d_opt, buffers, d_total, md = d_main(recipe, state["d"], state["d_opt"], g, batch, k_d)
    g = {"params": g["params"], "buffers": buffers}
    ema, beta = ema_update(recipe, state["ema"], g, state["step"])
    ok = jnp.isfinite(g_total) & jnp.isfinite(d_total)
    updated = {"g": g, "d": d, "ema": ema, "g_opt": g_opt, "d_opt": d_opt}
    kept = {k: state[k] for k in updated}
    new = {
        **state,
        **_select(ok, updated, kept),
        "step": state["step"] + 1,
        "skipped": state["skipped"] + (1 - ok.astype(jnp.int32)),
    }
    metrics = {
        **mg,
        **md,
        "ema_beta": beta,
        "finite": ok.astype(jnp.float32),
        "w_avg_norm": jnp.linalg.norm(buffers["mapping"]["w_avg"]),
    }
    return new, metrics


def r1_step(recipe: Recipe, state: dict, batch: dict, micro_sharding=None) -> tuple[dict, dict]:
    """Dreg: one separate D Adam step on the lazy R1 loss (a second D optimiser step in this iteration), its
    gradient averaged over the micro-batches."""
    batch = micro_batches(recipe, batch, micro_sharding)

    def micro(k):
        (_, m), grads = jax.value_and_grad(
            lambda p: r1_loss(recipe, p, {key: v[k] for key, v in batch.items()}), has_aux=True
        )(state["d"]["params"])
        return grads, m

    grads, m = accumulate(micro, recipe.grad_accum_steps)
    grads = sanitize_grads(grads)
    m["R1/grad_norm"] = optax.global_norm(grads)
    updates, d_opt = recipe.d_adam.make().update(grads, state["d_opt"], state["d"]["params"])
    d = {"params": optax.apply_updates(state["d"]["params"], updates)}
    ok = jnp.isfinite(m["R1/total"])
    new = {
        **state,
        **_select(ok, {"d": d, "d_opt": d_opt}, {"d": state["d"], "d_opt": state["d_opt"]}),
        "skipped": state["skipped"] + (1 - ok.astype(jnp.int32)),
    }
    m["R1/finite"] = ok.astype(jnp.float32)
    return new, m
