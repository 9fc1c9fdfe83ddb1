"""On-demand work for the explorer: a one-worker job queue and the models its jobs run on.

Why one worker: a render or a dream takes the machine's CPUs (or its GPU) for seconds to a minute;
run side by side they would only slow each other down, so jobs wait their turn, at most
:data:`MAX_PENDING` at once, and only the latest :data:`KEEP_FINISHED` finished ones are
remembered (bounded memory however long the server runs). Nothing here needs FastAPI.

Why jobs can be cancelled: a server stopped while the worker thread is inside torch would abort
the process at exit (the interpreter tears down under the thread: "terminate called without an
active exception"). So :meth:`JobQueue.close` cancels what waits, stops the running job at its
next step (a job reports each step through :meth:`Job.step`, which raises :class:`Cancelled`
once the queue closes) and joins the worker.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from ...core.errors import FeaturevisError
from ...core.model import FeatureModel
from ..build import load_model_spec

#: Jobs waiting or running at once; more are refused ("busy").
MAX_PENDING = 8
#: Finished jobs remembered (their result files stay in the catalog's _jobs folder).
KEEP_FINISHED = 200
#: Seconds :meth:`JobQueue.close` waits for the running job to reach its next step.
CLOSE_TIMEOUT = 60.0


class Cancelled(Exception):
    """Raised inside a job, at its next step, once the queue is closing."""


@dataclass
class Job:
    """One render or dream: its progress (``done`` of ``total`` steps) and, once done, its file."""

    id: str
    kind: str
    title: str
    status: str = "queued"  # queued, running, done, error
    done: int = 0
    total: int = 1
    message: str = ""
    result: str | None = None  # file path relative to the catalog folder
    page: str | None = None  # a page that shows the result (an explanation), once done
    created: float = field(default_factory=time.time)
    seconds: float = 0.0
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    def step(self, done: int, total: int | None = None) -> None:
        """Report progress (``done`` of ``total`` steps); the work calls it at every step, which
        is where a cancelled job stops (:class:`Cancelled`)."""
        self.done = done
        if total is not None:
            self.total = total
        if self.cancel.is_set():
            raise Cancelled

    def public(self, position: int) -> dict:
        """What the job page polls (``/api/jobs/ID``); ``position``: jobs ahead of this one."""
        return dict(
            id=self.id,
            kind=self.kind,
            title=self.title,
            status=self.status,
            done=self.done,
            total=self.total,
            message=self.message,
            result=f"/files/{self.result}" if self.result else None,
            page=self.page,
            queue_position=position,
            seconds=round(self.seconds, 1),
        )


class JobQueue:
    """One worker thread runs jobs in order; the rest wait (bounded)."""

    def __init__(self, max_pending: int = MAX_PENDING):
        self.jobs: dict[str, Job] = {}
        self.pending: queue.Queue[tuple[Job, Callable[[Job], None]] | None] = queue.Queue()
        self.max_pending = max_pending
        self.lock = threading.Lock()
        self.order: list[str] = []
        self.closed = False
        self.thread = threading.Thread(target=self._work, daemon=True, name="featurevis-jobs")
        self.thread.start()

    def submit(self, kind: str, title: str, fn: Callable[[Job], None]) -> Job:
        """Queue ``fn(job)``; ``OverflowError`` when :attr:`max_pending` jobs already wait or the
        queue is closed."""
        with self.lock:
            if self.closed:
                raise OverflowError("the server is shutting down")
            waiting = sum(1 for j in self.jobs.values() if j.status in ("queued", "running"))
            if waiting >= self.max_pending:
                raise OverflowError(f"{waiting} jobs are already waiting; try again in a minute")
            job = Job(uuid.uuid4().hex[:12], kind, title)
            self.jobs[job.id] = job
            self.order.append(job.id)
            finished = [i for i in self.order if self.jobs[i].status in ("done", "error")]
            for old in finished[: max(0, len(finished) - KEEP_FINISHED)]:  # bounded memory
                self.order.remove(old)
                del self.jobs[old]
        self.pending.put((job, fn))
        return job

    def position(self, job: Job) -> int:
        """How many jobs run or wait before this one."""
        with self.lock:
            ahead = [self.jobs[i] for i in self.order[: self.order.index(job.id)]]
        return sum(1 for j in ahead if j.status in ("queued", "running"))

    def close(self, timeout: float = CLOSE_TIMEOUT) -> bool:
        """Cancel every job that waits or runs and stop the worker; returns whether it stopped
        within ``timeout`` seconds (the running job stops at its next step)."""
        with self.lock:
            self.closed = True
            for job in self.jobs.values():
                job.cancel.set()
        self.pending.put(None)
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def _work(self) -> None:
        while (item := self.pending.get()) is not None:
            job, fn = item
            if job.cancel.is_set():
                job.status, job.message = "error", "cancelled: the server stopped"
                continue
            job.status = "running"
            start = time.perf_counter()
            try:
                fn(job)
                job.seconds = time.perf_counter() - start
                job.status = "done"
            except Cancelled:
                job.status, job.message = "error", "cancelled: the server stopped"
            except FeaturevisError as e:
                job.status, job.message = "error", str(e)
            except Exception as e:  # a job must never kill the worker thread
                job.status, job.message = "error", f"{type(e).__name__}: {e}"


class ModelCache:
    """Models by spec, each loaded once: the worker's copy, which jobs run on, and a separate probe
    copy on which request threads check a layer's shape. Probing hooks into a model's forward pass,
    so it must never touch the model a running job is optimizing through."""

    def __init__(self) -> None:
        self._models: dict[str, FeatureModel] = {}
        self._lock = threading.Lock()
        self._probe_lock = threading.Lock()

    def get(self, spec: str, probe: bool = False) -> FeatureModel:
        """The model for ``spec`` (a catalog run's model spec), loaded on first use."""
        key = f"{spec}#probe" if probe else spec
        with self._lock:
            if key not in self._models:
                self._models[key] = load_model_spec(spec)
            return self._models[key]

    def layer_shape(self, spec: str, layer: str, size: int) -> tuple[int, ...]:
        """``layer``'s output shape at ``size`` px, measured on the probe copy (one probe at a time)."""
        model = self.get(spec, probe=True)
        with self._probe_lock:
            return model.layer_shape(layer, size)
