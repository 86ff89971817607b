"""Attacks and faults: a save or a checkpoint killed at every step, writers that race,
damaged checkpoints, a config bomb, and the command line's argument space."""

import json
import os
import shutil
import signal
import subprocess
import sys
from contextlib import ExitStack

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from processes import started

import cvae
import cvae._files
from cvae import ConditionalVAE, Trainer
from cvae.cli import main

SMALL = {"latent_dim": 3, "backbone_kwargs": {"hidden_dims": [8]}}


def small(seed: int) -> ConditionalVAE:
    torch.manual_seed(seed)
    return ConditionalVAE(**SMALL)


def same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# Every call that changes the file system on the way of a save.
MUTATIONS = [(os, "rename"), (os, "replace"), (os, "link"), (os, "mkdir"), (os, "fsync"),
             (os, "chmod"), (os, "unlink"), (shutil, "rmtree"), (shutil, "copyfile"),
             (cvae._files, "_exchange")]


def killed_at(step: int, act) -> bool:
    """Run `act` in a forked child that SIGKILLs itself at its `step`-th file-system change.

    Returns whether the child got that far (False: `act` ended before the step).
    """
    pid = os.fork()
    if pid == 0:  # the child: count, and die at the step, as a power cut or kill -9 would
        count = [0]

        def wrap(owner, name):
            real = getattr(owner, name)

            def counted(*args, **kwargs):
                count[0] += 1
                if count[0] == step:
                    os.kill(os.getpid(), signal.SIGKILL)
                return real(*args, **kwargs)

            setattr(owner, name, counted)

        for owner, name in MUTATIONS:
            wrap(owner, name)
        try:
            act()
        except BaseException:
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) or os.WEXITSTATUS(status) == 0, "the save failed"
    return os.WIFSIGNALED(status)


def test_a_save_killed_at_any_step_leaves_the_old_model_or_the_new_one(tmp_path):
    """Before, a kill between the two renames of a save left the new weights beside the old
    config (neither model loaded); and model B saved over A kept A's card and history."""
    folder = tmp_path / "model"
    old, new = small(0), small(1)
    old.save_pretrained(folder, extra_files={"training_history.json": '{"of": "old"}'})
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "keep.txt").write_text("the user's")
    step, outcomes = 0, set()
    while killed_at(step := step + 1, lambda: new.save_pretrained(folder)):
        loaded = ConditionalVAE.from_pretrained(folder)  # whole, whichever it is
        outcomes.add("old" if same(loaded, old) else "new" if same(loaded, new) else "mixed")
        assert (folder / "checkpoints" / "keep.txt").read_text() == "the user's"
        assert step < 200
        old.save_pretrained(folder, extra_files={"training_history.json": '{"of": "old"}'})
    assert outcomes == {"old", "new"}, outcomes  # the kills fell before and after the switch
    assert step > 10  # each step of the save was tried
    new.save_pretrained(folder)  # no kill: the new model, without the old one's history
    assert same(ConditionalVAE.from_pretrained(folder), new)
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "checkpoints", "config.json",
                                                        "model.safetensors"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no debris beside it
    assert oct(os.stat(folder / "model.safetensors").st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


SAVE_LOOP = """
import sys, torch, cvae
torch.manual_seed(int(sys.argv[2]))
model = cvae.ConditionalVAE(latent_dim=3, backbone_kwargs={"hidden_dims": [8]})
for _ in range(15):
    model.save_pretrained(sys.argv[1])
"""


@pytest.mark.slow  # two processes
def test_two_processes_saving_to_one_folder_take_turns(tmp_path):
    folder = tmp_path / "model"
    with ExitStack() as stack:
        runs = [stack.enter_context(started([sys.executable, "-c", SAVE_LOOP, str(folder), str(seed)],
                                            stdout=None)) for seed in (0, 1)]
        for run in runs:
            assert run.wait(timeout=120) == 0, run.stderr.read()
    loaded = ConditionalVAE.from_pretrained(folder)
    assert same(loaded, small(0)) or same(loaded, small(1))
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_damaged_newest_checkpoint_is_skipped_for_the_one_before(tmp_path, caplog):
    """Before, a truncated newest checkpoint stopped resume with a raw SafetensorError, though
    the one before it was intact."""
    g = torch.Generator().manual_seed(0)
    data = (torch.rand(64, 1, 28, 28, generator=g), torch.randint(0, 10, (64,), generator=g))

    def fit(epochs, checkpoints=None, resume=False):
        torch.manual_seed(0)
        model = ConditionalVAE(**SMALL)
        Trainer(model, data, epochs=epochs, batch_size=16, seed=1, verbose=False,
                checkpoint_dir=checkpoints, resume=resume).train()
        return model

    straight = fit(3)
    fit(2, tmp_path)
    newest = tmp_path / "epoch-0002" / "state.safetensors"
    for damage in ("truncate", "flip"):
        data_bytes = newest.read_bytes()
        newest.write_bytes(data_bytes[: len(data_bytes) // 2] if damage == "truncate"
                           else data_bytes[:-8] + bytes(b ^ 0xFF for b in data_bytes[-8:]))
        with caplog.at_level("WARNING"):
            resumed = fit(3, tmp_path, resume=True)
        assert "skipping the damaged checkpoint" in caplog.text and "epoch-0002" in caplog.text
        assert same(resumed, straight)  # from epoch 1, to the same weights as never stopped
        caplog.clear()
        shutil.rmtree(tmp_path)
        fit(2, tmp_path)


def test_a_second_trainer_on_one_checkpoint_folder_is_refused_at_start(tmp_path):
    g = torch.Generator().manual_seed(0)
    data = (torch.rand(32, 1, 28, 28, generator=g), torch.randint(0, 10, (32,), generator=g))
    first = Trainer(ConditionalVAE(**SMALL), data, epochs=1, checkpoint_dir=tmp_path, verbose=False)
    with cvae._files.folder_lock(tmp_path):  # as the first one's train() holds it
        with pytest.raises(BlockingIOError, match="another process is training into"):
            Trainer(ConditionalVAE(**SMALL), data, epochs=1, checkpoint_dir=tmp_path, verbose=False)
    first.train()


BOMB = """
import json, resource, shutil, sys
from pathlib import Path
import cvae
folder = Path(sys.argv[1])
over = json.loads((folder / "over.json").read_text())
source = cvae.hub.BUNDLED_DIR / "mnist-mlp"
shutil.copy(source / "model.safetensors", folder / "model.safetensors")
(folder / "config.json").write_text(json.dumps({**json.loads((source / "config.json").read_text()),
                                                **over}))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    cvae.ConditionalVAE.from_pretrained(folder)
except ValueError as err:
    print(json.dumps({"kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before,
                      "error": str(err)}))
"""


@pytest.mark.parametrize("over", [{"backbone_kwargs": {"hidden_dims": [1000000]}},
                                  {"backbone_kwargs": {"hidden_dims": [400] * 100000}},
                                  {"latent_dim": 10**8}, {"num_classes": 10**8, "class_names": None},
                                  {"backbone": "conv", "backbone_kwargs": {"channels": [10**6]}}])
def test_a_config_bomb_allocates_nothing(tmp_path, over):
    """Before, `hidden_dims: [1000000]` beside the real weights allocated 6.8 GB."""
    (tmp_path / "over.json").write_text(json.dumps(over))
    out = subprocess.run([sys.executable, "-c", BOMB, str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    result = json.loads(out.stdout)
    assert "does not match model.safetensors" in result["error"]
    assert result["kib"] < 100 * 1024  # under 100 MB over the interpreter's peak


# The command line's argument space: valid values, nonsense and extremes, mixed.
NUMBER = st.one_of(st.integers(-3, 3), st.sampled_from(["0", "-1", "1.5", "x", "1e9", "", "99999"]))


@pytest.mark.slow  # many commands
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_command_line_answers_any_arguments_with_a_result_or_one_line(tmp_path_factory, data,
                                                                          capsys):
    from folders import make_image_folder

    tmp = tmp_path_factory.mktemp("cli")
    images = make_image_folder(tmp / "images", classes=3, per_class=4, size=(8, 8))
    command = data.draw(st.sampled_from(["sample", "train", "eval", "list", "interpolate"]))
    pick = lambda *options: str(data.draw(st.one_of(st.sampled_from(options), NUMBER)))  # noqa: E731
    args = {
        "sample": ["--digit", pick("3", "9", "10", "seven"), "-n", pick("2", "5"),
                   "--temperature", pick("0.5", "inf", "nan", "-2"), "--scale", pick("1", "2"),
                   "--model", pick("mnist-mlp", "mnist-cnov", "./nope", "", "org/none"),
                   "-o", str(tmp / data.draw(st.sampled_from(["x.png", "x", "d/x.png"])))],
        "train": ["--dataset", pick(str(images), "nothing", "mnist-x"), "--epochs", pick("1"),
                  "--latent-dim", pick("2", "4"), "--hidden-dims", pick("8", "0"),
                  "--batch-size", pick("4", "64"), "--lr", pick("1e-3", "0", "-1", "inf"),
                  "--likelihood", pick("bernoulli", "gaussian", "poisson"),
                  "--backbone", pick("mlp", "resnet"), "-o", str(tmp / "run"), "--no-progress"],
        "eval": [pick("mnist-mlp", "./nope"), "--limit", pick("20"), "-k", pick("2"),
                 "--samples-per-class", pick("4"), "-o", str(tmp / "e.json")],
        "list": [],
        "interpolate": ["--model", "mnist-mlp", "--index", pick("0", "99999"), pick("1"),
                        "--steps", pick("4", "1"), "-o", str(tmp / "s.png")],
    }[command]
    try:
        code = main([command, *args])
    except SystemExit as exit:  # argparse's refusals
        code = exit.code
    err = capsys.readouterr().err
    assert code in (0, 2), (command, args, err)
    if code:
        lines = [line for line in err.strip().splitlines() if line.startswith("cvae")]
        assert "Traceback" not in err and lines and "error:" in lines[-1], (args, err)
