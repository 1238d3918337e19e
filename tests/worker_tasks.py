"""Functions the worker-pool tests run in its workers: in a module of their own, which a spawned
worker imports in an instant (importing a test module would bring pytest and the service)."""

from __future__ import annotations

import os
import time


def crash() -> None:
    os._exit(3)


def hang() -> None:
    time.sleep(600)


def double(value: int) -> int:
    return 2 * value
