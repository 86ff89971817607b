import os
import signal
import subprocess
import sys
import time
import weakref

import numpy as np
import pytest
from PIL import Image
from processes import needs_compiler, started
from refusals import assert_refused

import cvae
from cvae.cli import main


def run(*args, check=True):
    out = subprocess.run([sys.executable, "-m", "cvae.cli", *args], capture_output=True,
                         text=True)
    if check:
        assert out.returncode == 0, out.stderr
    return out


def test_help_explains_both_commands():
    out = run("--help").stdout
    assert "sample" in out and "train" in out
    sample = run("sample", "--help").stdout
    assert "--label CLASS, --digit CLASS" in sample
    # The usage line names the class, not a digit: the model may be one of clothes.
    # (and, for a model with several conditions, the conditions by name)
    assert sample.startswith("usage: cvae sample [-h] [--label CLASS] [--condition NAME=VALUE]")
    assert "--digit LABEL" not in sample
    assert "--epochs" in run("train", "--help").stdout


@pytest.mark.parametrize("argv", [["--version"], ["--help"]])
def test_help_and_version_answer_without_importing_torch(argv):
    """Before, `cvae --help` imported torch (and the whole library): 1.9 s on an idle machine."""
    code = (f"import sys\nfrom cvae.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n"
            f"    pass\nprint('torch' in sys.modules, file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() and out.stderr.strip() == "False"


def test_the_library_decides_the_defaults_that_cvae_train_states_none_of():
    """Before, the parser stated them again (latent 20, epochs 10, ...), and passed each on."""
    import inspect

    from cvae.cli import build_parser
    from cvae.training._length import CEILING_EPOCHS, CEILING_STEPS, FLOOR_EPOCHS, FLOOR_STEPS
    from cvae.training._optim import DEFAULT_LR
    from cvae.training.early_stopping import DEFAULT_PATIENCE, PATIENCE_STEPS

    train = next(a for a in build_parser()._actions if a.dest == "command").choices["train"]
    options = {action.dest: action for action in train._actions}
    for name in ("epochs", "batch_size", "lr", "latent_dim", "beta", "lr_schedule", "free_bits"):
        assert options[name].default is None, name
    shown = run("train", "--help").stdout
    model = inspect.signature(cvae.ConditionalVAE).parameters
    assert inspect.signature(cvae.Trainer).parameters["epochs"].default is None  # the data decide
    for text in (f"(default: {DEFAULT_PATIENCE}, or as many as span {PATIENCE_STEPS}",
                 f"(default: {FLOOR_STEPS} or {FLOOR_EPOCHS} epochs",
                 f"{CEILING_STEPS} or {CEILING_EPOCHS} epochs",
                 f"latent size (default: {model['latent_dim'].default})", f"(default: {DEFAULT_LR:g})"):
        assert text in " ".join(shown.split()), text


def test_sample_writes_a_png_grid(tmp_path):
    path = tmp_path / "sevens.png"
    out = run("sample", "--digit", "7", "-n", "16", "-o", str(path), "--seed", "0")
    assert "16 images" in out.stdout
    with Image.open(path) as image:
        assert image.size == (4 * 30 + 2, 4 * 30 + 2)
        pixels = np.asarray(image)
    assert pixels.max() > 200  # strokes are drawn
    # the same seed gives the same grid
    run("sample", "--digit", "7", "-n", "16", "-o", str(tmp_path / "again.png"), "--seed", "0")
    with Image.open(tmp_path / "again.png") as again:
        assert np.array_equal(np.asarray(again), pixels)


def test_bad_digit_is_a_clear_error(tmp_path):
    out = run("sample", "--digit", "12", "-o", str(tmp_path / "x.png"), check=False)
    assert out.returncode == 2
    assert "no class is named '12'; the classes are '0', '1'," in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.slow  # three commands in processes
def test_train_writes_a_model_that_from_pretrained_loads(tmp_path):
    out_dir = tmp_path / "run"
    out = run("train", "--dataset", "mnist", "--epochs", "2", "--limit", "1000",
              "--hidden-dims", "64", "-o", str(out_dir), "--no-progress")
    assert "Average loss" in out.stdout and "Test set loss" in out.stdout
    model = cvae.ConditionalVAE.from_pretrained(out_dir)
    assert model.config["backbone_kwargs"] == {"hidden_dims": [64]}
    assert (out_dir / "training_history.json").is_file()
    assert (out_dir / "checkpoints" / "epoch-0002").is_dir()
    # asking for more epochs with --resume continues from the checkpoint
    more = run("train", "--dataset", "mnist", "--epochs", "3", "--limit", "1000",
               "--hidden-dims", "64", "-o", str(out_dir), "--no-progress", "--resume")
    assert "resuming from" in more.stdout and "Epoch: 3 " in more.stdout
    assert "Epoch: 1 " not in more.stdout
    card = (out_dir / "README.md").read_text()
    assert "cvae train --dataset mnist" in card and "test loss" in card
    # and the trained model samples through the command line
    run("sample", "--model", str(out_dir), "--digit", "3", "-n", "4", "-o",
        str(tmp_path / "threes.png"))
    assert (tmp_path / "threes.png").is_file()


def test_version_prints_the_release():
    out = run("--version")
    assert out.stdout.strip() == f"cvae {cvae.__version__}"


def test_training_and_eval_default_to_a_gpu_when_there_is_one(monkeypatch):
    from cvae._devices import default_device

    for present, expected in ((True, "cuda"), (False, "cpu")):
        monkeypatch.setattr("torch.cuda.is_available", lambda present=present: present)
        assert default_device() == expected


def test_list_names_the_bundled_model():
    out = run("list").stdout
    assert "mnist-mlp" in out and "mlp" in out


def refusal(out) -> str:
    """The command's refusal as the refusals table writes it: `exit N: last line`."""
    assert "Traceback" not in out.stderr
    return f"exit {out.returncode}: {out.stderr.strip().splitlines()[-1]}"


def test_bad_numbers_are_refused_before_anything_runs(tmp_path):
    assert_refused("cli-number", refusal(run("sample", "--digit", "7", "-n", "0", check=False)))
    for args in (["sample", "--digit", "7", "--scale", "x"], ["train", "--limit", "0", "-o", "r"],
                 ["train", "--epochs", "-1", "-o", "r"], ["eval", "mnist-mlp", "-k", "1.5"]):
        out = run(*args, check=False)
        assert out.returncode == 2 and "must be a whole number" in out.stderr, args
    assert_refused("sweep-min-precision",
                   refusal(run("eval", "mnist-mlp", "--sweep", "--min-precision", "0", check=False)))


def test_a_run_folder_belongs_to_one_run(tmp_path):
    """Training into a folder that holds a run needs --resume or --overwrite; before, the
    earlier model was overwritten without a word and a later --resume went on with the
    earlier run's checkpoints."""
    out = tmp_path / "run"
    args = ["train", "--dataset", "mnist", "--epochs", "1", "--limit", "200", "--hidden-dims", "16",
            "-o", str(out), "--no-progress"]
    assert main(args) == 0
    before = (out / "model.safetensors").read_bytes()
    assert_refused("cli-run-folder", refusal(run(*args, "--latent-dim", "4", check=False)))
    assert (out / "model.safetensors").read_bytes() == before  # untouched
    assert_refused("cli-resume-overwrite", refusal(run(*args, "--resume", "--overwrite",
                                                       check=False)))
    # a resume with another model is refused too, naming the setting
    other = run(*args, "--resume", "--latent-dim", "4", check=False)
    assert other.returncode == 2 and "latent_dim: 20 there, 4 here" in other.stderr
    assert main([*args, "--overwrite", "--latent-dim", "4"]) == 0
    assert cvae.ConditionalVAE.from_pretrained(out).latent_dim == 4
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["epoch-0001"]


def test_an_interrupted_training_says_which_checkpoint_it_keeps_and_how_to_go_on(tmp_path):
    out = tmp_path / "run"
    args = ["train", "--dataset", "mnist", "--limit", "200", "--hidden-dims", "16", "-o", str(out),
            "--no-progress", "--no-compile"]  # compiling is the next test's
    with started([sys.executable, "-m", "cvae.cli", *args, "--epochs", "100000"]) as process:
        deadline = time.monotonic() + 120
        while not (out / "checkpoints" / "epoch-0002").is_dir() and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)  # Ctrl-C
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in stderr
    kept = cvae.training.checkpoint.checkpoints(out / "checkpoints")[-1]
    assert stderr.strip().endswith(f"{kept} is kept: run the same command with --resume to go on"
                                   f" from it (--overwrite starts again)")
    epoch = int(kept.name.split("-")[1])
    more = run(*args, "--epochs", str(epoch + 1), "--resume")
    assert f"resuming from {kept}" in more.stdout and f"Epoch: {epoch + 1} " in more.stdout


@needs_compiler
@pytest.mark.slow  # compiles a model, in a process
def test_ctrl_c_while_the_loss_is_compiled_stops_the_run(tmp_path):
    """A long run compiles its loss before the first step (seconds; a minute under load)."""
    cache = tmp_path / "inductor"  # empty: the compilation is a real one, and is seen starting
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(cache)}
    command = [sys.executable, "-m", "cvae.cli", "train", "--dataset", "mnist", "--limit", "200",
               "--hidden-dims", "16", "-o", str(tmp_path / "run"), "--no-progress", "--epochs", "100000"]
    with started(command, env=env) as process:
        deadline = time.monotonic() + 180
        while not any(cache.rglob("*")) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert process.poll() is None and any(cache.rglob("*")), "the compilation never started"
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in stderr
    assert stderr.strip().endswith("cvae train: interrupted") and "Epoch:" not in stdout


def test_ctrl_c_that_lands_in_a_callback_stops_the_command_without_a_traceback(monkeypatch, capsys):
    """Python prints, and then drops, an exception raised inside a weakref callback (torch's
    compiler keeps such callbacks): CI's Ctrl-C landed in one, printed a traceback and was
    only stopped by the watchdog. Here the interrupt arrives inside such a callback."""
    def interrupted_inside_a_callback(args):
        class Thing:
            pass

        thing = Thing()
        ref = weakref.ref(thing, lambda ref: signal.raise_signal(signal.SIGINT))  # handled in there
        del thing
        for _ in range(100):  # the interrupt, delivered again, ends this
            time.sleep(0.05)
        raise AssertionError(f"the interrupt was lost ({ref})")

    monkeypatch.setattr(cvae.cli._commands, "run_list", interrupted_inside_a_callback)
    assert main(["list"]) == 130
    stderr = capsys.readouterr().err
    assert stderr == "cvae list: interrupted\n"


def test_an_error_message_with_a_newline_keeps_what_follows_it(tmp_path):
    """Before, the one-line error stopped at the first newline: here, inside a file name."""
    taken = tmp_path / "run\nfolder"
    taken.write_text("not a folder")
    out = run("train", "-o", str(taken), check=False)
    assert out.returncode == 2
    assert out.stderr == (f"cvae train: error: {tmp_path}/run folder is a file; -o names the folder"
                          f" to write the model to\n")


def test_a_reader_that_stops_early_is_no_error():
    """`cvae list | head -0`: before, an error line about a broken pipe."""
    process = subprocess.Popen([sys.executable, "-m", "cvae.cli", "list"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    process.stdout.close()  # long before the command prints
    stderr = process.stderr.read()
    assert process.wait(timeout=60) == 141 and stderr == ""


def test_overwrite_with_settings_the_trainer_refuses_keeps_the_old_runs_checkpoints(tmp_path):
    """Before, --overwrite removed the old checkpoints, then the Trainer refused the new
    settings: the old run could no longer be resumed."""
    out = tmp_path / "run"
    args = ["train", "--dataset", "mnist", "--epochs", "1", "--limit", "200", "--hidden-dims", "16",
            "-o", str(out), "--no-progress"]
    assert main(args) == 0
    state = (out / "checkpoints" / "epoch-0001" / "state.safetensors").read_bytes()
    refused = run(*args, "--overwrite", "--free-bits", "-1", check=False)
    assert refused.returncode == 2 and "free_bits must be a finite number" in refused.stderr
    assert (out / "checkpoints" / "epoch-0001" / "state.safetensors").read_bytes() == state
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []
    # killed while they were set aside: the next command puts them back, and --resume goes on
    (out / "checkpoints").rename(out / cvae.cli._train.ASIDE)
    more = run(*[a if a != "1" else "2" for a in args], "--resume")
    assert "resuming from" in more.stdout and "Epoch: 2 " in more.stdout


def test_a_bad_model_folder_is_one_line_of_error(tmp_path):
    """A refusal on the command line is one line: no traceback, no chain."""
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text('{"latent_dim": [1, 2]}')
    out = run("sample", "--model", str(tmp_path / "m"), "--digit", "1", check=False)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_train_compiles_by_the_trainers_default_unless_told():
    from cvae.cli import build_parser

    parse = build_parser().parse_args
    # None: the Trainer's compile="auto"; the flags force it either way.
    assert parse(["train", "-o", "out"]).compile is None
    assert parse(["train", "-o", "out", "--compile"]).compile is True
    assert parse(["train", "-o", "out", "--no-compile"]).compile is False
