"""Fuzz campaigns: N adversarial examples, every registered cross-check on each, any backend.

Example i of a campaign with seed S is a pure function of (S, i, profile): its family is
``FAMILY_ORDER[i mod len]`` and its instance is drawn by ``draw_seeded`` from the seed
``derive(S, "example", i)``; every check draws its own randomness from that seed too. So
the examples, verdicts and disagreements are the same whether the campaign runs in this
process, in a local process pool (``workers``) or on Ray, and a disagreement can be
replayed from its fixture alone. The one exception is wall-clock time: a decision that
reaches its time limit says "unknown", and a check past its budget is reported, so on a
heavily loaded machine such borderline examples can come out differently.

Work is cut into chunks of consecutive indices; results are put back in index order.
Torch runs one intra-op thread per process: the tensors are tiny, and extra threads only
cost synchronisation (measured: a 5×5 softmax takes microseconds on one thread and
milliseconds on two busy ones).
"""

from __future__ import annotations

import sys
import time
import traceback
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Iterator, Optional, Sequence

import torch

from promptlimits.constructions.adversarial import FAMILIES, SIZES, Instance
from promptlimits.constructions.seeded import derive, draw_seeded
from promptlimits.numerics.fuzz_case import CHECK_SECONDS, time_limit
from promptlimits.numerics.fuzz_checks import CHECKS, AlreadyReported, Case, Disagreement
from promptlimits.numerics.fuzz_fixtures import make_fixture

#: The order in which example indices cycle through the families.
FAMILY_ORDER: tuple[str, ...] = tuple(FAMILIES)
BACKENDS = ("local", "ray")
CHUNK = 4
def example_seed(seed: int, index: int) -> int:
    """The seed of example ``index`` of the campaign with seed ``seed``."""
    return derive(seed, "example", index)


def make_instance(seed: int, index: int, profile: str) -> Instance:
    """Example ``index`` of the campaign ``seed`` in ``profile`` (deterministic)."""
    family = FAMILY_ORDER[index % len(FAMILY_ORDER)]
    return draw_seeded(FAMILIES[family](SIZES[profile]), example_seed(seed, index))


def run_example(seed: int, index: int, profile: str, checks: Sequence[str]) -> dict:
    """Draw example ``index`` and run ``checks`` on it; a check that raises is a disagreement too.

    Returns a JSON-able record: index, family, verdicts, per-check seconds, disagreements and
    (only when something disagreed) the fixtures that reproduce them.
    """
    inst = make_instance(seed, index, profile)
    case = Case(inst, example_seed(seed, index), profile)
    found: list[Disagreement] = []
    seconds: dict[str, float] = {}
    for name in checks:
        start = time.perf_counter()
        try:
            with time_limit(CHECK_SECONDS[profile]):
                result = CHECKS[name](case)
        except AlreadyReported:
            result = None
        except Exception as err:  # a crash on a valid instance is a bug in the layer that crashed
            result = Disagreement(name, f"raised {type(err).__name__}: {err}",
                                  {"traceback": traceback.format_exc(limit=8)})
        seconds[name] = time.perf_counter() - start
        if result is not None:
            found.append(result)
    origin = {"campaign_seed": seed, "index": index, "profile": profile}
    return {
        "index": index,
        "family": inst.family,
        "verdicts": dict(sorted(case.verdicts.items())),
        "seconds": seconds,
        "disagreements": [d.to_json() for d in found],
        "fixtures": [make_fixture(inst, case.seed, d, origin) for d in found],
    }


def run_chunk(seed: int, indices: Sequence[int], profile: str, checks: Sequence[str]) -> list[dict]:
    """``run_example`` over consecutive indices, with torch on one thread (a worker's task)."""
    with _one_torch_thread():
        return [run_example(seed, i, profile, checks) for i in indices]


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class CampaignResult:
    """Every example's record (in index order) and the campaign's wall time."""

    records: tuple[dict, ...]
    seconds: float

    @property
    def disagreements(self) -> list[dict]:
        return [dict(d, index=r["index"], family=r["family"]) for r in self.records for d in r["disagreements"]]

    @property
    def fixtures(self) -> list[dict]:
        return [f for r in self.records for f in r["fixtures"]]

    def verdict_histogram(self) -> dict[str, int]:
        """How often each "claim: verdict" was seen (one count per example and claim)."""
        counts = Counter(f"{claim}: {verdict}" for r in self.records for claim, verdict in r["verdicts"].items())
        return dict(sorted(counts.items()))

    def family_histogram(self) -> dict[str, int]:
        return dict(sorted(Counter(r["family"] for r in self.records).items()))

    def check_seconds(self) -> dict[str, float]:
        total: Counter = Counter()
        for r in self.records:
            total.update(r["seconds"])
        return {k: round(v, 6) for k, v in total.items()}

    def summary(self) -> dict:
        """The DESIGN.md keys ("examples", "disagreements", "verdicts", "examples_per_second") and detail."""
        n = len(self.records)
        return {
            "examples": n,
            "disagreements": len(self.disagreements),
            "verdicts": self.verdict_histogram(),
            "examples_per_second": round(n / self.seconds, 3) if self.seconds > 0 else None,
            "families": self.family_histogram(),
            "check_seconds": self.check_seconds(),
            "found": [{k: d[k] for k in ("index", "family", "check", "what")} for d in self.disagreements],
        }


def _chunks(examples: int) -> list[list[int]]:
    return [list(range(i, min(i + CHUNK, examples))) for i in range(0, examples, CHUNK)]


def run_campaign(
    examples: int,
    seed: int,
    profile: str = "ci",
    workers: int = 1,
    backend: str = "local",
    address: Optional[str] = None,
    checks: Optional[Sequence[str]] = None,
    progress: bool = False,
) -> CampaignResult:
    """Run a campaign; the records depend on (examples, seed, profile, checks) only.

    ``workers`` = 1 with the local backend runs in this process (monkeypatches apply);
    more uses a spawned process pool. ``backend="ray"`` starts a local Ray with ``workers``
    CPUs, or joins the cluster at ``address``.
    """
    if profile not in SIZES:
        raise ValueError(f"unknown profile {profile!r}")
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}")
    names = tuple(CHECKS) if checks is None else tuple(checks)
    unknown = [c for c in names if c not in CHECKS]
    if unknown:
        raise ValueError(f"unknown checks: {', '.join(unknown)}")
    chunks = _chunks(examples)
    bar = _progress(examples, progress)
    start = time.perf_counter()
    if backend == "ray":
        parts = _run_ray(seed, chunks, profile, names, workers, address, bar)
    elif workers > 1:
        parts = _run_pool(seed, chunks, profile, names, workers, bar)
    else:
        parts = []
        for chunk in chunks:
            parts.append(run_chunk(seed, chunk, profile, names))
            bar.update(len(chunk))
    seconds = time.perf_counter() - start
    bar.close()
    records = sorted((r for part in parts for r in part), key=lambda r: r["index"])
    return CampaignResult(tuple(records), seconds)


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc="fuzz", unit="ex", file=sys.stderr, disable=not (enabled and sys.stderr.isatty()))


def _run_pool(seed, chunks, profile, names, workers, bar) -> list[list[dict]]:
    parts = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(run_chunk, seed, chunk, profile, names) for chunk in chunks]
        for fut in as_completed(futures):
            part = fut.result()
            parts.append(part)
            bar.update(len(part))
    return parts


def _run_ray(seed, chunks, profile, names, workers, address, bar) -> list[list[dict]]:
    import ray

    started = not ray.is_initialized()
    if started:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        task = ray.remote(num_cpus=1)(run_chunk)
        pending = [task.remote(seed, chunk, profile, names) for chunk in chunks]
        parts = []
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            part = ray.get(done[0])
            parts.append(part)
            bar.update(len(part))
        return parts
    finally:
        if started:
            ray.shutdown()
