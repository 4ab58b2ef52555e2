"""Data parallelism under `accelerate launch` (or `torchrun`): which share of the work this process does.

mixsd has no process management of its own. The launcher starts N copies of the same command and sets RANK and
WORLD_SIZE; each copy takes every N-th record, and rank 0 gathers and writes the final files. Because a record's
output depends only on the seed and the record, the gathered result is the single-process one, byte for byte.
Importing this module loads nothing heavy; the process group starts on first need (accelerate's `PartialState`,
gloo on CPU, NCCL on GPUs).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1

    @classmethod
    def from_env(cls) -> Ranks:
        return cls(int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")))

    @property
    def main(self) -> bool:
        return self.rank == 0

    def share(self, items: Sequence[T]) -> list[T]:
        """This rank's items: every world-th one, so ranks get equal shares of any ordering."""
        return list(items[self.rank :: self.world])

    def barrier(self) -> None:
        if self.world > 1:
            _state().wait_for_everyone()

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's `obj`, in rank order, on every rank."""
        if self.world == 1:
            return [obj]
        import torch.distributed as dist

        _state()
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def map(self, items: Sequence[T], fn: Callable[[list[T]], list[R]]) -> list[R]:
        """`fn` over all of `items`, each rank doing its share; every rank gets the whole result, in order."""
        share = self.share(items)
        parts = self.gather(fn(share) if share else [])
        out: list[Any] = [None] * len(items)
        for rank, part in enumerate(parts):
            out[rank :: self.world] = part
        return out

    def device(self) -> str | None:
        """This rank's device under a multi-process launch (None: the single-process default)."""
        return str(_state().device) if self.world > 1 else None


def _state():
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())  # without a GPU, ranks talk over gloo
