"""The Trainer talks through logging and calls callbacks; the built-in ones write what it did."""

import csv
import json
import logging
import re
import subprocess
import sys

import pytest
import torch
from refusals import assert_refused

from cvae import ConditionalVAE, Trainer
from cvae.training.callbacks import Callback, CSVLogger, ProgressBar, TensorBoardLogger

SMALL = (1, 6, 6)


def data(n=100, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, *SMALL, generator=g), torch.randint(0, 3, (n,), generator=g)


def trainer(epochs=2, **kwargs):
    torch.manual_seed(0)
    kwargs.setdefault("verbose", False)
    kwargs.setdefault("progress", False)
    return Trainer(ConditionalVAE(SMALL, 3, 4, backbone_kwargs={"hidden_dims": [16]}), data(), epochs=epochs,
                   batch_size=32, seed=0, **kwargs)


class Recorder(Callback):
    def __init__(self):
        self.calls = []

    def on_train_start(self, trainer):
        self.calls.append(("train_start",))

    def on_epoch_start(self, trainer, epoch):
        self.calls.append(("epoch_start", epoch))

    def on_step_end(self, trainer, step, terms, images):
        self.calls.append(("step", step, terms.tolist(), images))

    def on_validation_end(self, trainer, metrics):
        self.calls.append(("validation", metrics))

    def on_epoch_end(self, trainer, record):
        self.calls.append(("epoch_end", record))

    def on_train_end(self, trainer):
        self.calls.append(("train_end",))


def test_hooks_come_in_order_with_the_step_sums_and_the_epoch_record():
    recorder = Recorder()
    t = trainer(val_data=data(40, seed=1), callbacks=[recorder])
    history = t.train()
    kinds = [c[0] for c in recorder.calls]
    epoch = ["epoch_start"] + ["step"] * 4 + ["validation", "epoch_end"]  # 100 images, batches of 32
    assert kinds == ["train_start", *epoch, *epoch, "train_end"]
    steps = [c for c in recorder.calls if c[0] == "step"]
    assert [c[1] for c in steps] == list(range(1, 9)) and t.global_step == 8
    assert [c[3] for c in steps[:4]] == [32, 32, 32, 4]
    for e, record in enumerate(history):
        sums = torch.tensor([c[2] for c in steps[4 * e:4 * e + 4]]).sum(0) / 100
        assert sums.tolist() == pytest.approx([record["loss"], record["reconstruction"], record["kl"]])
    validations = [c[1] for c in recorder.calls if c[0] == "validation"]
    assert validations[1]["loss"] == history[1]["val_loss"]
    assert [c[1] for c in recorder.calls if c[0] == "epoch_end"] == history
    assert history[0]["lr"] == 1e-3


def test_train_end_is_called_when_training_fails():
    recorder = Recorder()
    t = trainer(callbacks=[recorder])
    t.model.decoder.register_forward_hook(lambda m, a, out: out * float("nan"))
    with pytest.raises(FloatingPointError):
        t.train()
    assert recorder.calls[-1] == ("train_end",)
    assert "epoch_end" not in [c[0] for c in recorder.calls]


def test_the_epoch_line_is_logged_at_info_on_the_cvae_trainer_logger(caplog):
    caplog.set_level(logging.INFO)
    history = trainer(epochs=1, verbose=True).train()
    lines = [(r.name, r.getMessage()) for r in caplog.records if r.levelno == logging.INFO]
    assert lines == [("cvae.trainer", f"====> Epoch: 1 Average loss: {history[0]['loss']:.4f}")]
    caplog.clear()
    trainer(epochs=1, verbose=False).train()
    assert [r for r in caplog.records if r.levelno == logging.INFO] == []


SCRIPT = """
import logging, sys, torch
from cvae import ConditionalVAE, Trainer
if sys.argv[1] == "configured":
    logging.basicConfig(stream=sys.stderr, format="%(name)s|%(message)s", level=logging.WARNING)
torch.manual_seed(0)
g = torch.Generator().manual_seed(0)
data = torch.rand(40, 1, 4, 4, generator=g), torch.randint(0, 2, (40,), generator=g)
Trainer(ConditionalVAE((1, 4, 4), 2, 2, backbone_kwargs={"hidden_dims": [8]}), data, epochs=2, seed=0).train()
"""


def test_by_default_the_epoch_lines_are_printed_like_the_tutorials_and_logging_takes_over():
    plain = subprocess.run([sys.executable, "-c", SCRIPT, "plain"], capture_output=True, text=True,
                           check=True)
    lines = plain.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("====> Epoch: 1 Average loss: ")
    assert "epoch 1/2" not in plain.stderr  # no bar where stderr is not a terminal
    configured = subprocess.run([sys.executable, "-c", SCRIPT, "configured"], capture_output=True,
                                text=True, check=True)
    assert configured.stdout == ""  # not printed twice
    # (pixel noise makes the posterior collapse: its warning goes the same ways)
    shown = [line for line in configured.stderr.splitlines() if "====>" in line]
    assert shown == [f"cvae.trainer|{line}" for line in lines]


def test_the_progress_bar_shows_the_running_loss_and_leaves_a_line_per_epoch(capsys):
    history = trainer(progress=True).train()
    err = capsys.readouterr().err
    assert "epoch 1/2" in err and "epoch 2/2" in err
    for record in history:
        assert f"loss={record['loss']:.2f}, kl={record['kl']:.2f}" in err
    # One line left per epoch: the text after the last carriage return of each line.
    left = [line.rsplit("\r", 1)[-1] for line in err.split("\n") if line.strip()]
    assert len(left) == 2 and all("4/4" in line for line in left)

    # Redrawn at every step: the running averages, then the epoch's.
    t = trainer(epochs=1, progress=False, callbacks=[ProgressBar(True, mininterval=0)])
    first = t.train()[0]
    err = capsys.readouterr().err
    shown = {float(re.search(r"loss=([0-9.]+)", part)[1]) for part in err.split("\r") if "loss=" in part}
    assert len(shown) >= 3 and round(first["loss"], 2) in shown


def test_no_bar_where_the_output_is_not_a_terminal(capsys):
    trainer(epochs=1, progress=None).train()
    assert capsys.readouterr().err == ""  # pytest's captured stderr is not a terminal


def test_the_csv_log_holds_the_history_and_a_resumed_run_goes_on_in_it(tmp_path):
    path = tmp_path / "metrics.csv"
    t = trainer(epochs=2, callbacks=[CSVLogger(path)], checkpoint_dir=tmp_path / "ck",
                val_data=data(20, seed=1))
    history = t.train()
    rows = list(csv.DictReader(path.open()))
    assert [{k: float(v) for k, v in row.items()} for row in rows] == [
        {k: pytest.approx(v) for k, v in h.items()} for h in history]
    assert list(rows[0]) == ["epoch", "loss", "reconstruction", "kl", "lr", "val_loss", "val_nelbo",
                             "val_reconstruction", "val_kl", "active_units", "seconds"]

    more = trainer(epochs=3, callbacks=[CSVLogger(path)], checkpoint_dir=tmp_path / "ck",
                   val_data=data(20, seed=1), resume=True)
    more.train()
    again = list(csv.DictReader(path.open()))
    assert len(again) == 3 and again[:2] == rows


def test_a_csv_log_of_another_run_is_refused_before_training(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,loss\n1,100\n")
    t = trainer(callbacks=[CSVLogger(path)])
    before = {k: v.clone() for k, v in t.model.state_dict().items()}
    with pytest.raises(FileExistsError) as err:
        t.train()
    assert_refused("csv-log-exists", err.value)
    assert path.read_text() == "epoch,loss\n1,100\n" and t.history == []
    assert all(torch.equal(v, before[k]) for k, v in t.model.state_dict().items())
    trainer(epochs=1, callbacks=[CSVLogger(path, overwrite=True)]).train()
    assert path.read_text().startswith("epoch,loss,reconstruction,kl")
    with pytest.raises(IsADirectoryError) as err:
        CSVLogger(tmp_path)
    assert_refused("csv-log-folder", err.value)


def scalars(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_tensorboard_gets_the_epochs_and_every_nth_step(tmp_path):
    pytest.importorskip("tensorboard")
    history = trainer(callbacks=[TensorBoardLogger(tmp_path / "tb", log_every_n_steps=3)]).train()
    found = scalars(tmp_path / "tb")
    assert [step for step, _ in found["step/loss"]] == [3, 6]
    assert [step for step, _ in found["epoch/loss"]] == [4, 8]
    assert [v for _, v in found["epoch/kl"]] == pytest.approx([h["kl"] for h in history])
    assert {"epoch/reconstruction", "epoch/lr", "epoch/seconds"} <= found.keys()


def test_tensorboard_without_its_package_is_named_before_training(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed
    with pytest.raises(ImportError) as err:
        TensorBoardLogger("runs")
    assert_refused("tensorboard-missing", err.value)
    with pytest.raises(ValueError) as err:
        TensorBoardLogger("runs", log_every_n_steps=-1)
    assert_refused("tensorboard-every", err.value)


def test_a_callback_that_is_not_one_is_refused():
    with pytest.raises(TypeError) as err:
        trainer(callbacks=[print])
    assert_refused("train-callbacks", err.value)


def test_cvae_train_writes_metrics_csv_and_tensorboard_and_clips(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    from folders import make_image_folder

    from cvae.cli import main
    from cvae.training.checkpoint import read_fingerprint

    folder = make_image_folder(tmp_path / "data", classes=2, per_class=10, size=(6, 6))
    out = tmp_path / "run"
    args = ["train", "--dataset", str(folder), "--epochs", "2", "--batch-size", "8",
            "--hidden-dims", "8", "--latent-dim", "2", "-o", str(out)]
    assert main([*args, "--tensorboard", "--max-grad-norm", "5", "--free-bits", "0.1"]) == 0, \
        capsys.readouterr().err
    history = json.loads((out / "training_history.json").read_text())["epochs"]
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [float(r["loss"]) for r in rows] == pytest.approx([h["loss"] for h in history])
    assert [v for _, v in scalars(out / "tensorboard")["epoch/loss"]] == pytest.approx(
        [h["loss"] for h in history])
    fingerprint = read_fingerprint(out / "checkpoints" / "epoch-0002")
    assert fingerprint["max_grad_norm"] == 5.0 and fingerprint["free_bits"] == 0.1
    assert "====> Epoch: 2 Average loss" in capsys.readouterr().out  # the command's output
