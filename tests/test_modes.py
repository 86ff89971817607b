"""`in_eval_mode`: the passes a model makes outside training leave it in the mode it was in."""

import pytest
import torch
from torch import nn

from cvae._modes import in_eval_mode


@pytest.mark.parametrize("training", [True, False])
def test_eval_within_and_the_mode_back_after(training):
    module = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)).train(training)
    with in_eval_mode(module) as inside:
        assert inside is module
        assert not any(m.training for m in module.modules())
    assert all(m.training == training for m in module.modules())


def test_the_mode_back_when_the_block_raises():
    module = nn.Dropout(0.5).train()
    with pytest.raises(RuntimeError, match="refused"), in_eval_mode(module):
        raise RuntimeError("refused")
    assert module.training


def test_dropout_is_off_within():
    module = nn.Dropout(0.9).train()
    x = torch.ones(1000)
    with in_eval_mode(module):
        assert torch.equal(module(x), x)
