"""A run's length when the user gives none, early stopping with the best weights, and the verdict."""

import logging
import math

import pytest
import torch

import cvae
from cvae import ConditionalVAE, EarlyStopping, Trainer
from cvae.training import judge
from cvae.training._length import decided_length, suited_batch_size
from cvae.training.verdict import VERDICTS


def small(n=64, seed=0, shape=(1, 6, 6), classes=2):
    """A pattern per class, each image at its own contrast: something for the code to learn."""
    g = torch.Generator().manual_seed(seed)
    patterns = torch.rand(classes, *shape, generator=torch.Generator().manual_seed(99))
    labels = torch.arange(n) % classes
    contrast = torch.rand(n, 1, 1, 1, generator=g)
    return (0.5 + (patterns[labels] - 0.5) * contrast).clamp(0, 1), labels


def model(shape=(1, 6, 6), classes=2):
    torch.manual_seed(0)
    return ConditionalVAE(shape, classes, latent_dim=2, backbone_kwargs={"hidden_dims": [16]},
                          likelihood="gaussian")


class Script(cvae.training.Callback):
    """Puts a scripted validation loss into the record, so early stopping has a known curve."""

    def __init__(self, losses):
        self.losses = losses

    def on_validation_end(self, trainer, metrics):
        metrics["loss"] = self.losses[len(trainer.history)]


def test_batch_size_suits_the_number_of_images():
    assert [suited_batch_size(n) for n in (10, 300, 482, 800, 2400, 60000)] == [16, 16, 32, 64, 128, 128]


def test_floor_and_ceiling_are_steps_scaled_by_the_epoch():
    assert decided_length(15) == (1000, 20000)  # a small set: steps decide
    assert decided_length(469) == (4690, 46900)  # MNIST at 128: 10 and 100 epochs


def test_a_run_without_a_length_or_validation_data_trains_the_floor():
    trainer = Trainer(model(), small(64), verbose=False, progress=False, seed=0, min_steps=40)
    assert trainer.batch_size == 16 and trainer.steps_per_epoch == 4
    trainer.train()
    assert trainer.global_step == 40 and len(trainer.history) == 10
    assert "without validation data" in trainer.stop_reason


def test_early_stopping_stops_after_patience_and_gives_back_the_best_weights():
    losses = [5, 4, 3, 2.5, 2.6, 2.7, 2.8, 2.9, 3.0, 3.1, 3.2]
    kept = {}

    class Keep(cvae.training.Callback):
        def on_epoch_end(self, trainer, record):
            kept[record["epoch"]] = {k: v.clone() for k, v in trainer.model.state_dict().items()}

    trainer = Trainer(model(), small(64), small(16, 1), verbose=False, progress=False, seed=0,
                      min_steps=0, callbacks=[Script(losses), Keep()],
                      early_stopping=EarlyStopping(patience=3))
    trainer.train()
    assert len(trainer.history) == 7  # best at 4, then 3 epochs without improvement
    assert trainer.kept_epoch == 4 and "3 epochs" in trainer.stop_reason
    assert all(torch.equal(v, kept[4][k]) for k, v in trainer.model.state_dict().items())
    assert not all(torch.equal(v, kept[7][k]) for k, v in trainer.model.state_dict().items())
    assert trainer.verdict == judge(trainer.history, kept_epoch=4, likelihood="gaussian")


def test_min_delta_and_the_floor_hold_the_stop_back():
    losses = [5, 4.95, 4.9, 4.9, 4.9, 4.9, 4.9, 4.9, 4.9]
    run = Trainer(model(), small(64), small(16, 1), verbose=False, progress=False, seed=0, epochs=9,
                  batch_size=16, callbacks=[Script(losses), EarlyStopping(patience=2, min_delta=0.2)])
    run.train()
    assert len(run.history) == 3  # 4.95 and 4.9 are not 0.2 below 5
    floored = Trainer(model(), small(64), small(16, 1), verbose=False, progress=False, seed=0, epochs=9,
                      min_steps=24, batch_size=16,
                      callbacks=[Script(losses), EarlyStopping(patience=2, min_delta=0.2)])
    floored.train()
    assert len(floored.history) == 6  # 24 steps of 4 an epoch


def test_an_explicit_epoch_count_keeps_0_1_0s_run_exactly(mnist_small):
    data = (mnist_small.images[:512], mnist_small.labels[:512])
    trainer = Trainer(ConditionalVAE(), data, data, epochs=3, batch_size=128, seed=0, verbose=False)
    trainer.train()
    assert len(trainer.history) == 3 and trainer.kept_epoch is None and trainer.length.stoppers == []
    assert trainer.stop_reason == "it ran the 3 epochs it was given"


def test_the_ceilings_end_the_run_before_an_epoch_that_would_pass_them():
    run = Trainer(model(), small(64), small(16, 1), verbose=False, progress=False, seed=0, max_steps=30)
    run.train()
    assert run.global_step == 28 and "30 steps" in run.stop_reason
    timed = Trainer(model(), small(64), verbose=False, progress=False, seed=0, epochs=1000, max_minutes=1e-6)
    timed.train()
    assert len(timed.history) == 1 and "minutes" in timed.stop_reason


@pytest.mark.parametrize("kwargs, words", [
    ({"early_stopping": EarlyStopping}, "early_stopping must be"),
    ({"max_steps": 10, "min_steps": 20}, "at least min_steps"),
    ({"min_steps": -1}, "min_steps must be"),
    ({"max_minutes": 0}, "max_minutes must be"),
    ({"epochs": None, "lr_schedule": "cosine"}, "needs the run's length"),
    ({"early_stopping": True}, "has none"),
])
def test_bad_length_settings_are_refused_before_any_step(kwargs, words):
    with pytest.raises(ValueError, match=words):
        Trainer(model(), small(64), verbose=False, **kwargs)


@pytest.mark.parametrize("kwargs, words", [
    ({"patience": 0}, "patience must be a positive int"),
    ({"min_delta": -0.1}, "min_delta must be a finite number of at least 0"),
    ({"monitor": ""}, "monitor names"),
])
def test_bad_early_stopping_settings_are_refused(kwargs, words):
    with pytest.raises(ValueError, match=words):
        EarlyStopping(**kwargs)


def test_a_resumed_run_keeps_the_best_weights_of_before_the_interruption(tmp_path):
    losses = [5, 4, 3, 2.5, 2.6, 2.7, 2.8, 2.9, 3.0]
    first = Trainer(model(), small(64), small(16, 1), verbose=False, progress=False, seed=0, epochs=5,
                    callbacks=[Script(losses), EarlyStopping(patience=3)], checkpoint_dir=tmp_path)
    first.train()  # epochs 1 to 5: the best is epoch 4
    best = {k: v.clone() for k, v in first.model.state_dict().items()}  # epoch 4's, given back
    resumed = Trainer(model(), small(64), small(16, 1), verbose=False, progress=False, seed=0, epochs=20,
                      callbacks=[Script(losses), EarlyStopping(patience=3)], checkpoint_dir=tmp_path,
                      resume=True)
    resumed.train()
    assert len(resumed.history) == 7 and resumed.kept_epoch == 4
    assert all(torch.equal(v, best[k]) for k, v in resumed.model.state_dict().items())


def test_the_verdicts_read_from_a_history():
    def history(values, **extra):
        return [{"epoch": i + 1, "loss": v + 1, "val_loss": v, "kl": 3.0, "active_units": 5, **extra}
                for i, v in enumerate(values)]

    assert judge(history([100 - i for i in range(20)])).kind == "still improving"
    assert judge(history([100 - i for i in range(10)] + [90.0] * 10)).kind == "converged"
    overfit = judge(history([100 - i for i in range(10)] + [91 + i for i in range(10)]))
    assert overfit.kind == "overfitting" and "at epoch 10" in overfit.message and "9.00" in overfit.message
    assert "Keep the best ones with early stopping" in overfit.message
    kept = judge(history([100 - i for i in range(10)] + [91 + i for i in range(10)]), kept_epoch=10)
    assert kept.message.startswith("overfitting, stopped in time")
    assert "epoch 10, the best, were kept" in kept.message
    # Kept an earlier epoch, but no real rise (noise): the trend decides, and the kept epoch is said.
    noisy = judge(history([100 - i for i in range(19)] + [81.05]), kept_epoch=19)
    assert noisy.kind == "still improving"
    assert noisy.message.endswith("the weights of epoch 19, the best, were kept")
    collapsed = judge(history([100 - i for i in range(5)], active_units=0))
    assert collapsed.kind == "collapsed" and "train longer" in collapsed.message
    flat = judge([{"epoch": i + 1, "loss": 50.0, "kl": 0.01, "active_units": 0} for i in range(5)])
    assert flat.kind == "collapsed" and "free_bits" in flat.message
    no_val = judge([{"epoch": i + 1, "loss": 50.0 - i * 0.001} for i in range(5)])
    assert no_val.kind == "converged" and "no held-out data" in no_val.message
    with pytest.raises(ValueError, match="empty"):
        judge([])


def test_the_run_says_its_plan_its_stop_and_its_verdict(caplog):
    with caplog.at_level(logging.INFO, logger="cvae"):
        Trainer(model(), small(64), small(16, 1), progress=False, seed=0, min_steps=8, max_steps=40).train()
    lines = [r.getMessage() for r in caplog.records]
    assert "64 images 1×6×6, 2 classes: mlp backbone, gaussian likelihood, batch 16, early stopping on 16" \
           " validation images, between 8 and 40 steps" in lines[0]
    assert any(line.startswith("cvae: stopped after epoch") for line in lines)
    verdict = lines[-1].split(": ")[1]
    assert verdict.startswith(("posterior collapse", "overfitting", "still improving", "converged"))


def cli(*args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "cvae.cli", *args], capture_output=True, text=True)


def test_cvae_train_without_epochs_holds_out_images_stops_by_itself_and_says_so(tmp_path):
    import json

    from folders import make_image_folder

    folder = make_image_folder(tmp_path / "data", classes=4, per_class=20, size=(8, 8), mode="L")
    out = cli("train", "--dataset", str(folder), "-o", str(tmp_path / "m"), "--min-steps", "20",
              "--max-steps", "60", "--patience", "2", "--no-progress")
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if line.startswith("cvae: ")]
    # 80 images: 16 held out to test, 8 of the other 64 to stop on (a tenth of each class's 16, rounded)
    assert lines[1] == ("cvae: 56 images 1×8×8, 4 classes: conv backbone, gaussian likelihood,"
                        " condition dropout 0.05 for guided samples, batch 16,"
                        " early stopping on 8 validation images, between 20 and 60 steps")
    assert lines[-1].startswith("cvae: stopped after epoch")
    run = json.loads((tmp_path / "m" / "training_history.json").read_text())["run"]
    assert run["batch_size"] == 16 and run["stopped"] in lines[-1]
    # The verdict: a line of the log, or a warning (on stderr) where the model is worse than it could be.
    assert f"cvae: {run['verdict']}" in out.stdout + out.stderr and run["verdict_kind"] in VERDICTS
    assert run["train"]["images"] == 56 and run["test"]["images"] == 16
    card = (tmp_path / "m" / "README.md").read_text()
    assert "Training stopped after epoch" in card and f"Verdict: {run['verdict']}" in card
    # the guidance weight chosen from the training images: said, saved as the one sample() uses, on the card
    chosen = [line for line in out.stdout.splitlines() if line.startswith("Sampled with guidance ")]
    assert len(chosen) == 1 and chosen[0] in card
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert chosen[0].startswith(f"Sampled with guidance {config['sampling']['guidance']:g}, chosen")
    assert all(f"{w:g}: " in chosen[0] for w in (0, 0.5, 1, 1.5, 2, 3))


@pytest.mark.parametrize("args, words", [
    (["--min-delta", "-1"], "min_delta must be a finite number of at least 0"),
    (["--min-steps", "20", "--max-steps", "10"], "must be at least min_steps"),
    (["--no-validation", "--patience", "3"], "early stopping needs held-out images"),
    (["--epochs", "5", "--validation-fraction", "0.2"], "--validation-fraction sets the images held out"),
    (["--lr-schedule", "cosine"], "needs the run's length"),
])
def test_cvae_train_refuses_bad_length_settings_in_one_line_before_any_step(tmp_path, args, words):
    from folders import make_image_folder

    folder = make_image_folder(tmp_path / "data", classes=2, per_class=5, size=(8, 8), mode="L")
    out = cli("train", "--dataset", str(folder), "-o", str(tmp_path / "m"), *args)
    assert out.returncode != 0 and words in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m" / "model.safetensors").exists() and "Epoch" not in out.stdout


def test_from_data_chooses_the_conv_backbone_for_small_sets_and_the_mlp_for_large_ones():
    assert ConditionalVAE.from_data(small(64, shape=(1, 8, 8))).config["backbone"] == "conv"
    assert ConditionalVAE.from_data(small(64, shape=(1, 6, 6))).config["backbone"] == "mlp"  # too small
    large = (torch.zeros(20_001, 1, 8, 8), torch.arange(20_001) % 2)
    assert ConditionalVAE.from_data(large).config["backbone"] == "mlp"
    assert ConditionalVAE.from_data(small(64, shape=(1, 8, 8)), backbone_kwargs={"hidden_dims": [8]}
                                    ).config["backbone"] == "mlp"  # the mlp's setting, the mlp


def _val_scale(trained, val):
    """The scale `calibrate` fits to `val` with the model's weights as they are, the model left alone."""
    saved = trained.likelihood.log_scale.detach().clone()
    trained.calibrate([val])
    fitted = trained.likelihood.log_scale.detach().clone()
    trained.likelihood.log_scale.data.copy_(saved)
    return fitted


def test_the_gaussian_scale_fitted_to_held_out_images_scores_them_best():
    """`calibrate`: the scale that makes the negative ELBO of the images it was fitted to lowest."""
    from cvae.evaluation import elbo

    trained = model()
    Trainer(trained, small(64), epochs=5, verbose=False, progress=False, seed=0).train()
    held_out = small(32, seed=1)
    trained.calibrate([held_out])
    fitted = trained.likelihood.log_scale.detach().clone()
    assert torch.allclose(fitted, fitted[0].expand_as(fitted))  # one scale for every channel

    def nelbo(factor):
        trained.likelihood.log_scale.data.copy_(fitted + math.log(factor))
        return elbo(trained, held_out, generator=torch.Generator().manual_seed(0))["nelbo"]

    assert nelbo(1.0) < min(nelbo(0.8), nelbo(1.25))
    bernoulli = ConditionalVAE((1, 6, 6), 2, latent_dim=2, backbone_kwargs={"hidden_dims": [16]})
    before = {k: v.clone() for k, v in bernoulli.state_dict().items()}
    bernoulli.calibrate([held_out])  # no scale to fit: nothing changes
    assert all(torch.equal(before[k], v) for k, v in bernoulli.state_dict().items())


def test_validation_images_that_choose_the_weights_fit_the_scale_and_a_test_set_never_does():
    """With early stopping the kept weights come with the scale fitted to the validation images
    (the training images' running error, before, made it too narrow); with a length in
    epochs the validation data may be the test set, and the scale is the training one's."""
    train, val = small(64), small(16, seed=1)
    stopped = Trainer(model(), train, val, verbose=False, progress=False, seed=0, min_steps=20, max_steps=60)
    stopped.train()
    assert torch.allclose(stopped.model.likelihood.log_scale, _val_scale(stopped.model, val))
    given = Trainer(model(), train, val, epochs=4, verbose=False, progress=False, seed=0)
    given.train()
    unvalidated = Trainer(model(), train, epochs=4, verbose=False, progress=False, seed=0)
    unvalidated.train()
    assert torch.equal(given.model.likelihood.log_scale, unvalidated.model.likelihood.log_scale)
    assert not torch.allclose(given.model.likelihood.log_scale, _val_scale(given.model, val))
