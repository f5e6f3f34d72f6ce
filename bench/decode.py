"""Schema throughput for `orcon bench`: decode + semantic validation of a typical report."""

from __future__ import annotations

import time

from schemas.codec import decode_body, encode
from schemas.examples import mekong_route_report


def measure(seconds: float = 1.0) -> dict[str, float]:
    """Decode + validate the ~2 KB Mekong route report repeatedly on one core.

    Returns `decode_validate_per_s`, `decode_only_per_s` and `body_bytes`. Batches of
    1,000 keep the clock out of the inner loop.
    """
    from schemas.codec import _body_decoder  # the structural half alone, for comparison

    data = encode(mekong_route_report())

    def rate(fn: object) -> float:
        call = fn  # mypy: keep the callable's type simple
        assert callable(call)
        n = 0
        start = time.perf_counter()
        deadline = start + seconds / 2
        while True:
            for _ in range(1000):
                call(data)
            n += 1000
            now = time.perf_counter()
            if now >= deadline:
                return n / (now - start)

    return {
        "decode_validate_per_s": rate(decode_body),
        "decode_only_per_s": rate(_body_decoder.decode),
        "body_bytes": float(len(data)),
    }


if __name__ == "__main__":
    for key, value in measure().items():
        print(f"{key}: {value:,.0f}")
