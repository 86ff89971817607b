"""When the Trainer compiles its step by default, and what happens when compiling fails."""

import logging

import pytest
import torch
import torch._inductor.config as inductor

from cvae import ConditionalVAE, Trainer
from cvae.compiling import AUTO_COMPILE_STEPS, Compiled, can_compile


def trainer(images, epochs, model=None, **kwargs):
    """A Trainer for `epochs` epochs of one image a step: `images * epochs` steps."""
    data = (torch.rand(images, 1, 28, 28, generator=torch.Generator().manual_seed(0)),
            torch.arange(images) % 10)
    return Trainer(model or ConditionalVAE(), data, epochs=epochs, batch_size=1, seed=0,
                   verbose=False, progress=False, **kwargs)


@pytest.fixture
def no_compiler(monkeypatch):
    """A machine without a C++ compiler, as torch's compiler sees it (and nothing cached)."""
    monkeypatch.setattr(inductor.cpp, "cxx", ("cvae-test-no-such-compiler",))
    monkeypatch.setattr(inductor, "force_disable_caches", True)


def test_auto_compiles_a_long_run_where_torch_can_and_only_then(monkeypatch):
    made = []
    real = torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: made.append(kw) or real(fn, **kw))
    images = 100
    long = trainer(images, AUTO_COMPILE_STEPS // images)
    assert long.steps_per_epoch * long.epochs == AUTO_COMPILE_STEPS
    assert long.compiled is can_compile("cpu")
    assert made == ([{"dynamic": False}] if long.compiled else [])
    assert trainer(images, AUTO_COMPILE_STEPS // images - 1).compiled is False  # one epoch short
    assert trainer(images, AUTO_COMPILE_STEPS // images, compile=False).compiled is False
    assert trainer(images, 1, compile=True).compiled is True
    # Its labelled share varies from batch to batch, so its step would compile again and again.
    semi = ConditionalVAE(semi_supervised=True)
    assert trainer(images, AUTO_COMPILE_STEPS // images, model=semi).compiled is False


def test_auto_does_not_compile_without_a_compiler(no_compiler):
    assert can_compile("cpu") is False
    assert trainer(100, AUTO_COMPILE_STEPS // 100).compiled is False


def test_a_failed_compilation_goes_on_eagerly_with_a_warning(no_compiler, caplog):
    def loss(x):
        return (x.sin() * 2 + 1).sum()

    x = torch.randn(64)
    step = Compiled(loss, fallback=True)
    with caplog.at_level(logging.WARNING, logger="cvae"):
        assert torch.equal(step(x), loss(x))
    assert "torch.compile failed" in caplog.text and "compile=False" in caplog.text
    assert step.compiled is None  # later steps do not try again
    caplog.clear()
    assert torch.equal(step(2 * x), loss(2 * x)) and not caplog.text


def test_compile_true_raises_a_failed_compilation(no_compiler):
    with pytest.raises(Exception, match="C\\+\\+ compiler"):
        Compiled(lambda x: (x.cos() * 3).sum(), fallback=False)(torch.randn(8))


def test_an_error_of_the_loss_itself_is_raised_not_hidden():
    def loss(x):
        if x.shape[0] != 3:
            raise ValueError("wants three rows")
        return x.sum()

    with pytest.raises(ValueError, match="wants three rows"):
        Compiled(loss, fallback=True)(torch.randn(4))


def test_a_resumed_run_compiles_as_the_uninterrupted_one_would(tmp_path):
    images = 100
    trainer(images, 1, checkpoint_dir=tmp_path, compile=False).train()  # epoch 1 of the run
    resumed = trainer(images, AUTO_COMPILE_STEPS // images, checkpoint_dir=tmp_path, resume=True)
    assert len(resumed.history) == 1  # fewer steps to go than AUTO_COMPILE_STEPS, yet:
    assert resumed.compiled is can_compile("cpu")
