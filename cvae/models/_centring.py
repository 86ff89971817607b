"""Codes centred on their conditions: what the condition says linearly is taken out of the code.

A model of several conditions leaks them into its latent code: each class's codes sit
around a mean of their own, and a linear probe reads the class from them (`mnist-morpho`,
trained with the `independence` penalty: the digit 18.3% of the time against 11.3% by
chance; centred, 13.7%). That part of the code is redundant: the decoder sees the condition too, so a code
moved by a linear function of the condition, `z + shift(row)`, draws the same image if the
decoder adds the shift back. `CodeShift` is that function, fitted by least squares to the
training codes when training ends; the model's codes are then `mu - shift(row)` (what
`encode` returns, what the prior is fitted to and `transfer` carries over) and its decoder
takes `z + shift(row)`. The images a model draws from a code and a row are unchanged; the
codes of each class, tag and value are centred (no linear probe reads the conditions from
them), and the KL term can only fall, as every code moves nearer to 0. What a nonlinear
probe reads (the shape of each class's cloud of codes) stays: `experiments/condition-leakage/`.

An unset part adds nothing: its columns are compared with their training mean only where the
part is known, so a row with a part unset is shifted as the part's average.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from cvae.conditions import Categorical, Conditions

__all__ = ["CodeShift"]


class CodeShift(nn.Module):
    """A linear function of the condition row, `(B, W) -> (B, D)`, fitted to training codes.

    Zero until `fit`. Its buffers are saved with the model's weights.

    Args:
        conditions: The model's conditions (which columns of a row are which part's).
        latent_dim: Size of the codes.

    Attributes:
        weight: `(D, W)`, the shift per column, compared with its training mean.
        row_mean: `(W,)`, each column's mean over the training rows where its part is known.
        offset: `(D,)`, the shift of the average row.
    """

    def __init__(self, conditions: Conditions, latent_dim: int):
        super().__init__()
        width = conditions.width
        self.register_buffer("weight", torch.zeros(latent_dim, width))
        self.register_buffer("row_mean", torch.zeros(width))
        self.register_buffer("offset", torch.zeros(latent_dim))
        # Which columns say whether each column's part is known: a categorical part's one-hot
        # columns (their sum), another part's flag, its last column. `rows @ _says` sums them.
        says, start = torch.zeros(width, width), 0
        for part in conditions:
            stop = start + part.width
            says[start if isinstance(part, Categorical) else stop - 1:stop, start:stop] = 1
            start = stop
        self.register_buffer("_says", says, persistent=False)

    def _known(self, rows: torch.Tensor) -> torch.Tensor:
        """`(B, W)`: 1 where the column's part is known in the row, 0 where it is unset."""
        return (rows @ self._says).clamp(0, 1)

    def _design(self, rows: torch.Tensor) -> torch.Tensor:
        """Each column less its training mean where its part is known; 0 where it is unset."""
        return rows - self.row_mean * self._known(rows)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        """The shift of codes with condition rows `(B, W)`: `(B, D)`."""
        rows = rows.to(self.weight.dtype)
        return self._design(rows) @ self.weight.T + self.offset

    @torch.no_grad()
    def fit(self, codes: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Fit the shift by least squares to training codes, given as `(mu, rows)` batches.

        The codes are the model's as they are, less the shift so far; the fit starts from
        the codes the decoder sees (`mu + shift(rows)`), so fitting again after more training
        replaces the shift. Afterwards the training codes less the shift have mean 0 and no
        linear relation to any column. Sums are kept in float64.

        Raises:
            ValueError: If no batch holds a code.
        """
        width = self.weight.shape[1]
        batches = []
        for mu, rows in codes:
            rows = rows.to(self.weight.device, self.weight.dtype)
            decoded = mu.to(self.weight.dtype) + self(rows)  # the code the decoder takes
            batches.append((decoded.double().cpu(), rows.double().cpu(), self._known(rows).double().cpu()))
        if sum(len(mu) for mu, _, _ in batches) == 0:
            raise ValueError("no training code to centre on its conditions")
        seen = sum(known.sum(0) for _, _, known in batches)
        row_mean = sum((rows * known).sum(0) for _, rows, known in batches) / seen.clamp_min(1)
        gram = torch.zeros(width + 1, width + 1, dtype=torch.float64)
        cross = torch.zeros(width + 1, self.weight.shape[0], dtype=torch.float64)
        for mu, rows, known in batches:
            design = torch.cat([rows - row_mean * known, torch.ones(len(rows), 1, dtype=torch.float64)], 1)
            gram += design.T @ design
            cross += design.T @ mu
        # A little ridge: a categorical part's centred columns sum to 0, so the sums are singular.
        ridge = 1e-8 * gram.diagonal().mean() * torch.eye(width + 1, dtype=torch.float64)
        solution = torch.linalg.solve(gram + ridge, cross)  # (W + 1, D)
        self.weight.copy_(solution[:width].T.to(self.weight))
        self.offset.copy_(solution[width].to(self.offset))
        self.row_mean.copy_(row_mean.to(self.row_mean))
