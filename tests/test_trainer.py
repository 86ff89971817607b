import json
import math

import pytest
import torch
from refusals import assert_refused
from torchvision import datasets, transforms

from cvae import ConditionalVAE, Trainer
from cvae import _devices as devices
from cvae.data import data_root


def fit(data, epochs=2, seed=0, **kwargs):
    torch.manual_seed(0)
    model = ConditionalVAE()
    trainer = Trainer(model, data, epochs=epochs, seed=seed, verbose=False, progress=False,
                      **kwargs)
    return model, trainer, trainer.train()


def test_loss_falls_on_real_mnist(mnist_small, mnist_test):
    small_test = (mnist_test.images[:1000], mnist_test.labels[:1000])
    _, trainer, history = fit(mnist_small, epochs=3, val_data=small_test)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[0]["loss"] > history[1]["loss"] > history[2]["loss"]
    # an untrained model scores about 543 (784 ln 2); three epochs on 2,000 images reach ~210
    assert history[-1]["loss"] < 240 < history[0]["loss"]
    for h in history:
        assert h["loss"] == pytest.approx(h["reconstruction"] + h["kl"], rel=1e-5)
        assert h["val_loss"] > 0 and h["seconds"] > 0
    assert history[-1]["val_loss"] < history[0]["val_loss"]
    assert trainer.evaluate(small_test) == trainer.evaluate(small_test)  # seeded draws


def test_same_seed_same_numbers_other_seed_other_numbers(mnist_small):
    model_a, _, a = fit(mnist_small, epochs=1, seed=7)
    model_b, _, b = fit(mnist_small, epochs=1, seed=7)
    model_c, _, c = fit(mnist_small, epochs=1, seed=8)
    assert a[0]["loss"] == b[0]["loss"] != c[0]["loss"]
    for p, q in zip(model_a.parameters(), model_b.parameters()):
        assert torch.equal(p, q)


def test_reports_the_average_loss_per_image_like_the_tutorial(mnist_small, caplog):
    torch.manual_seed(0)
    trainer = Trainer(ConditionalVAE(), mnist_small, epochs=1, seed=0, progress=False)
    history = trainer.train()
    assert caplog.messages == [f"====> Epoch: 1 Average loss: {history[0]['loss']:.4f}",
                               "cvae: one epoch is too short to judge the run; train longer"]
    # the summed loss over the epoch divided by the image count: not a sum (~7e5), a batch
    # mean (~5e4) or a pixel mean (~0.5); an untrained model scores 784 ln 2 = 543
    assert 250 < history[0]["loss"] < 543


def test_torchvision_dataset_and_tensors_train_identically(mnist_small):
    subset = torch.utils.data.Subset(
        datasets.MNIST(str(data_root()), train=True, transform=transforms.ToTensor()),
        range(2000))
    model_a, _, a = fit(subset, epochs=1)
    model_b, _, b = fit((mnist_small.images, mnist_small.labels), epochs=1)
    assert a[0]["loss"] == b[0]["loss"]
    for p, q in zip(model_a.parameters(), model_b.parameters()):
        assert torch.equal(p, q)


def test_streaming_path_trains_too(mnist_small):
    _, _, history = fit(mnist_small, epochs=2, in_memory=False, batch_size=256)
    assert history[1]["loss"] < history[0]["loss"]


def test_batch_larger_than_the_data_trains_on_what_there_is(mnist_small):
    data = (mnist_small.images[:50], mnist_small.labels[:50])
    _, _, history = fit(data, epochs=1, batch_size=128)
    assert history[0]["loss"] > 0


def test_trains_any_image_shape_and_class_count():
    g = torch.Generator().manual_seed(0)
    images, labels = torch.rand(64, 3, 8, 6, generator=g), torch.randint(0, 5, (64,), generator=g)
    model = ConditionalVAE((3, 8, 6), 5, 4)
    history = Trainer(model, (images, labels), epochs=2, batch_size=16, verbose=False).train()
    assert len(history) == 2
    assert model.sample(4, n=3).shape == (3, 3, 8, 6)


def test_uses_the_requested_device(mnist_small):
    trainer = Trainer(ConditionalVAE(), mnist_small, epochs=0, device="cpu", verbose=False)
    assert trainer.device.type == "cpu" and trainer.model.device.type == "cpu"
    assert trainer.train() == []
    default = Trainer(ConditionalVAE(), mnist_small, epochs=0, verbose=False)
    assert default.device.type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_noise_drawn_by_the_trainer_equals_the_models_own_draws(mnist_small):
    """Passing noise into the model changes nothing: the same generator, the same draws."""
    x, y = mnist_small.images[:8], mnist_small.labels[:8]
    model = ConditionalVAE()
    a = model(x, y, generator=torch.Generator().manual_seed(0))[0]
    noise = torch.randn((8, model.latent_dim), generator=torch.Generator().manual_seed(0))
    b = model(x, y, noise=noise)[0]
    assert torch.equal(a, b)


def test_mixed_precision_trains_to_a_similar_loss(mnist_small):
    data = (mnist_small.images[:512], mnist_small.labels[:512])
    _, _, full = fit(data, epochs=2)
    _, _, mixed = fit(data, epochs=2, mixed_precision=True)
    assert mixed[1]["loss"] < mixed[0]["loss"]
    assert mixed[1]["loss"] == pytest.approx(full[1]["loss"], rel=0.02)


def test_compiled_step_gives_the_same_loss_curve(mnist_small):
    data = (mnist_small.images[:512], mnist_small.labels[:512])
    # In float32 on every CPU: the claim is about compiling, not about bfloat16's rounding.
    _, _, eager = fit(data, epochs=2, mixed_precision=False)
    _, _, compiled = fit(data, epochs=2, compile=True, mixed_precision=False)
    for a, b in zip(eager, compiled):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-3)


def test_a_nan_loss_names_its_step_and_puts_the_model_back(mnist_small, tmp_path):
    data = (mnist_small.images[:640], mnist_small.labels[:640])  # 5 steps of 128 per epoch
    torch.manual_seed(0)
    model = ConditionalVAE()
    trainer = Trainer(model, data, epochs=3, seed=0, verbose=False, checkpoint_dir=tmp_path)
    trainer.epochs = 1
    trainer.train()
    after_epoch_1 = {k: v.clone() for k, v in model.state_dict().items()}
    calls = 0

    def poison(module, args, output):  # the real decoder, whose 3rd call (epoch 2, step 3) blows up
        nonlocal calls
        calls += 1
        return output * float("nan") if calls == 3 else output

    model.decoder.register_forward_hook(poison)
    trainer.epochs = 3
    with pytest.raises(FloatingPointError, match=r"nan in epoch 2, at step 3 of 5.*epoch-0001") as err:
        trainer.train()
    assert_refused("train-loss-nan", err.value)
    assert len(trainer.history) == 1
    for name, value in model.state_dict().items():
        assert torch.equal(value, after_epoch_1[name]), name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-0001"]



def test_cosine_schedule_falls_from_lr_to_zero_and_resumes_on_the_same_curve(mnist_small, tmp_path):
    data = (mnist_small.images[:512], mnist_small.labels[:512])  # 4 steps per epoch
    seen = []
    torch.manual_seed(0)
    model = ConditionalVAE()
    trainer = Trainer(model, data, epochs=2, lr=2e-3, lr_schedule="cosine", seed=0, verbose=False,
                      checkpoint_dir=tmp_path)
    trainer.optimizer.register_step_pre_hook(
        lambda opt, args, kwargs: seen.append(opt.param_groups[0]["lr"]))
    trainer.train()
    expected = [2e-3 * 0.5 * (1 + math.cos(math.pi * i / 8)) for i in range(8)]
    assert seen == pytest.approx(expected)
    straight = {k: v.clone() for k, v in model.state_dict().items()}
    (tmp_path / "epoch-0002").rename(tmp_path / "later")  # resume from epoch 1
    torch.manual_seed(0)
    again = ConditionalVAE()
    Trainer(again, data, epochs=2, lr=2e-3, lr_schedule="cosine", seed=0, verbose=False,
            checkpoint_dir=tmp_path, resume=True).train()
    for name, value in again.state_dict().items():
        assert torch.equal(value, straight[name]), name


def test_validation_and_the_metrics_give_one_negative_elbo(mnist_small):
    """One code path: Trainer.evaluate is cvae.evaluation.metrics.elbo with the Trainer's seeded noise,
    also when training weights the KL by beta != 1."""
    from cvae.evaluation.metrics import elbo

    data = (mnist_small.images[:600], mnist_small.labels[:600])
    model, trainer, history = fit(data, epochs=1, beta=4.0, val_data=data)
    val = trainer.evaluate(data)
    same = elbo(model, data, generator=torch.Generator(trainer.device).manual_seed(trainer.seed + 1))
    assert {k: val[k] for k in same} == same
    assert val["nelbo"] == pytest.approx(val["reconstruction"] + val["kl"])
    assert val["loss"] == pytest.approx(val["reconstruction"] + 4.0 * val["kl"])
    assert history[0]["val_nelbo"] == val["nelbo"] and history[0]["val_loss"] == val["loss"]


def test_validation_data_read_item_by_item_are_not_loaded_whole(mnist_small, monkeypatch):
    """With in_memory=False, evaluation reads the data batch by batch, as training does,
    and gives the figure that the same images in memory give."""
    import cvae.data
    from cvae.evaluation.metrics import elbo

    class Items(torch.utils.data.Dataset):
        def __len__(self):
            return 300

        def __getitem__(self, i):
            return mnist_small.images[i], int(mnist_small.labels[i])

    torch.manual_seed(0)
    model = ConditionalVAE()
    trainer = Trainer(model, Items(), epochs=0, seed=0, in_memory=False, verbose=False)
    in_memory = elbo(model, (mnist_small.images[:300], mnist_small.labels[:300]), batch_size=128,
                     generator=torch.Generator(trainer.device).manual_seed(trainer.seed + 1))

    def whole(*args, **kwargs):
        raise AssertionError("the data set was loaded whole")

    monkeypatch.setattr(cvae.data, "to_tensors", whole)
    monkeypatch.setattr(cvae.data._sources, "to_tensors", whole)  # as_labelled's: the one entry
    streamed = trainer.evaluate(Items(), batch_size=128)
    assert streamed["nelbo"] == pytest.approx(in_memory["nelbo"], rel=1e-6)


def test_a_training_step_counts_gradients_adams_moments_and_a_batchs_activations():
    model = ConditionalVAE()  # the tutorial's: 660,824 weights, 2,424 layer outputs an image
    one = (torch.zeros(1, 1, 28, 28), torch.zeros(1, dtype=torch.long))
    weights = sum(p.numel() for p in model.parameters())
    assert devices.step_bytes(model, 0, *one) == 3 * 4 * weights
    outputs = 400 + 400 + 20 + 20 + 400 + 400 + 784  # Linear, ReLU, mu, logvar; Linear, ReLU, Linear
    assert devices.step_bytes(model, 128, *one) == 3 * 4 * weights + 128 * 4 * outputs


def test_a_training_step_that_cannot_fit_is_refused_before_anything_is_written(monkeypatch, tmp_path):
    """Before, images too large for the backbone (40 photos of 768 x 1024 with the MLP) got
    the process killed for memory in the first step, with no word."""
    from refusals import assert_refused

    model, data = ConditionalVAE(), (torch.rand(64, 1, 28, 28), torch.arange(64) % 10)
    monkeypatch.setattr(devices, "available_bytes", lambda device: 2**20)  # 1 MiB free
    with pytest.raises(MemoryError) as err:
        Trainer(model, data, checkpoint_dir=tmp_path / "run", verbose=False)
    assert_refused("train-memory", err.value)
    # 64 images and no length: the batch the data decide, a sixteenth of them at least 16
    assert "a training step of 16 images of (1, 28, 28) would need 0.0 GiB" in str(err.value)
    assert not (tmp_path / "run").exists()


def test_making_a_trainer_draws_nothing_from_torchs_global_generator():
    data = (torch.rand(16, 1, 28, 28), torch.arange(16) % 10)
    torch.manual_seed(0)
    Trainer(ConditionalVAE(), data, seed=0, verbose=False)
    after = torch.rand(3)
    torch.manual_seed(0)
    ConditionalVAE()
    assert torch.equal(torch.rand(3), after)


def test_a_training_step_is_one_optimisation_step_the_loop_calls(mnist_small):
    """`training_step` is the loop's step: called by hand on the loop's batches in the loop's
    order, it gives the weights `train()` gives."""
    from cvae.training._feed import shuffled_batches

    data = (mnist_small.images[:256], mnist_small.labels[:256])
    torch.manual_seed(0)
    by_hand = Trainer(ConditionalVAE(), data, epochs=1, seed=0, verbose=False, progress=False,
                      mixed_precision=False)
    torch.manual_seed(0)
    looped = Trainer(ConditionalVAE(), data, epochs=1, seed=0, verbose=False, progress=False,
                     mixed_precision=False)
    looped.train()
    batches = shuffled_batches(by_hand.train_data, by_hand.model, by_hand.batch_size, by_hand.generator,
                               in_memory=True)
    terms = [by_hand.training_step(batch, epoch=1, step=i) for i, batch in enumerate(batches)]
    assert len(terms) == by_hand.steps_per_epoch == 2 and by_hand.global_step == 2
    assert terms[0].shape == (3,) and not terms[0].requires_grad
    for name, value in looped.model.state_dict().items():
        assert torch.equal(value, by_hand.model.state_dict()[name]), name


def test_the_run_record_reads_what_it_writes_and_the_older_records(tmp_path):
    from cvae.training import RunRecord

    record = RunRecord(epochs=[{"epoch": 1, "loss": 2.0, "seconds": 30.0},
                               {"epoch": 2, "loss": 1.5, "seconds": 90.0}],
                       command="cvae train -o m", seed=3, device="cpu", compiled=False,
                       settings={"lr": 1e-3}, data={"train": {"images": 10}})
    again = RunRecord.from_dict(json.loads(record.to_json()))
    assert again == record and again.minutes == 2.0
    assert json.loads(record.to_json())["run"]["train"] == {"images": 10}  # where cvae eval reads it
    assert RunRecord.read(tmp_path) is None
    # as the first bundled mnist-conv's was written, before the record had every field
    older = {"run": {"minutes": 4.4, "machine": "NVIDIA H200", "python": "3.12.3", "images": 60000},
             "epochs": [{"epoch": 1, "loss": 150.5, "seconds": 3.5}]}
    (tmp_path / "training_history.json").write_text(json.dumps(older))
    read = RunRecord.read(tmp_path)
    assert read.machine == "NVIDIA H200" and len(read.epochs) == 1 and read.command is None
    assert read.to_dict()["run"]["images"] == 60000
