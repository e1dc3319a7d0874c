"""Tampering with certificates: every determined number of the evidence, changed.

A certificate's evidence states each computed number as an exact string (and labels such
as item indices as ints); ``recheck`` recomputes them, so changing any one of them must make
the certificate fail. Tests and fuzz campaigns use these two functions to check exactly that.
"""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Any, Iterator, Optional

from promptlimits.constructions.numbers import format_exact


def number_paths(obj: Any, ints: bool = True, sample_lists_over: Optional[int] = None,
                 skip: tuple[str, ...] = (), path: tuple = ()) -> Iterator[tuple]:
    """Paths to every exact number string (and int, when ``ints``) in a JSON value.

    Booleans and None are never numbers; keys in ``skip`` (e.g. a free witness) are left
    out; lists longer than ``sample_lists_over`` are sampled at their ends and middle.
    """
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key not in skip:
                yield from number_paths(value, ints, sample_lists_over, skip, path + (key,))
    elif isinstance(obj, list):
        n = len(obj)
        idx = range(n) if sample_lists_over is None or n <= sample_lists_over else sorted({0, 1, n // 2, n - 2, n - 1})
        for i in idx:
            yield from number_paths(obj[i], ints, sample_lists_over, skip, path + (i,))
    elif isinstance(obj, bool) or obj is None:
        return
    elif isinstance(obj, int):
        if ints:
            yield path
    elif isinstance(obj, str):
        try:
            Fraction(obj)
        except (ValueError, ZeroDivisionError):
            return
        yield path


def mutated(cert: dict, path: tuple) -> dict:
    """A deep copy of ``cert`` whose evidence number at ``path`` is increased by 1."""
    out = json.loads(json.dumps(cert))
    holder = out["evidence"]
    for key in path[:-1]:
        holder = holder[key]
    old = holder[path[-1]]
    holder[path[-1]] = old + 1 if isinstance(old, int) else format_exact(Fraction(old) + 1)
    return out
