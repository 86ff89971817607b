"""The values `sample` gives the condition parts a call leaves unset: a training image's own.

A model of several conditions is trained with each part dropped for a share of the images,
so that it decodes with any part unset. Decoded unset, a part is either drawn as its
average for the style (`unset="average"`: the code keeps the style the whole condition
leaves) or carried by the latent code (`"free"`: the code learns the part from the images
that drop it, and so leaks it; on `mnist-morpho`, a linear probe read the digit from the
code 31.6% of the time against 11.3% by chance). Neither varies like the data: an unset
thickness spread 0.63 times as widely as the test digits'.

`unset="data"` trains as `"average"` does and, when training ends, keeps up to
`KEPT_ROWS` rows of the training images' conditions. `sample` fills each unset part from
one of those rows, drawn among the `NEIGHBOURS` nearest the parts the call sets (the same
class and tags, the nearest continuous values): an unset part then spreads as the data do,
and keeps its relation to the parts that are set (a seven's slant, a thick stroke's size).
"""

from __future__ import annotations

import torch
from torch import nn

from cvae.conditions import Conditions, Continuous

__all__ = ["BANDWIDTH", "KEPT_ROWS", "NEIGHBOURS", "UnsetValues"]

KEPT_ROWS = 4096  # the training rows kept: a part's spread within about 1% of the data's
NEIGHBOURS = 50  # an unset part's value comes from one of the rows nearest the set parts
BANDWIDTH = 0.25  # standard deviations beyond the nearest row's distance that a drawn row may be
_MISMATCH = 1e6  # the distance of a class, tag or value that a kept row misses
_CHUNK = 256  # asked rows compared with the kept ones at a time: (256, 4096, R) floats


class UnsetValues(nn.Module):
    """Training rows of a model's condition table, from which unset parts are filled.

    Its buffers are saved with the model's weights; until `fit`, `fill` leaves every part
    unset, which the decoder draws as its average.

    Args:
        table_width: Columns of the model's condition table (`Conditions.table_width`).

    Attributes:
        table: `(KEPT_ROWS, table_width)`, the rows kept (the first `count`).
        known: `(KEPT_ROWS, table_width)`, 1 where `table` holds a value, 0 where it was missing.
        count: How many rows are kept.
    """

    def __init__(self, table_width: int):
        super().__init__()
        # Weights files hold finite floats only: a missing value is 0 in `table`, 0 in `known`.
        self.register_buffer("table", torch.zeros(KEPT_ROWS, table_width))
        self.register_buffer("known", torch.zeros(KEPT_ROWS, table_width))
        self.register_buffer("count", torch.zeros(()))

    @property
    def fitted(self) -> bool:
        """Whether `fit` has kept any row."""
        return bool(self.count > 0)

    @torch.no_grad()
    def fit(self, table: torch.Tensor, seed: int = 0) -> None:
        """Keep up to `KEPT_ROWS` rows of the training conditions `table` `(N, R)`, drawn at random.

        Raises:
            ValueError: If `table` has no row, or not the model's columns.
        """
        if table.dim() != 2 or table.shape[1] != self.table.shape[1] or not len(table):
            raise ValueError(f"the training conditions must be a table (N, {self.table.shape[1]}) with"
                             f" N >= 1, got shape {tuple(table.shape)}")
        if len(table) > KEPT_ROWS:
            order = torch.randperm(len(table), generator=torch.Generator().manual_seed(seed))
            table = table[order[:KEPT_ROWS]]
        table = table.to(self.table)
        self.table.zero_()
        self.known.zero_()
        self.table[: len(table)] = table.nan_to_num(0.0)
        self.known[: len(table)] = (~torch.isnan(table)).to(self.known)
        self.count.fill_(len(table))

    def fill(self, asked: torch.Tensor, conditions: Conditions,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """`asked` `(B, R)` with each row's unset (NaN) values taken from a kept row near its set ones.

        A kept row is near where its classes and tags are those asked for and its continuous
        values close (in training standard deviations); one of the `NEIGHBOURS` nearest is
        drawn, of those within `BANDWIDTH` of the nearest's distance. Unfitted, it returns
        `asked` as it is.

        Args:
            asked: The condition table of a call, NaN where a part is unset.
            conditions: The model's conditions, whose columns the table holds.
            generator: The random generator of the draws.
        """
        unset = torch.isnan(asked).any(1) if asked.dim() == 2 else torch.zeros(0, dtype=torch.bool)
        if not self.fitted or not unset.any():
            return asked
        exact = torch.tensor([not isinstance(p, Continuous) for p in conditions
                              for _ in range(p.table_width)])
        scale = torch.tensor([p.std if isinstance(p, Continuous) else 1.0 for p in conditions
                              for _ in range(p.table_width)], dtype=asked.dtype)
        n = int(self.count)
        kept = self.table[:n].where(self.known[:n] > 0, float("nan")).to(asked.device, asked.dtype)
        where = generator.device if generator is not None else asked.device
        filled = asked.clone()
        for rows in unset.nonzero().flatten().split(_CHUNK):
            part = asked[rows]
            misses, squared = self._distance(part, kept, exact.to(asked.device), scale.to(asked.device))
            # Ties (every row of the class asked) broken at random; in float64, where a miss
            # outweighs any distance and the jitter still tells equal rows apart.
            jitter = torch.rand(misses.shape, generator=generator, device=where).to(misses.device)
            key = misses.double() * _MISMATCH + squared.double() + 1e-9 * jitter.double()
            nearest = key.topk(min(NEIGHBOURS, len(kept)), 1, largest=False).indices
            # The nearest rows are a prefix of these: as few misses as the first, and within
            # BANDWIDTH of its distance (a value beyond the training range draws the edge's rows).
            m, d = misses.gather(1, nearest), squared.gather(1, nearest).sqrt()
            near = ((m == m[:, :1]) & (d <= d[:, :1] + BANDWIDTH)).sum(1)
            pick = (torch.rand(len(rows), generator=generator, device=where).to(asked.device) * near).long()
            source = kept[nearest.gather(1, pick[:, None]).squeeze(1)]
            filled[rows] = torch.where(torch.isnan(part), source, part)
        return filled

    @staticmethod
    def _distance(asked: torch.Tensor, kept: torch.Tensor, exact: torch.Tensor,
                  scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`(b, N)` each: what a kept row misses of the asked row's set parts, and how far it is.

        The misses count the set classes, tags and values it lacks or differs in; the
        distance is squared, over the set continuous values, in standard deviations.
        """
        given = ~torch.isnan(asked)[:, None, :]
        difference = asked[:, None, :] - kept[None]
        missing = torch.isnan(difference)
        misses = (given & (missing | (exact & (difference != 0)))).sum(2)
        # A kept row that lacks a value the asked row needs filled is drawn only where no other can be.
        misses = misses + (torch.isnan(kept)[None] & ~given).any(2) * (asked.shape[1] + 1)
        squared = torch.where(given & ~exact & ~missing, difference / scale, 0.0).pow(2).sum(2)
        return misses, squared
