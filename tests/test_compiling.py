"""When the Trainer compiles its step by default, and what happens when compiling fails.

A machine without a C++ compiler is made the way a user's is: a process whose `CXX` names
no compiler (torch reads it when it starts) and whose inductor cache is empty. No test
changes torch's private settings in this process: they leak into every later test here.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from processes import needs_compiler

from cvae import ConditionalVAE, Trainer
from cvae.training._compiling import AUTO_COMPILE_STEPS, Compiled, can_compile


def trainer(images, epochs, model=None, **kwargs):
    """A Trainer for `epochs` epochs of one image a step: `images * epochs` steps."""
    data = (torch.rand(images, 1, 28, 28, generator=torch.Generator().manual_seed(0)),
            torch.arange(images) % 10)
    return Trainer(model or ConditionalVAE(), data, epochs=epochs, batch_size=1, seed=0,
                   verbose=False, progress=False, **kwargs)


NO_COMPILER = textwrap.dedent("""
    import json, logging, torch
    from cvae import ConditionalVAE, Trainer
    from cvae.training._compiling import AUTO_COMPILE_STEPS, Compiled, can_compile

    logging.getLogger("cvae").handlers.clear()
    seen = []
    logging.getLogger("cvae").addHandler(type("H", (logging.Handler,), {
        "emit": lambda self, record: seen.append(record.getMessage())})())

    def loss(x):
        return (x.sin() * 2 + 1).sum()

    found = {"can_compile": can_compile("cpu")}
    data = (torch.rand(100, 1, 28, 28), torch.arange(100) % 10)
    found["auto_compiled"] = Trainer(ConditionalVAE(), data, epochs=AUTO_COMPILE_STEPS // 100,
                                     batch_size=1, verbose=False, progress=False).compiled
    x, seen[:] = torch.randn(64), []  # the Trainer's own warnings (random images) are not ours
    step = Compiled(loss, fallback=True)
    found["fallback_equal"] = torch.equal(step(x), loss(x))
    found["fallback_warned"], seen[:] = list(seen), []
    found["later_compiled"] = step.compiled is not None
    found["later_equal"] = torch.equal(step(2 * x), loss(2 * x))
    found["later_warned"] = list(seen)
    try:
        Compiled(lambda x: (x.cos() * 3).sum(), fallback=False)(torch.randn(8))
        found["raised"] = None
    except Exception as error:
        found["raised"] = str(error)
    print(json.dumps(found))
""")


@pytest.fixture(scope="module")
def no_compiler(tmp_path_factory):
    """What the library does in a process that has no C++ compiler, as JSON."""
    env = {**os.environ, "CXX": "cvae-test-no-such-compiler",
           "TORCHINDUCTOR_CACHE_DIR": str(tmp_path_factory.mktemp("inductor-cache"))}
    done = subprocess.run([sys.executable, "-c", NO_COMPILER], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@needs_compiler
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
    assert no_compiler["can_compile"] is False
    assert no_compiler["auto_compiled"] is False


def test_a_failed_compilation_goes_on_eagerly_with_a_warning(no_compiler):
    assert no_compiler["fallback_equal"] is True
    [warning] = no_compiler["fallback_warned"]
    assert "torch.compile failed" in warning and "compile=False" in warning
    # The reason is the compiler's, whole (torch's first line alone says only "raised:").
    assert "C++ compiler" in warning and "\n" not in warning
    assert no_compiler["later_compiled"] is False  # later steps do not try again
    assert no_compiler["later_equal"] is True and no_compiler["later_warned"] == []


def test_compile_true_raises_a_failed_compilation(no_compiler):
    assert "C++ compiler" in no_compiler["raised"]


def test_an_error_of_the_loss_itself_is_raised_not_hidden():
    def loss(x):
        if x.shape[0] != 3:
            raise ValueError("wants three rows")
        return x.sum()

    with pytest.raises(ValueError, match="wants three rows"):
        Compiled(loss, fallback=True)(torch.randn(4))


@needs_compiler
def test_a_resumed_run_compiles_as_the_uninterrupted_one_would(tmp_path):
    images = 100
    trainer(images, 1, checkpoint_dir=tmp_path, compile=False).train()  # epoch 1 of the run
    resumed = trainer(images, AUTO_COMPILE_STEPS // images, checkpoint_dir=tmp_path, resume=True)
    assert len(resumed.history) == 1  # fewer steps to go than AUTO_COMPILE_STEPS, yet:
    assert resumed.compiled is can_compile("cpu")


def test_a_failure_while_a_stop_is_asked_is_an_interrupt_not_a_compiler_fault():
    """Ctrl-C in a command that lands in the compiler came back as the compiler's own error
    (an InductorError around a TypeError), and the run trained on without compiling."""
    from cvae._stop import ask_stop, clear_stop

    def loss(x):
        return (x.sin() * 2).sum()

    def compiler_failed(*args):
        raise RuntimeError("InductorError: TypeError: expected a message argument")

    step = Compiled(loss, fallback=True)
    step.compiled = compiler_failed  # what the compiler did when the interrupt landed in it
    ask_stop()
    try:
        with pytest.raises(KeyboardInterrupt):
            step(torch.randn(4))
    finally:
        clear_stop()
    assert step.compiled is compiler_failed  # no fallback to training on
    x = torch.randn(4)
    assert torch.equal(step(x), loss(x)) and step.compiled is None  # without a stop: the fallback


def test_the_command_handler_asks_for_a_stop_and_main_forgets_it():
    from cvae._stop import stop_asked
    from cvae.cli._main import _on_interrupt, _watchdogs, main

    handler = _on_interrupt("train")
    with pytest.raises(KeyboardInterrupt):
        handler(2, None)
    assert stop_asked()
    for timer in _watchdogs:  # not a real Ctrl-C: no forced stop of this process
        timer.cancel()
    assert main(["sample", "--digit", "3", "-n", "1", "--model", "no-such-model"]) != 0
    assert not stop_asked()  # a command that ended clears it
