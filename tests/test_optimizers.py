"""A user's optimizer and scheduler, and gradient clipping, in the Trainer."""

import pytest
import torch
from refusals import assert_refused
from torch.optim.lr_scheduler import LambdaLR, OneCycleLR, ReduceLROnPlateau, StepLR

from cvae import ConditionalVAE, Trainer

SMALL = (1, 6, 6)


def data(n=100, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, *SMALL, generator=g), torch.randint(0, 3, (n,), generator=g)


def model():
    torch.manual_seed(0)
    return ConditionalVAE(SMALL, 3, 4, backbone_kwargs={"hidden_dims": [16]})


def fit(m, epochs=3, **kwargs):
    t = Trainer(m, data(), epochs=epochs, batch_size=32, seed=0, verbose=False, progress=False, **kwargs)
    return t, t.train()


def weights(m):
    return {k: v.clone() for k, v in m.state_dict().items()}


def test_the_users_optimizer_is_the_one_that_steps():
    m = model()
    before = weights(m)
    frozen = torch.optim.SGD(m.parameters(), lr=0.0)
    t, history = fit(m, epochs=1, optimizer=frozen)
    assert t.optimizer is frozen and history[0]["lr"] == 0.0
    assert all(torch.equal(v, before[k]) for k, v in m.state_dict().items())
    m = model()
    fit(m, epochs=1, optimizer=torch.optim.SGD(m.parameters(), lr=0.01))
    assert not all(torch.equal(v, before[k]) for k, v in m.state_dict().items())


def test_parameters_the_optimizer_leaves_out_are_not_trained():
    m = model()
    before = weights(m)
    fit(m, epochs=1, optimizer=torch.optim.Adam(m.decoder.parameters()))
    state = m.state_dict()
    assert all(torch.equal(state[k], v) for k, v in before.items() if k.startswith("encoder."))
    assert not all(torch.equal(state[k], v) for k, v in before.items() if k.startswith("decoder."))


def test_an_epoch_scheduler_sets_each_epochs_rate_and_a_step_one_each_steps():
    _, history = fit(model(), scheduler=lambda opt: StepLR(opt, step_size=1, gamma=0.5))
    assert [h["lr"] for h in history] == pytest.approx([1e-3, 5e-4, 2.5e-4])
    seen = []
    t = Trainer(model(), data(), epochs=2, batch_size=32, seed=0, verbose=False, progress=False,
                scheduler=lambda opt: LambdaLR(opt, lambda step: 1 / (step + 1)),
                scheduler_interval="step")
    t.optimizer.register_step_pre_hook(lambda o, args, kwargs: seen.append(o.param_groups[0]["lr"]))
    t.train()
    assert seen == pytest.approx([1e-3 / (i + 1) for i in range(8)])  # 4 steps an epoch


def test_a_plateau_scheduler_watches_the_validation_loss():
    m = model()
    seen = []
    # mode="max" on a falling loss: no epoch "improves" after the first, so each halves the rate.
    t = Trainer(m, data(), data(40, seed=1), epochs=3, batch_size=32, seed=0, verbose=False,
                progress=False,
                scheduler=lambda opt: ReduceLROnPlateau(opt, mode="max", patience=0, factor=0.5))
    step = t.scheduler.step
    t.scheduler.step = lambda *args: (seen.append(args), step(*args))
    history = t.train()
    assert [args[0] for args in seen] == [h["val_loss"] for h in history]
    assert [h["lr"] for h in history] == pytest.approx([1e-3, 1e-3, 5e-4])


def test_a_scheduled_run_resumes_on_the_same_curve(tmp_path):
    def run(epochs, resume=False):
        m = model()
        schedule = lambda opt: OneCycleLR(opt, max_lr=1e-2, total_steps=12)  # noqa: E731
        t = Trainer(m, data(), epochs=epochs, batch_size=32, seed=0, verbose=False, progress=False,
                    scheduler=schedule, scheduler_interval="step", checkpoint_dir=tmp_path / "ck",
                    resume=resume)
        return m, t, t.train()

    straight_model, straight, straight_history = run(3)
    (tmp_path / "ck" / "epoch-0003").rename(tmp_path / "moved")  # as if killed after epoch 2
    resumed_model, resumed, resumed_history = run(3, resume=True)
    assert resumed.scheduler.state_dict() == straight.scheduler.state_dict()
    assert [h["lr"] for h in resumed_history] == [h["lr"] for h in straight_history]
    for name, value in straight_model.state_dict().items():
        assert torch.equal(value, resumed_model.state_dict()[name]), name


def test_a_nan_puts_the_scheduler_back_with_the_model():
    m = model()
    t = Trainer(m, data(), epochs=1, batch_size=32, seed=0, verbose=False, progress=False,
                scheduler=lambda opt: StepLR(opt, 1), scheduler_interval="step")
    t.train()
    before = t.scheduler.state_dict()
    m.decoder.register_forward_hook(lambda mod, a, out: out * float("nan"))
    t.epochs = 2
    with pytest.raises(FloatingPointError):
        t.train()
    assert t.scheduler.state_dict() == before and t.global_step == 4


def test_clipping_bounds_every_step():
    def moved(**kwargs):
        m = model()
        before = torch.nn.utils.parameters_to_vector(m.parameters()).clone()
        fit(m, epochs=1, optimizer=torch.optim.SGD(m.parameters(), lr=1e-3), **kwargs)
        return (torch.nn.utils.parameters_to_vector(m.parameters()) - before).norm().item()

    # SGD moves by lr times the gradient: clipped to norm 1, at most 1e-3 a step over 4 steps.
    assert moved(max_grad_norm=1.0) <= 4e-3 * (1 + 1e-5)
    assert moved() > 0.1


def test_a_changed_optimizer_is_a_changed_setting_when_resuming(tmp_path):
    fit(model(), epochs=1, checkpoint_dir=tmp_path)
    m = model()
    with pytest.raises(ValueError, match="optimizer: None there, {'class': 'SGD'"):
        fit(m, epochs=2, checkpoint_dir=tmp_path, resume=True,
            optimizer=torch.optim.SGD(m.parameters(), lr=0.1))
    with pytest.raises(ValueError, match="max_grad_norm: None there, 1.0 here"):
        fit(model(), epochs=2, checkpoint_dir=tmp_path, resume=True, max_grad_norm=1.0)


def refused(**kwargs):
    m = kwargs.pop("model", None) or model()
    with pytest.raises((TypeError, ValueError)) as err:
        Trainer(m, data(), verbose=False, **kwargs)
    return err.value


def test_wrong_optimizers_and_schedulers_are_refused_before_training(tmp_path):
    m = model()
    other = model()
    assert_refused("train-optimizer", refused(model=m, optimizer="adam"))
    assert_refused("train-optimizer-other-model",
                   refused(model=m, optimizer=torch.optim.SGD(other.parameters(), lr=0.1)))
    assert_refused("train-optimizer-lr",
                   refused(model=m, optimizer=torch.optim.SGD(m.parameters(), lr=0.1), lr=0.1))
    assert_refused("train-scheduler", refused(scheduler="cosine"))
    other_opt = torch.optim.SGD(other.parameters(), lr=0.1)
    assert_refused("train-scheduler-other-optimizer", refused(scheduler=StepLR(other_opt, 1)))
    assert_refused("train-scheduler-twice",
                   refused(scheduler=lambda opt: StepLR(opt, 1), lr_schedule="cosine"))
    assert_refused("train-scheduler-interval", refused(scheduler_interval="batch"))
    assert_refused("train-scheduler-plateau-step",
                   refused(scheduler=ReduceLROnPlateau, scheduler_interval="step"))
    assert_refused("train-max-grad-norm", refused(max_grad_norm=0))

    class Unstorable(StepLR):
        def state_dict(self):
            return {**super().state_dict(), "rule": print}

    assert_refused("train-scheduler-state",
                   refused(scheduler=lambda opt: Unstorable(opt, 1), checkpoint_dir=tmp_path))
    assert not any(tmp_path.iterdir())
