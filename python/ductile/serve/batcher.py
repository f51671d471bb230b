"""Dynamic batching inside the profiles: the requests Triton hands one execute are judged one
by one, then those alike (same dtypes and same dims after the batch dim) are concatenated
along dim 0, up to max_batch, run as one execute and split back.

Triton's dynamic batcher decides which requests arrive together (its max queue delay and
max_batch_size); this decides what runs together, since an engine with dynamic dims gets
requests of different shapes in one batch and one execute takes one shape per input.

A request refused by check() gets its own error and never reaches an execute, so one bad
request does not fail the others of its batch. Should a merged execute fail, its requests are
run one by one, so each gets the error of its own feed.
"""
import numpy as np

from .._lib import Error


class Stats:
    """What the batcher did, for tests and metrics: executes run and requests they served."""

    def __init__(self):
        self.executes = 0
        self.requests = 0
        self.batches = []  # the batch size of each execute, most recent last (bounded)

    def record(self, n_requests, batch):
        self.executes += 1
        self.requests += n_requests
        self.batches.append(batch)
        del self.batches[:-256]


def _key(feeds):
    return tuple((name, a.dtype.str, a.shape[1:]) for name, a in sorted(feeds.items()))


def _chunks(items, max_batch):
    """Lists of (index, feeds, batch) whose batches add up to at most max_batch: each request
    goes to the first list it fits in (first fit, in arrival order), so a large request does
    not cut off the small ones after it from those before it."""
    chunks, totals = [], []
    for item in items:
        for k, total in enumerate(totals):
            if total + item[2] <= max_batch:
                chunks[k].append(item)
                totals[k] += item[2]
                break
        else:
            chunks.append([item])
            totals.append(item[2])
    return chunks


def _run_one(runner, feeds, stats):
    out = runner.run(feeds)
    if stats is not None:
        stats.record(1, _batch_of(feeds))
    return out


def _batch_of(feeds):
    return next(iter(feeds.values())).shape[0] if feeds else 0


def run_requests(requests, runner, max_batch, stats=None):
    """requests: [{input: array}]; runner: check(feeds) raising ductile.Error for a request it
    refuses, run(feeds) -> {output: array}. Returns, per request, its {output: array} or the
    Error to send back. max_batch 0: every request runs alone."""
    results = [None] * len(requests)
    groups = {}
    for i, feeds in enumerate(requests):
        try:
            runner.check(feeds)
        except Error as e:
            results[i] = e
            continue
        b = _batch_of(feeds) if max_batch else 0
        if not max_batch or b >= max_batch:
            groups.setdefault(("alone", i), []).append((i, feeds, b))
        else:
            groups.setdefault(_key(feeds), []).append((i, feeds, b))

    for items in groups.values():
        for chunk in _chunks(items, max_batch or 1):
            if len(chunk) == 1:
                i, feeds, _ = chunk[0]
                try:
                    results[i] = _run_one(runner, feeds, stats)
                except Error as e:
                    results[i] = e
                continue
            merged = {name: np.concatenate([f[name] for _, f, _ in chunk])
                      for name in chunk[0][1]}
            sizes = [b for _, _, b in chunk]
            total = sum(sizes)
            try:
                out = runner.run(merged)
                if any(a.ndim == 0 or a.shape[0] != total for a in out.values()):
                    raise Error("an output's dim 0 did not follow the batch", "DUCTILE_ERR_STATE")
            except Error:
                for i, feeds, _ in chunk:  # each request's own verdict, on its own feed
                    try:
                        results[i] = _run_one(runner, feeds, stats)
                    except Error as e:
                        results[i] = e
                continue
            if stats is not None:
                stats.record(len(chunk), total)
            offsets = np.cumsum(sizes)[:-1]
            parts = {name: np.split(a, offsets) for name, a in out.items()}
            for k, (i, _, _) in enumerate(chunk):
                results[i] = {name: p[k] for name, p in parts.items()}
    return results
