"""The training command as separate processes: kill -9 right after a checkpoint then resume (bit-identical to an
uninterrupted run), SIGTERM (checkpoint, exit 0, resume), two local processes (jax.distributed on 127.0.0.1, gloo)
training and saving, resumed by a single process, and one of two processes killed with SIGKILL: the survivor exits
4 within the heartbeat timeout naming the last complete checkpoint, and relaunching both resumes from it. Marked
slow: each process compiles the steps."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from train_helpers import MICRO_OVERRIDES, REPO, TINY, free_port, micro_config, subprocess_env, tree_equal

from mat_jax import cli
from mat_jax.train import checkpoint, loop, programs, sharding

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(jax.device_count() < 8, reason="needs 8 (simulated) devices, see conftest.py"),
]
TIMEOUT = 420  # seconds per training process (compiles on 2 shared cores)


def _cmd(workdir, *overrides, extra=()):
    flags = [f"--config.{o}" for o in (*MICRO_OVERRIDES, *overrides)]
    return [sys.executable, "-m", "mat_jax.train", "--config", str(TINY), "--workdir", str(workdir), *flags, *extra]


def _state(workdir, step):
    config = micro_config()
    mesh = sharding.make_mesh(1)
    progs = programs.build(loop.recipe_from_config(config, mesh), mesh, int(config.mesh.fsdp_min_size))
    ckpt = checkpoint.Checkpointer(workdir / "checkpoints", max_to_keep=10, async_save=False)
    state, meta = ckpt.restore(step, sharding.with_shardings(progs.abstract_state, progs.state_shardings), None)
    ckpt.close()
    return jax.tree.map(np.asarray, jax.device_get(state)), meta


def _wait_for(pred, proc, timeout, what):
    t0 = time.time()
    while not pred():
        if proc.poll() is not None:
            raise AssertionError(
                f"training process exited ({proc.returncode}) before {what}:\n"
                f"{proc.stdout.read() if proc.stdout else ''}"
            )
        if time.time() - t0 > timeout:
            proc.kill()
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_kill9_after_checkpoint_then_resume_is_bit_identical(tmp_path):
    straight = tmp_path / "straight"
    loop.train(micro_config("train.total_steps=4"), straight)
    wd = tmp_path / "killed"
    proc = subprocess.Popen(
        _cmd(wd, "train.total_steps=40"),
        env=subprocess_env(),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    _wait_for(lambda: (wd / "checkpoints" / "2" / "_CHECKPOINT_METADATA").is_file(), proc, TIMEOUT, "checkpoint 2")
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    res = subprocess.run(
        _cmd(wd, "train.total_steps=4"), env=subprocess_env(), cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "resuming from checkpoint step" in res.stderr
    a, _ = _state(straight, 4)
    b, meta = _state(wd, 4)
    assert meta["data_batches"] == 4
    for key in ("g", "d", "ema", "g_opt", "d_opt", "rng", "skipped", "step"):
        assert tree_equal(a[key], b[key]), key


def test_sigterm_saves_exits_zero_and_resumes(tmp_path):
    wd = tmp_path / "term"
    proc = subprocess.Popen(
        _cmd(wd, "train.total_steps=500", "checkpoint.every_steps=1000"),
        env=subprocess_env(),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    metrics = wd / "metrics.jsonl"
    _wait_for(lambda: metrics.is_file() and len(metrics.read_text().splitlines()) >= 2, proc, TIMEOUT, "2 steps")
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, out[-3000:]
    steps_done = len(metrics.read_text().splitlines())
    assert f"saving at step {steps_done} and exiting" in out and "preempted at step" in out
    ckpt = checkpoint.Checkpointer(wd / "checkpoints", async_save=False)
    assert ckpt.latest_step() == steps_done
    ckpt.close()
    res = loop.train(micro_config(f"train.total_steps={steps_done + 1}"), wd)
    assert res == {"status": "completed", "step": steps_done + 1, "workdir": str(wd)}
    assert f"resuming from checkpoint step {steps_done}" in (wd / "train.log").read_text()


def _start_processes(wd, n, *overrides, logs, extra=()):
    """n local processes of one run (jax.distributed on 127.0.0.1, 2 simulated CPU devices each) -> (processes,
    their output files under `logs`)."""
    port = free_port()
    env = subprocess_env()
    env.pop("XLA_FLAGS")  # each process simulates 2 CPU devices via --num_cpu_devices
    logs.mkdir(parents=True, exist_ok=True)
    outs = [logs / f"process_{i}.log" for i in range(n)]
    procs = []
    for i in range(n):
        flags = (f"--coordinator_address=127.0.0.1:{port}", f"--num_processes={n}", f"--process_id={i}")
        with open(outs[i], "w") as out:
            procs.append(
                subprocess.Popen(
                    _cmd(wd, *overrides, extra=(*flags, "--num_cpu_devices=2", *extra)),
                    env=env,
                    cwd=REPO,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
    return procs, outs


def _wait_all(procs, outs, timeout) -> list[str]:
    """Wait for every process (all killed if one overruns `timeout`) -> their outputs."""
    try:
        for p in procs:
            p.wait(timeout)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(30)
    return [o.read_text() for o in outs]


def test_two_processes_train_and_save_then_one_process_resumes(tmp_path):
    wd = tmp_path / "mp"
    procs, outs = _start_processes(wd, 2, "train.total_steps=2", logs=tmp_path / "logs")
    outs = _wait_all(procs, outs, TIMEOUT)
    assert [p.returncode for p in procs] == [0, 0], "\n----\n".join(o[-3000:] for o in outs)
    assert "over 4 devices (2 processes)" in outs[0]
    assert {"process_0-of-2.json", "process_1-of-2.json"} <= set(os.listdir(wd / "checkpoints" / "2" / "data_iter"))
    res = loop.train(micro_config("train.total_steps=3"), wd)  # this process: 1 process, 8 devices
    assert res["step"] == 3
    text = (wd / "train.log").read_text()
    assert "resuming from checkpoint step 2 (0.016 kimg, saved by 2 process(es) on 4 device(s))" in text
    assert "positioned at batch 2 from the metadata" in text


def test_one_of_two_processes_killed_survivor_exits_naming_the_last_checkpoint_and_both_resume_from_it(tmp_path):
    wd, hb = tmp_path / "mp_kill", 20
    procs, outs = _start_processes(
        wd, 2, "train.total_steps=1000", logs=tmp_path / "first", extra=(f"--heartbeat_timeout_s={hb}",)
    )
    try:
        _wait_for(lambda: (wd / "checkpoints" / "2" / "_CHECKPOINT_METADATA").is_file(), procs[0], TIMEOUT, "ckpt 2")
        procs[1].send_signal(signal.SIGKILL)
        procs[0].wait(hb + 60)  # bounded: the heartbeat timeout, then the watchdog's next poll
    finally:
        survivor = _wait_all(procs, outs, 30)[0]  # kills anything still running
    assert procs[1].returncode == -signal.SIGKILL
    assert procs[0].returncode == cli.EXIT_PEER_LOST, survivor[-3000:]
    steps = checkpoint.complete_steps(wd / "checkpoints")
    last = steps[-1]
    said = (
        f"a peer process was lost: process 1 of 2 (no heartbeat for --heartbeat_timeout_s={hb} s, or it exited); "
        f"process 0 stops too. The last complete checkpoint is step {last} in {wd / 'checkpoints'}. Relaunch all 2 "
        "processes with the same command to resume from it"
    )
    assert said in survivor and said in (wd / "train.log").read_text()
    assert "Traceback" not in survivor  # the failed collective on the main thread is not reported as this one's fault
    state, meta = _state(wd, last)  # the newest complete checkpoint is whole: it restores
    assert int(state["step"]) == meta["step"] == meta["data_batches"] == last

    procs, outs = _start_processes(wd, 2, f"train.total_steps={last + 2}", logs=tmp_path / "second")
    outs = _wait_all(procs, outs, TIMEOUT)
    assert [p.returncode for p in procs] == [0, 0], "\n----\n".join(o[-3000:] for o in outs)
    text = (wd / "train.log").read_text()
    assert f"resuming from checkpoint step {last} ({last * 8 / 1000:.3f} kimg, saved by 2 process(es)" in text
    assert "from the metadata" not in text  # each process's own data-iterator state was in the checkpoint
    rows = [json.loads(line)["step"] for line in (wd / "metrics.jsonl").read_text().splitlines()]
    assert rows[-2:] == [last + 1, last + 2]
    assert checkpoint.complete_steps(wd / "checkpoints")[-1] == last + 2
