"""Multi-process plumbing: the peer watchdog's verdicts (scripted polls), the message a survivor prints, complete
checkpoints only, programs compiled ahead of time; then two real processes (jax.distributed on 127.0.0.1, a
collective per step, no model) ending in order, and one of them killed. With the training loop, two processes and a
SIGKILL: tests/test_train_subprocess.py (slow)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from train_helpers import REPO, free_port, subprocess_env

from mat_jax.train import hosts
from mat_jax.train.checkpoint import Checkpointer, complete_steps


class _Polls:
    """Scripted answers of the liveness poll: each item a set of live processes, or an exception to raise; the
    last one repeats."""

    def __init__(self, *answers):
        self.answers, self.calls = list(answers), 0

    def __call__(self):
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        if isinstance(answer, Exception):
            raise answer
        return answer


def _watch(polls, n=2):
    reports, done = [], threading.Event()

    def on_lost(lost, error):
        reports.append((lost, error))
        done.set()

    dog = hosts.PeerWatchdog(on_lost, num_processes=n, poll=polls, every_s=0.01).start()
    return dog, reports, done


def test_watchdog_reports_the_lost_process_once():
    polls = _Polls({0, 1, 2}, {0, 1, 2}, {0, 2})
    dog, reports, done = _watch(polls, n=3)
    assert done.wait(10)
    dog._thread.join(10)
    assert reports == [([1], None)]
    assert not dog.confirm_peers(0.1)  # a failed step with a lost peer is not blamed on this process


def test_watchdog_reports_an_unreachable_service():
    err = RuntimeError("UNAVAILABLE: Socket closed")
    dog, reports, done = _watch(_Polls({0, 1}, err))
    assert done.wait(10)
    assert reports == [([], err)]


def test_confirm_peers_waits_for_a_fresh_poll_and_stop_silences_the_watchdog():
    polls = _Polls({0, 1})
    dog, reports, _ = _watch(polls)
    before = polls.calls
    assert dog.confirm_peers(10)
    assert polls.calls >= before + 2  # at least one whole poll after the call
    dog.stop()
    dog._thread.join(10)
    polls.answers = [{0}]  # a process that left after the end of the run is not reported
    assert reports == []


def test_confirm_peers_gives_up_after_its_timeout():
    gate = threading.Event()
    dog = hosts.PeerWatchdog(lambda *a: None, num_processes=2, poll=lambda: gate.wait() and {0, 1}, every_s=0.01)
    dog.start()
    assert not dog.confirm_peers(0.2)  # the poll hangs (a peer not yet declared dead): bounded all the same
    dog.stop()
    gate.set()


def _save(directory, step):
    ckpt = Checkpointer(directory, async_save=False)
    ckpt.save(step, {"x": jnp.full((2,), step, jnp.float32)}, None, {"step": step})
    ckpt.close()


def test_message_names_the_last_complete_checkpoint_and_skips_interrupted_saves(tmp_path):
    d = tmp_path / "checkpoints"
    kw = dict(process_index=0, process_count=2, heartbeat_timeout_s=20)
    empty = hosts.peer_lost_message([1], None, d, **kw)
    assert "There is no complete checkpoint in" in empty and "starts at step 0" in empty
    _save(d, 2)
    _save(d, 4)
    (d / "6.orbax-checkpoint-tmp" / "state").mkdir(parents=True)  # a save interrupted by the loss
    assert complete_steps(d) == [2, 4]
    msg = hosts.peer_lost_message([1], None, d, **kw)
    assert msg.startswith("a peer process was lost: process 1 of 2 (no heartbeat for --heartbeat_timeout_s=20 s")
    assert f"The last complete checkpoint is step 4 in {d}" in msg
    assert "Relaunch all 2 processes with the same command to resume from it" in msg
    unreachable = hosts.peer_lost_message([], RuntimeError("Socket closed"), d, **{**kw, "process_index": 1})
    assert "the coordination service on process 0 cannot be reached (RuntimeError: Socket closed)" in unreachable
    assert "process 1 stops too" in unreachable


def test_compiled_together_programs_compute_the_same_and_refuse_other_shapes():
    f = jax.jit(lambda x, y: (x * y).sum())
    x = jnp.arange(6.0).reshape(2, 3)
    compiled = hosts.compile_together({"f": (f, (x, x))}, key="test")
    assert float(compiled["f"](x, x)) == float(f(x, x)) == float(np.sum(np.arange(6.0) ** 2))
    with pytest.raises(TypeError):
        compiled["f"](x[:1], x[:1])


_PEER = r"""
import sys, time
import jax, numpy as np
from jax.experimental import multihost_utils
from mat_jax.train import hosts

pid, port, steps = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
jax.config.update("jax_num_cpu_devices", 1)
hosts.initialize(f"127.0.0.1:{port}", 2, pid, heartbeat_timeout_s=5, initialization_timeout_s=60, shutdown_timeout_s=60)

def on_lost(lost, error):
    print(f"LOST {lost} {error}", flush=True)
    hosts.exit_now(4)

with hosts.watched(on_lost, heartbeat_timeout_s=5):  # as `mat-jax train` runs the loop
    for i in range(steps):  # a collective per step, as in training
        total = int(np.sum(multihost_utils.process_allgather(np.int32(pid + 1))))
        print(f"step {i} {total}", flush=True)
        time.sleep(0.1)
hosts.finish(60)
print("finished", flush=True)
"""


def _peers(steps):
    env = subprocess_env()
    env.pop("XLA_FLAGS")
    port = str(free_port())
    return [
        subprocess.Popen(
            [sys.executable, "-c", _PEER, str(i), port, str(steps)],  # -c, cwd REPO: imports this checkout
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]


def _outputs(procs, timeout=120):
    try:
        return [p.communicate(timeout=timeout)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


def test_two_processes_end_in_order_and_a_killed_one_is_reported():
    """Real jax.distributed on 127.0.0.1 (no model): both processes finish with status 0 through `finish` (with
    recoverability on, process 0 must not stop the service before the other has left); then, with process 1 killed
    mid-run, process 0's watchdog reports it (the heartbeat timeout is 5 s) and the process exits 4."""
    procs = _peers(5)
    outs = _outputs(procs)
    assert [p.returncode for p in procs] == [0, 0], outs
    assert all("step 4 3" in o and o.rstrip().endswith("finished") for o in outs), outs

    procs = _peers(10**6)
    deadline = time.time() + 120
    while "step 3 " not in (line := procs[1].stdout.readline()) and time.time() < deadline:
        assert line, "process 1 ended before step 3"
    procs[1].send_signal(signal.SIGKILL)
    outs = _outputs(procs, timeout=60)
    assert procs[0].returncode == 4, outs[0][-2000:]
    assert "LOST [1] None" in outs[0]
