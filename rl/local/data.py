"""The order in which training tasks are drawn: a seeded permutation per epoch, read through a cursor.

The whole order is a function of (task list, seed); the only state is the cursor, the number of tasks drawn so
far. A checkpoint stores the cursor, so a resumed run draws exactly the tasks the uninterrupted run would have.
"""
from __future__ import annotations

import random
from collections.abc import Sequence

__all__ = ["TaskOrder"]


class TaskOrder:
    """Endless draws from ``tasks`` ((domain, task_id) pairs): every task once per epoch, in a seeded order."""

    def __init__(self, tasks: Sequence[tuple[str, str]], seed: int, cursor: int = 0):
        if not tasks:
            raise ValueError("no training tasks: check data.domains and data.train_split against the build")
        if cursor < 0:
            raise ValueError(f"cursor must be >= 0, got {cursor}")
        self.tasks = list(tasks)
        self.seed = seed
        self.cursor = cursor
        self._epoch = -1
        self._order: list[tuple[str, str]] = []

    def _epoch_order(self, epoch: int) -> list[tuple[str, str]]:
        if epoch != self._epoch:
            order = list(self.tasks)
            random.Random(f"{self.seed}:{epoch}").shuffle(order)  # a str seed hashes the same on every machine
            self._epoch, self._order = epoch, order
        return self._order

    def peek(self, count: int) -> list[tuple[str, str]]:
        """The next ``count`` tasks, without moving the cursor."""
        out = []
        for position in range(self.cursor, self.cursor + count):
            epoch, index = divmod(position, len(self.tasks))
            out.append(self._epoch_order(epoch)[index])
        return out

    def take(self, count: int) -> list[tuple[str, str]]:
        """The next ``count`` tasks; the cursor moves past them."""
        out = self.peek(count)
        self.cursor += count
        return out
