#!/usr/bin/env python3
"""A Taskflow worker in Python, standard library only, written from docs/protocol.md alone.

It registers, heartbeats in a thread, claims with a long poll (the results of the tasks it ran
riding on the next claim), and deregisters on SIGTERM or SIGINT. It comes back when the service
says so: 409 worker_lost (heartbeat, then claim again), 409 worker_stopped or 404 (register
again). While the service is away (a refused or dropped connection, 503, 429) it keeps the
results it could not report, with their attempts, and sends them again after Retry-After or a
backoff. Tasks run one at a time, in claim order.

Configuration, from the environment:
  TASKFLOW_URL          the service, e.g. http://127.0.0.1:7700 (required)
  TASKFLOW_API_KEY      an API key with scope "worker" (required)
  TASKFLOW_QUEUE        the queue to serve, or several, comma-separated (default: default)
  TASKFLOW_MAX          most tasks per claim (default: 10)
  TASKFLOW_WAIT_MS      how long a claim waits for work (default: 20000)
  TASKFLOW_REPORT_MS    on stop, how long to keep trying to report results (default: 10000)

Task types it handles: text.upper ({"text": "..."} -> {"upper": "..."}), sleep ({"ms": n}:
waits, then returns {"slept": n}). Any other type fails without retry.

Each event is one JSON line on stdout (registered, start, done, recovered, stopped); log lines
go to stderr.
"""

import email.utils
import json
import os
import random
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

URL = os.environ["TASKFLOW_URL"].rstrip("/")
KEY = os.environ["TASKFLOW_API_KEY"]
QUEUES = [q for q in os.environ.get("TASKFLOW_QUEUE", "default").split(",") if q]
MAX = int(os.environ.get("TASKFLOW_MAX", "10"))
WAIT_MS = int(os.environ.get("TASKFLOW_WAIT_MS", "20000"))
REPORT_MS = int(os.environ.get("TASKFLOW_REPORT_MS", "10000"))


def event(**fields):
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def log(message, **fields):
    sys.stderr.write(f"python worker: {message} {json.dumps(fields) if fields else ''}\n")
    sys.stderr.flush()


# ----------------------------------------------------------------------------- HTTP


class Problem(Exception):
    """The service answered with an error (RFC 9457 problem JSON, or a bare body)."""

    def __init__(self, status, body, retry_after):
        self.status = status
        self.body = body if isinstance(body, dict) else {}
        self.code = self.body.get("code")
        self.retry_after = retry_after  # seconds, or None
        super().__init__(f"HTTP {status} {self.code or ''}: {self.body.get('detail', body)}")


class Unreachable(Exception):
    """No answer: the connection was refused, dropped or timed out."""


class Stop(Exception):
    """Raised by the signal handler to end a claim that is waiting."""


def retry_after_seconds(value):
    """Retry-After as seconds from now: delay-seconds or an HTTP date; None if absent or malformed."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value)
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def call(method, path, body=None, timeout=30.0):
    """One request; returns the JSON answer, or raises Problem or Unreachable."""
    headers = {"Authorization": f"Bearer {KEY}", "Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(URL + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            text = res.read()
            return json.loads(text) if text else None
    except urllib.error.HTTPError as err:
        text = err.read()
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = text.decode(errors="replace")
        raise Problem(err.code, parsed, retry_after_seconds(err.headers.get("Retry-After"))) from None
    except (urllib.error.URLError, ConnectionError, socket.timeout, OSError) as err:
        raise Unreachable(f"{method} {path}: {err}") from None


def is_unavailable(err):
    """The service is away or busy, not refusing the request: send it again later."""
    return isinstance(err, Unreachable) or (isinstance(err, Problem) and (err.status == 429 or err.status >= 500))


class Backoff:
    """Waits before trying again: Retry-After if the service gave one, else 100 ms doubling to 5 s, with jitter."""

    def __init__(self):
        self.cap = 0.0

    def reset(self):
        self.cap = 0.0

    def seconds(self, err):
        self.cap = min(max(self.cap * 2, 0.1), 5.0)
        asked = err.retry_after if isinstance(err, Problem) else None
        if asked is not None:
            return min(asked, 60.0) + random.uniform(0, 0.1)
        return random.uniform(self.cap / 2, self.cap)


# ----------------------------------------------------------------------------- handlers


def text_upper(payload, task):
    if not isinstance(payload, dict) or not isinstance(payload.get("text"), str):
        raise ValueError("payload.text is missing")
    return {"upper": payload["text"].upper()}


def sleep_for(payload, task):
    ms = payload.get("ms", 0) if isinstance(payload, dict) else 0
    time.sleep(ms / 1000)
    return {"slept": ms}


HANDLERS = {"text.upper": text_upper, "sleep": sleep_for}


# ----------------------------------------------------------------------------- the worker


class Worker:
    def __init__(self):
        self.lock = threading.Lock()
        self.worker_id = None
        self.interval = 5.0
        self.running = {}  # task id -> claimed at (time.monotonic()), for tasks claimed and not yet finished
        self.dropped = set()  # running task ids the service no longer counts as ours
        self.results = []  # finished, not yet accepted by the service, oldest first: each with its attempt
        self.stopping = threading.Event()  # no more claims
        self.stopped = threading.Event()  # no more heartbeats: deregistered, or given up
        self.in_claim = False

    # ---- registration

    def register(self):
        backoff = Backoff()
        while not self.stopping.is_set():
            try:
                reg = call("POST", "/api/v1/workers", {
                    "name": f"py-worker@{socket.gethostname()}:{os.getpid()}",
                    "queues": QUEUES,
                    "concurrency": 1,
                    "metadata": {"lang": "python"},
                })
            except (Problem, Unreachable) as err:
                if not is_unavailable(err):
                    raise
                wait = backoff.seconds(err)
                log("register failed; retrying", error=str(err), retry_in_s=round(wait, 2))
                time.sleep(wait)
                continue
            with self.lock:
                self.worker_id = reg["id"]
                self.interval = reg["heartbeatIntervalMs"] / 1000
                # Results and tasks of an earlier registration would be stale: the service took them back.
                self.results.clear()
                self.dropped.update(self.running)
            event(e="registered", worker=reg["id"])
            return

    # ---- heartbeats

    def heartbeat(self):
        """One heartbeat: renews the leases of the tasks running and of those whose results wait."""
        with self.lock:
            worker_id = self.worker_id
            running = list(self.running) + [r["id"] for r in self.results]
            sent_at = time.monotonic()
        answer = call("POST", f"/api/v1/workers/{worker_id}/heartbeat", {"running": running})
        held = set(answer["held"])
        with self.lock:
            # A task claimed before this heartbeat and not held is no longer ours: its result
            # would be stale. (A task whose result was sent is not in `running`: missing from
            # `held` because the result settled it, not because it was taken over.)
            for task_id, claimed_at in self.running.items():
                if task_id not in held and claimed_at < sent_at:
                    self.dropped.add(task_id)
        if answer["cancel"]:
            log("cancellation requested; this worker cannot stop a task midway", tasks=answer["cancel"])

    def heartbeat_loop(self):
        # Also while stopping: the leases of the tasks whose results wait must last until they are sent.
        while not self.stopped.wait(self.interval):
            try:
                self.heartbeat()
            except Problem as err:
                if err.code == "worker_stopped" or err.status == 404:
                    log("heartbeat: the service no longer knows this worker; the claim loop registers again", code=err.code)
                else:
                    log("heartbeat failed", error=str(err))
            except Unreachable as err:
                log("heartbeat failed", error=str(err))

    # ---- claims and tasks

    def take_results(self):
        with self.lock:
            batch, self.results = self.results[:1000], self.results[1000:]
            return batch

    def give_back(self, batch):
        with self.lock:
            self.results = batch + self.results

    def claim(self, batch):
        with self.lock:
            worker_id = self.worker_id
        body = {"max": MAX, "waitMs": WAIT_MS}
        if batch:
            body["results"] = batch
        self.in_claim = True
        try:
            if self.stopping.is_set():
                raise Stop()
            return call("POST", f"/api/v1/workers/{worker_id}/claim", body, timeout=WAIT_MS / 1000 + 30)
        finally:
            self.in_claim = False

    def run(self, task):
        event(e="start", id=task["id"], attempt=task["attempt"])
        handler = HANDLERS.get(task["type"])
        try:
            if handler is None:
                raise LookupError(f'no handler for task type "{task["type"]}"')
            result = {"id": task["id"], "attempt": task["attempt"], "status": "succeeded",
                      "result": handler(task["payload"], task)}
        except Exception as err:  # the handler's failure is the task's
            result = {"id": task["id"], "attempt": task["attempt"], "status": "failed",
                      "error": {"message": str(err) or type(err).__name__}, "retryable": False}
        with self.lock:
            self.running.pop(task["id"], None)
            if task["id"] in self.dropped:
                self.dropped.discard(task["id"])
                log("task no longer ours; its result is dropped", task=task["id"])
                return
            self.results.append(result)
        event(e="done", id=task["id"], attempt=task["attempt"], status=result["status"])

    def refused_items(self, err, batch):
        """A 400 or 413 naming /body/results/<i>: those results become failures, and the batch goes again."""
        named = set()
        for e in err.body.get("errors", []):
            parts = e.get("field", "").split("/")
            if len(parts) > 3 and parts[1:3] == ["body", "results"] and parts[3].isdigit():
                named.add(int(parts[3]))
        for i in named:
            if i < len(batch):
                r = batch[i]
                batch[i] = {"id": r["id"], "attempt": r["attempt"], "status": "failed", "retryable": False,
                            "error": {"message": f"the service refused this result: {err.body.get('detail')}"}}
        return bool(named)

    def come_back(self, err):
        """After a claim's 409 or 404: heartbeat if lost, register again if stopped or unknown."""
        if err.code == "worker_lost":
            try:
                self.heartbeat()  # active again, holding nothing; the heartbeat drops what we ran
                event(e="recovered", code="worker_lost", worker=self.worker_id)
                return
            except Problem as again:
                if not (again.code == "worker_stopped" or again.status == 404):
                    raise
                err = again  # deregistered meanwhile: only a new registration brings it back
        log("the service no longer knows this worker as active; registering again", code=err.code)
        self.register()
        event(e="recovered", code=err.code or f"http_{err.status}", worker=self.worker_id)

    def claim_loop(self):
        backoff = Backoff()
        while not self.stopping.is_set():
            batch = self.take_results()
            try:
                answer = self.claim(batch)
            except Stop:
                self.give_back(batch)  # they may have been settled already: a repeat is a harmless duplicate
                return
            except Problem as err:
                if err.status == 409 or err.status == 404:
                    # With a 409 the results were settled (normally stale); with a 404 they are stale.
                    try:
                        self.come_back(err)
                    except (Problem, Unreachable) as failed:
                        log("coming back failed; retrying", error=str(failed))
                        time.sleep(backoff.seconds(failed))
                    continue
                if err.status in (400, 413) and self.refused_items(err, batch):
                    self.give_back(batch)
                    continue
                if is_unavailable(err):
                    self.give_back(batch)
                    wait = backoff.seconds(err)
                    log("claim failed; keeping the results, retrying", error=str(err), kept=len(batch), retry_in_s=round(wait, 2))
                    self.stopping.wait(wait)
                    continue
                log("claim refused; dropping its results (the service will re-run those tasks)", error=str(err))
                self.stopping.wait(1)
                continue
            except Unreachable as err:
                self.give_back(batch)
                wait = backoff.seconds(err)
                log("claim failed; keeping the results, retrying", error=str(err), kept=len(batch), retry_in_s=round(wait, 2))
                self.stopping.wait(wait)
                continue
            backoff.reset()
            now = time.monotonic()
            with self.lock:
                for task in answer["tasks"]:
                    self.running[task["id"]] = now
            for task in answer["tasks"]:
                self.run(task)

    # ---- shutdown

    def report_remaining(self):
        """Sends the results left, trying an unreachable service for up to REPORT_MS; returns how many it could not."""
        deadline = time.monotonic() + REPORT_MS / 1000
        backoff = Backoff()
        while self.results and time.monotonic() < deadline:
            batch = self.take_results()
            try:
                call("POST", f"/api/v1/workers/{self.worker_id}/results", {"results": batch})
            except (Problem, Unreachable) as err:
                if isinstance(err, Problem) and err.status in (400, 413) and self.refused_items(err, batch):
                    self.give_back(batch)
                    continue
                if not is_unavailable(err):
                    log("results refused; the service will re-run those tasks", error=str(err), count=len(batch))
                    continue
                self.give_back(batch)
                time.sleep(min(backoff.seconds(err), max(0.0, deadline - time.monotonic())))
        return len(self.results)

    def shutdown(self):
        unreported = self.report_remaining()
        if unreported:
            log(f"{unreported} results not reported: the service will run those tasks again")
        released = None
        # The tasks it ran and could not report: their attempts count. Every other task the
        # service says it holds never reached it (a claim cut short by the stop): refunded.
        started = [{"id": r["id"], "attempt": r["attempt"]} for r in self.results]
        try:
            released = call("DELETE", f"/api/v1/workers/{self.worker_id}", {"started": started})["released"]
        except (Problem, Unreachable) as err:
            log("deregister failed; the service will mark this worker lost after its TTL", error=str(err))
        self.stopped.set()
        event(e="stopped", unreported=unreported, released=released)


def main():
    worker = Worker()

    def on_signal(signum, frame):
        worker.stopping.set()
        if worker.in_claim:
            raise Stop()  # end the long poll now; the service hands back what it claimed meanwhile

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    worker.register()
    threading.Thread(target=worker.heartbeat_loop, daemon=True).start()
    try:
        worker.claim_loop()
    except Stop:
        pass
    worker.stopping.set()
    worker.shutdown()


if __name__ == "__main__":
    main()
