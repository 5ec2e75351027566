"""Multi-process plumbing on its own (one process, no jax.distributed): the peer watchdog's verdicts, the message a
survivor prints, complete checkpoints only, programs compiled ahead of time. The real thing, two processes and a
SIGKILL: tests/test_train_subprocess.py."""

from __future__ import annotations

import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

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
