"""Multi-process runs: start-up with bounded timeouts, every step program compiled on all processes before any runs
one, a watchdog that stops a process whose peer was lost, and an orderly end.

What happens without this (jax 0.10, measured with two local CPU processes, one killed with SIGKILL mid-run): the
survivor blocks in the step's collective (or fails out of it, "Gloo ... Connection closed by peer", and then blocks in
jax.distributed.shutdown) until the coordination service misses the dead process's heartbeats (`heartbeat_timeout_s`),
then jax aborts it from C++ ("Terminating process because the JAX distributed service detected fatal errors...",
SIGABRT, exit status 134): bounded, but nothing reaches train.log and nothing says which checkpoint to resume from.
Here the service runs with jax's recoverability on (`jax_enable_recoverability`: a lost process is reported, not
fatal to the others) and `PeerWatchdog` turns the report into a clear message and an exit. The price of
recoverability is that jax's shutdown barrier no longer holds the processes together, so `finish` does it: a
barrier, then every other process disconnects before process 0 stops the service.

If process 0 itself is lost, the service is gone with it and jax aborts the others at once from C++ (the message
above, exit status 134); the message of this module then cannot be printed, and relaunching resumes all the same.

Compiling together: on CPU the cross-process collectives (gloo) give up after 30 s when a peer has not reached them,
and the processes compile at very different speeds. The persistent compilation cache is written by process 0 only
and, on CPU, its keys differ per process (each names its own devices), so process 0 loads the steps from the cache in
seconds while the others compile for minutes; the first step's collective then fails on process 0 ("Gloo context
initialization failed: ... GetKeyValue() timed out"). Compiling ahead of time and meeting at a barrier of the
coordination service (which waits as long as it is told) starts every process's first step together.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time

import jax

log = logging.getLogger("mat_jax.train")

COMPILE_BARRIER_TIMEOUT_S = 3600  # Waiting for the slowest process's compile; a dead one is caught by the watchdog.
WATCH_EVERY_S = 1.0  # Liveness poll of the watchdog (an RPC to the coordination service, off the main thread).


def initialize(
    coordinator_address: str | None,
    num_processes: int | None,
    process_id: int | None,
    *,
    heartbeat_timeout_s: int,
    initialization_timeout_s: int,
    shutdown_timeout_s: int,
) -> None:
    """jax.distributed.initialize with the given timeouts and recoverability on (see the module docstring). None
    for the address, count and id: jax's cluster auto-detection (SLURM, Cloud TPU, ...)."""
    jax.config.update("jax_enable_recoverability", True)
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
        initialization_timeout=int(initialization_timeout_s),
        heartbeat_timeout_seconds=int(heartbeat_timeout_s),
        shutdown_timeout_seconds=int(shutdown_timeout_s),
    )


def _client():
    """The coordination-service client of this process (jax has no public accessor; orbax reads it the same way)."""
    from jax._src import distributed

    client = distributed.global_state.client
    if client is None:
        raise RuntimeError("jax.distributed is not initialized (call mat_jax.train.hosts.initialize first)")
    return client


def live_processes() -> set[int]:
    """The processes the coordination service still counts as alive. A barrier: it returns once every live process
    has called it (the watchdogs of all processes call it in step)."""
    return set(_client().get_live_nodes(list(range(jax.process_count()))))


class PeerWatchdog:
    """A daemon thread that polls which processes are alive (`live_processes` by default) and calls
    `on_lost(lost_ids, error)` once when some are missing (error None) or the poll raises (the coordination service
    is unreachable: error = the exception). `on_lost` runs on the watchdog's thread while the main thread may be
    blocked in a collective for good; in `mat-jax train` it exits the process."""

    def __init__(self, on_lost, *, num_processes: int | None = None, poll=None, every_s: float = WATCH_EVERY_S):
        self.on_lost, self.every_s = on_lost, float(every_s)
        self.everyone = set(range(jax.process_count() if num_processes is None else num_processes))
        self.poll = live_processes if poll is None else poll
        self._stop = threading.Event()
        self._polled = threading.Condition()
        self._all_alive_polls = 0  # polls that found every process alive
        self._reported = False
        self._thread = threading.Thread(target=self._run, name="mat_jax-peer-watchdog", daemon=True)

    def start(self) -> PeerWatchdog:
        self._thread.start()
        return self

    def stop(self) -> None:
        """No report after this (a poll in flight is left to return on its own)."""
        self._stop.set()

    def confirm_peers(self, timeout_s: float) -> bool:
        """Wait for a poll that starts after this call: True if it found every process alive; False after
        `timeout_s`, or once a lost process was reported and `on_lost` has run (in `mat-jax train` it has ended the
        process by then, so nothing of the failing main thread gets printed). The main thread calls it when a step
        fails: a collective with a dead peer fails (or hangs) before the service has noticed the death, and the
        poll returns once it has (within the heartbeat timeout)."""
        with self._polled:
            target = self._all_alive_polls + 2  # the poll in flight may have started before the failure
            self._polled.wait_for(lambda: self._reported or self._all_alive_polls >= target, timeout_s)
            reported = self._reported
        if reported:
            self._thread.join(timeout_s)
        return not reported and self._all_alive_polls >= target

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                lost, error = self.everyone - set(self.poll()), None
            except Exception as e:  # noqa: BLE001 - the service is unreachable: reported like a lost peer
                lost, error = set(), e
            if self._stop.is_set():
                return
            with self._polled:
                self._reported = bool(lost) or error is not None
                self._all_alive_polls += not self._reported
                self._polled.notify_all()
            if self._reported:
                self.on_lost(sorted(lost), error)
                return
            self._stop.wait(self.every_s)


@contextlib.contextmanager
def watched(on_lost, *, heartbeat_timeout_s: int):
    """Run the body under a `PeerWatchdog(on_lost)`. If the body raises, the error is let through only once every
    peer is known to be alive: a collective with a lost peer fails (or hangs) before the service notices the loss,
    and then the watchdog reports it (`on_lost`, which exits in `mat-jax train`) instead of this process's error."""
    dog = PeerWatchdog(on_lost).start()
    try:
        yield dog
    except BaseException:
        # The service declares a silent process dead within about the heartbeat timeout (measured: 13-19 s for
        # 20 s, 54-72 s for 100 s); twice that bounds the wait. With every peer alive it takes two polls.
        dog.confirm_peers(2 * heartbeat_timeout_s + 2 * WATCH_EVERY_S)
        raise
    finally:
        dog.stop()


def peer_lost_message(
    lost: list[int], error, checkpoint_dir, *, process_index: int, process_count: int, heartbeat_timeout_s: int
) -> str:
    """What a surviving process says before it exits: who was lost, the last complete checkpoint, what to do."""
    from mat_jax.train.checkpoint import complete_steps

    if error is not None:
        who = f"the coordination service on process 0 cannot be reached ({type(error).__name__}: {error})"
    else:
        who = (
            f"process {', '.join(map(str, lost))} of {process_count} (no heartbeat for "
            f"--heartbeat_timeout_s={heartbeat_timeout_s} s, or it exited)"
        )
    steps = complete_steps(checkpoint_dir)
    if steps:
        ckpt = f"The last complete checkpoint is step {steps[-1]} in {checkpoint_dir}"
    else:
        ckpt = f"There is no complete checkpoint in {checkpoint_dir} yet, so a relaunch starts at step 0"
    return (
        f"a peer process was lost: {who}; process {process_index} stops too. {ckpt}. Relaunch all {process_count} "
        "processes with the same command to resume from it (an interrupted save is never resumed from)."
    )


def exit_now(code: int) -> None:
    """Flush the logs and end this process at once: no jax shutdown (its barrier would wait for the lost peer), no
    interpreter teardown (threads may be blocked in a collective for good)."""
    for h in log.handlers:
        h.flush()
    logging.shutdown()
    os._exit(code)


def finish(timeout_s: int) -> None:
    """The orderly end of a run on every process: a barrier (all done), then every process but 0 disconnects, then
    process 0 stops the coordination service (with recoverability on, jax's own shutdown does not wait)."""
    barrier = _client().wait_at_barrier
    barrier("mat_jax/finished", int(timeout_s * 1000))
    if jax.process_index() != 0:
        jax.distributed.shutdown()
        return
    waiter = threading.Thread(target=_wait_until_alone, daemon=True)
    waiter.start()
    waiter.join(timeout_s)
    if waiter.is_alive():
        log.warning("processes still connected %d s after the end of the run; stopping the service anyway", timeout_s)
    jax.distributed.shutdown()


def _wait_until_alone() -> None:
    while live_processes() != {0}:  # returns when the others have called it (last watchdog polls) or disconnected
        time.sleep(0.1)


def compile_together(programs: dict[str, tuple], *, key: str, timeout_s: int = COMPILE_BARRIER_TIMEOUT_S) -> dict:
    """{name: (jitted function, example args)} -> {name: compiled program}, compiled ahead of time on this process,
    then a barrier over all processes. Calling a compiled program with arguments of other shardings or shapes
    raises instead of recompiling. `key` names the barrier (unique per call in a process)."""
    compiled = {name: fn.lower(*args).compile() for name, (fn, args) in programs.items()}
    if jax.process_count() > 1:
        _client().wait_at_barrier(f"mat_jax/{key}", int(timeout_s * 1000))
    return compiled
