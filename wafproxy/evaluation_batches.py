"""Web ACL evaluations of the requests that reach the engine in one event-loop iteration, run
together at the end of it (wafproxy/acl/together.py says why).

A request waits at most for the evaluations queued before it in the same iteration; with one
request per iteration (light load) nothing changes but one hop through the loop.
"""

from __future__ import annotations

import asyncio

from wafproxy.acl.together import Job, Result, evaluate_together

MAX_BATCH = 64
"""Evaluations per run: more wait for the next iteration, so a run stays a few milliseconds
at most. The queue itself is bounded by the requests in flight (one per connection)."""


class EvaluationBatches:
    def __init__(self) -> None:
        self._jobs: list[Job] = []
        self._waiting: list[asyncio.Future[Result]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.runs = 0
        """Batches run so far."""

    def evaluate(self, job: Job) -> asyncio.Future[Result]:
        """The job's verdict and seconds, once this iteration's batch has run."""
        # the loop is kept: in Python 3.11 each get_running_loop() is a getpid() system call.
        # A loop that is no longer running is gone (tests start new ones), and so is its queue.
        loop = self._loop
        if loop is None or not loop.is_running():
            loop = self._loop = asyncio.get_running_loop()
            self._jobs.clear()
            self._waiting.clear()
        future: asyncio.Future[Result] = loop.create_future()
        self._jobs.append(job)
        self._waiting.append(future)
        if len(self._jobs) == 1:
            loop.call_soon(self._run)
        return future

    def _run(self) -> None:
        jobs, waiting = self._jobs[:MAX_BATCH], self._waiting[:MAX_BATCH]
        del self._jobs[:MAX_BATCH], self._waiting[:MAX_BATCH]
        if self._jobs and self._loop is not None:
            self._loop.call_soon(self._run)
        self.runs += 1
        live = [i for i, future in enumerate(waiting) if not future.done()]  # not cancelled
        try:
            results = evaluate_together([jobs[i] for i in live])
        except BaseException as exc:  # never leave a request waiting for ever
            for future in waiting:
                if not future.done():
                    future.set_exception(exc)
            raise
        for i, result in zip(live, results, strict=True):
            waiting[i].set_result(result)
