"""The loop's non-blocking pieces on their own: the prefetching iterator's checkpoint state never skips a prefetched
batch (also through an asynchronous orbax save); preemption is agreed every N steps only in multi-process runs."""

from __future__ import annotations

import grain
import jax
import jax.numpy as jnp

from mat_jax.train import loop
from mat_jax.train.checkpoint import Checkpointer


class _Counter:
    """A resumable iterator like grain's: state {"next_index": i}."""

    def __init__(self):
        self.i = 0

    def __next__(self):
        self.i += 1
        return self.i - 1

    def get_state(self):
        return {"next_index": self.i}

    def set_state(self, s):
        self.i = s["next_index"]


def test_prefetch_state_is_before_the_prefetched_batch():
    sent = []
    it = loop._Prefetch(_Counter(), lambda b: sent.append(b) or b * 10)
    assert next(it) == 0 and it.get_state() == {"next_index": 1}
    it.prefetch()  # batch 1 is loaded and sent to the devices, not yet handed out
    assert sent == [0, 1] and it.get_state() == {"next_index": 1}  # a checkpoint now resumes at batch 1
    it.prefetch()  # idempotent
    assert sent == [0, 1] and next(it) == 10 and it.get_state() == {"next_index": 2}
    it.prefetch()
    it.set_state({"next_index": 0})  # restore drops the prefetched batch
    assert next(it) == 0 and sent == [0, 1, 2, 0]


def test_stop_flag_single_process_checks_every_step():
    flag = loop._StopFlag()
    assert not flag.any_process(3, 10)
    flag.signum = 15
    assert flag.any_process(3, 10) and flag.any_process(10, 10)  # one process: every step (no collective)


def test_async_checkpoint_of_the_prefetching_iterator_holds_the_stream_at_the_save(tmp_path):
    """The loop saves its prefetching wrapper (not a grain iterator) while a batch is prefetched, then keeps
    drawing batches while the save is written in the background: the checkpoint still resumes at the first batch
    not handed out when save() was called."""
    it = loop._Prefetch(iter(grain.MapDataset.range(100).to_iter_dataset()), lambda b: b)
    assert [next(it) for _ in range(3)] == [0, 1, 2]
    it.prefetch()  # batch 3 loaded, not handed out
    ckpt = Checkpointer(tmp_path / "ckpt", async_save=True)
    ckpt.save(3, {"x": jnp.zeros(2)}, it, {"step": 3})
    assert [next(it) for _ in range(5)] == [3, 4, 5, 6, 7]  # the loop moves on during the write
    ckpt.wait()
    fresh = iter(grain.MapDataset.range(100).to_iter_dataset())
    ckpt.restore(3, {"x": jax.ShapeDtypeStruct((2,), jnp.float32)}, fresh)
    ckpt.close()
    assert next(fresh) == 3
