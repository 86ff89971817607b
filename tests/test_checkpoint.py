"""Checkpoints: written atomically without pickle, and a killed run resumes exactly."""

import json
import signal
import subprocess
import sys
import time

import pytest
import torch
from processes import started
from safetensors.torch import load_file

import cvae
from cvae.training.checkpoint import latest_checkpoint

TRAIN = """
import sys, torch, cvae
from safetensors.torch import save_file
checkpoints, resume, out = sys.argv[1], sys.argv[2] == "resume", sys.argv[3]
data = cvae.load_dataset("mnist", train=True)
torch.manual_seed(0)
model = cvae.ConditionalVAE()
trainer = cvae.Trainer(model, (data.images[:20000], data.labels[:20000]), epochs=4, seed=3,
                       checkpoint_dir=None if checkpoints == "-" else checkpoints, resume=resume)
trainer.train()
save_file(model.state_dict(), out)
"""


@pytest.mark.slow  # SIGKILL and resume
def test_a_run_killed_mid_epoch_resumes_to_the_same_weights(tmp_path):
    checkpoints = tmp_path / "checkpoints"
    with started([sys.executable, "-c", TRAIN, str(checkpoints), "fresh", "-"],
                 stdout=subprocess.DEVNULL) as run:
        deadline = time.monotonic() + 240
        while not (checkpoints / "epoch-0002").exists():  # appears whole: it is renamed into place
            assert run.poll() is None, run.stderr.read()
            assert time.monotonic() < deadline, "no checkpoint after 4 minutes"
            time.sleep(0.01)
        run.send_signal(signal.SIGKILL)  # in the middle of epoch 3
        run.wait()
    assert latest_checkpoint(checkpoints).name == "epoch-0002"
    assert not list(checkpoints.glob(".*.tmp"))

    resumed = subprocess.run([sys.executable, "-c", TRAIN, str(checkpoints), "resume",
                              str(tmp_path / "resumed.safetensors")], capture_output=True,
                             text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stdout and "epoch 2)" in resumed.stdout
    assert "Epoch: 1 " not in resumed.stdout and "Epoch: 4 " in resumed.stdout
    straight = subprocess.run([sys.executable, "-c", TRAIN, "-", "fresh",
                               str(tmp_path / "straight.safetensors")], capture_output=True,
                              text=True)
    assert straight.returncode == 0, straight.stderr
    a = load_file(tmp_path / "resumed.safetensors")
    b = load_file(tmp_path / "straight.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    # the history carried over: the same per-epoch losses as the uninterrupted run
    assert resumed.stdout.splitlines()[-2:] == straight.stdout.splitlines()[-2:]


def test_checkpoint_files_are_safetensors_and_json_and_old_ones_are_pruned(mnist_small, tmp_path):
    model = cvae.ConditionalVAE()
    trainer = cvae.Trainer(model, mnist_small, epochs=3, seed=0, verbose=False,
                           checkpoint_dir=tmp_path)
    history = trainer.train()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-0002", "epoch-0003"]
    newest = tmp_path / "epoch-0003"
    assert sorted(p.name for p in newest.iterdir()) == ["state.safetensors", "trainer.json"]
    meta = json.loads((newest / "trainer.json").read_text())
    assert meta["epoch"] == 3 and meta["history"] == history
    tensors = load_file(newest / "state.safetensors")
    assert torch.equal(tensors["model.decoder.net.2.weight"], model.decoder.net[2].weight.cpu())
    assert any(k.startswith("optimizer.") and k.endswith(".exp_avg_sq") for k in tensors)


def test_resume_without_checkpoints_starts_fresh_and_needs_a_folder(mnist_small, tmp_path):
    trainer = cvae.Trainer(cvae.ConditionalVAE(), mnist_small, epochs=1, verbose=False,
                           checkpoint_dir=tmp_path / "none-yet", resume=True)
    assert trainer.history == [] and len(trainer.train()) == 1
    with pytest.raises(ValueError, match="checkpoint_dir"):
        cvae.Trainer(cvae.ConditionalVAE(), mnist_small, resume=True)



def test_resuming_with_other_data_or_settings_is_refused_unless_asked(tmp_path):
    """Before, a resume took the checkpoint's learning rate over the one asked for, without a
    word, and went on with any data."""
    g = torch.Generator().manual_seed(0)
    data = (torch.rand(64, 1, 28, 28, generator=g), torch.randint(0, 10, (64,), generator=g))
    other = (data[0].flip(0), data[1])
    cvae.Trainer(cvae.ConditionalVAE(), data, epochs=1, checkpoint_dir=tmp_path, verbose=False).train()
    with pytest.raises(ValueError, match=r"other data or settings: data: '64 images, sha256"):
        cvae.Trainer(cvae.ConditionalVAE(), other, epochs=2, checkpoint_dir=tmp_path, resume=True,
                     verbose=False)
    trainer = cvae.Trainer(cvae.ConditionalVAE(), other, epochs=2, lr=5e-4, checkpoint_dir=tmp_path,
                           resume=True, allow_changes=True, verbose=False)
    assert len(trainer.history) == 1
    assert [group["lr"] for group in trainer.optimizer.param_groups] == [5e-4]
    trainer.train()
    assert cvae.training.checkpoint.read_fingerprint(latest_checkpoint(tmp_path))["lr"] == 5e-4


def test_a_checkpoint_from_before_a_new_model_setting_resumes(tmp_path):
    """A checkpoint written before `semi_supervised` and `classifier_weight` existed records a
    model config without them; the same model, with those settings at their defaults, is not
    "another model" (it was refused as one)."""
    g = torch.Generator().manual_seed(0)
    data = (torch.rand(64, 1, 28, 28, generator=g), torch.randint(0, 10, (64,), generator=g))
    cvae.Trainer(cvae.ConditionalVAE(), data, epochs=1, checkpoint_dir=tmp_path, verbose=False).train()
    meta_file = latest_checkpoint(tmp_path) / "trainer.json"
    meta = json.loads(meta_file.read_text())
    for key in ("semi_supervised", "classifier_weight"):
        del meta["fingerprint"]["model"][key]
    meta_file.write_text(json.dumps(meta))
    trainer = cvae.Trainer(cvae.ConditionalVAE(), data, epochs=2, checkpoint_dir=tmp_path,
                           resume=True, verbose=False)
    assert len(trainer.history) == 1
    # A setting that the checkpoint records, changed, is still another model.
    with pytest.raises(ValueError, match="another model: latent_dim: 20 there, 8 here"):
        cvae.Trainer(cvae.ConditionalVAE(latent_dim=8), data, epochs=2, checkpoint_dir=tmp_path,
                     resume=True, verbose=False)
