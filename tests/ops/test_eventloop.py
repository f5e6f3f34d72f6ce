"""The long-running services' process settings (broker/hosting/eventloop.py). Each case
runs in a child interpreter: freezing the collector would change the test process."""

from __future__ import annotations

import subprocess
import sys


def _child(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60).stdout.strip()


def test_a_settled_service_keeps_what_it_loaded_out_of_full_collections() -> None:
    out = _child(
        "import gc\n"
        "from broker.hosting.eventloop import settle_heap\n"
        "kept = [[i] for i in range(50_000)]  # what a service loads at start\n"
        "before = gc.get_freeze_count()\n"
        "settle_heap()\n"
        "print(before, gc.get_freeze_count() >= 50_000, gc.get_threshold()[0])\n")
    assert out == "0 True 10000"


def test_cycles_made_after_settling_are_still_collected() -> None:
    out = _child(
        "import gc, weakref\n"
        "from broker.hosting.eventloop import settle_heap\n"
        "settle_heap()\n"
        "class Node: pass\n"
        "a, b = Node(), Node()\n"
        "a.other, b.other = b, a\n"
        "probe = weakref.ref(a)\n"
        "del a, b\n"
        "gc.collect()\n"
        "print(probe() is None)\n")
    assert out == "True"


def test_a_benchmark_can_hand_its_heap_back() -> None:
    out = _child(
        "import gc\n"
        "from broker.hosting.eventloop import settle_heap, unsettle_heap\n"
        "before = gc.get_threshold()\n"
        "unsettle_heap(settle_heap())\n"
        "print(gc.get_freeze_count(), gc.get_threshold() == before)\n")
    assert out == "0 True"
