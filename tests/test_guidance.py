"""Sampling settings: decoder sharpness, and classifier-free guidance with condition dropout."""

import json
import math

import pytest
import torch
from refusals import assert_refused

import cvae
from cvae import ConditionalVAE, Trainer
from cvae.cli import main
from cvae.models._guidance import guided_logits

SMALL = {"latent_dim": 3, "backbone_kwargs": {"hidden_dims": [16]}}
DATA = (torch.rand(48, 1, 28, 28, generator=torch.Generator().manual_seed(0)).round(),
        torch.arange(48) % 10)


def same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_sharpness_scales_the_logits_and_one_is_todays_sampling():
    torch.manual_seed(0)
    model = ConditionalVAE(**SMALL)
    g = torch.Generator()
    plain = model.sample(3, 8, generator=g.manual_seed(1), mixed_precision=False)
    assert torch.equal(plain, model.sample(3, 8, generator=g.manual_seed(1), mixed_precision=False,
                                           sharpness=1.0))
    sharp = model.sample(3, 8, generator=g.manual_seed(1), mixed_precision=False, sharpness=3.0)
    assert torch.allclose(sharp, torch.sigmoid(3 * torch.logit(plain, eps=1e-7)), atol=1e-4)
    assert torch.equal(cvae.sample(3, 2, generator=g.manual_seed(1), mixed_precision=False, sharpness=2.0),
                       cvae._generate.load_default_model().sample(
                           3, 2, generator=g.manual_seed(1), mixed_precision=False, sharpness=2.0))


def test_guidance_is_the_conditional_pushed_away_from_the_unconditional():
    torch.manual_seed(0)
    model = ConditionalVAE(**SMALL, condition_dropout=0.1).eval()
    z, rows = torch.randn(5, 3), model.one_hot(torch.tensor([0, 1, 2, 3, 4]))
    with torch.no_grad():
        c, u = model.decode_logits(z, rows), model.decode_logits(z, torch.zeros_like(rows))
        assert torch.allclose(guided_logits(model.decode_logits, z, rows, 2.0), c + 2.0 * (c - u), atol=1e-5)
        assert torch.equal(guided_logits(model.decode_logits, z, rows, 0.0), c)
    g = torch.Generator()
    pushed = model.sample(3, 4, generator=g.manual_seed(2), mixed_precision=False, guidance=2.0)
    z = torch.randn(4, 3, generator=g.manual_seed(2))
    assert torch.allclose(pushed, torch.sigmoid(guided_logits(model.decode_logits, z,
                                                              model.one_hot(torch.full((4,), 3)), 2.0)),
                          atol=1e-5)


@pytest.mark.parametrize("unset", ["average", "free"])
def test_condition_dropout_scores_the_drawn_share_without_labels(unset):
    torch.manual_seed(0)
    model = ConditionalVAE(**SMALL, condition_dropout=0.5, unset=unset).train()
    x, y = DATA[0][:6], DATA[1][:6]
    eps = torch.randn(6, 3, generator=torch.Generator().manual_seed(3))
    coins = torch.tensor([[-5.0], [5.0], [-5.0], [5.0], [5.0], [-5.0]])  # below 0 (the median): dropped
    dropped = torch.tensor([True, False, True, False, False, True])
    rows = model.one_hot(y) * ~dropped[:, None]
    got = model.loss(x, y, noise=torch.cat([eps, coins], 1), reduction="none")
    model.eval()
    # "average": the encoder sees every label, the decoder not the dropped ones; "free": neither
    mu, logvar = model.encoder(x, model.one_hot(y) if unset == "average" else rows)
    logits = model.decode_logits(mu + eps * torch.exp(0.5 * logvar), rows)
    want = cvae.vae_loss(logits, x, mu, logvar, logits=True, reduction="none")
    assert torch.allclose(got.loss, want.loss, atol=1e-4)
    assert model.noise_dim == 4 and ConditionalVAE(**SMALL).noise_dim == 3
    evaluated = model.loss(x, y, noise=eps, reduction="none")  # eval mode: no label dropped
    model.train()
    kept = model.loss(x, y, noise=torch.cat([eps, torch.full((6, 1), 5.0)], 1), reduction="none")
    assert torch.allclose(kept.loss, evaluated.loss, atol=1e-4)


@pytest.mark.parametrize("unset", ["average", "free"])
def test_a_dropped_image_trains_the_encoder_only_where_unset_is_free(unset):
    """`"average"` keeps the code the style that the whole label leaves: the reconstruction of
    an image whose label was dropped reaches the decoder alone (the KL still trains the encoder)."""
    torch.manual_seed(0)
    model = ConditionalVAE(**SMALL, condition_dropout=0.5, unset=unset).train()
    x, y = DATA[0][:6], DATA[1][:6]
    noise = torch.cat([torch.randn(6, 3), torch.full((6, 1), -5.0)], 1)  # every label dropped
    model.loss(x, y, noise=noise).reconstruction.backward()
    encoder = [p.grad for p in model.encoder.parameters()]
    reached = any(g is not None and bool(g.abs().sum() > 0) for g in encoder)
    assert reached == (unset == "free")
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.decoder.parameters()
               if p.requires_grad and p.dim() > 1)


@pytest.mark.parametrize("unset", ["average", "free"])
def test_the_gaussian_scale_is_fitted_to_the_images_decoded_with_their_label(unset):
    """The held-out loss scores images decoded with their label: a scale widened by the
    dropped images' larger errors would score them worse."""
    torch.manual_seed(0)
    model = ConditionalVAE(**SMALL, likelihood="gaussian", condition_dropout=0.5, unset=unset).train()
    model.likelihood.momentum = 1.0  # the running scale is the batch's
    eps = torch.randn(6, 3, generator=torch.Generator().manual_seed(3))
    coins = torch.tensor([[-5.0], [5.0], [-5.0], [5.0], [5.0], [-5.0]])  # below 0: dropped
    kept = coins[:, 0] > 0
    x, y = DATA[0][:6] + 2.0 * ~kept[:, None, None, None], DATA[1][:6]  # the dropped far off
    model.loss(x, y, noise=torch.cat([eps, coins], 1))
    model.eval()
    rows = model.one_hot(y) * kept[:, None]
    mu, logvar = model.encoder(x, model.one_hot(y) if unset == "average" else rows)
    with torch.no_grad():
        eta = model.decode_logits(mu + eps * torch.exp(0.5 * logvar), rows)
    error = (x - eta).pow(2)
    assert error[~kept].mean() > 2 * error[kept].mean()
    assert torch.allclose(model.likelihood.log_scale.exp() ** 2, error[kept].mean(), rtol=1e-4)
    model.train()  # a batch whose every label was dropped is fitted whole
    model.loss(x, y, noise=torch.cat([eps, torch.full((6, 1), -5.0)], 1))
    assert torch.isfinite(model.likelihood.log_scale).all()


def test_from_data_trains_one_label_models_to_be_guided_and_samples_with_guidance_one(tmp_path):
    from test_conditions import tensor_data

    data = cvae.LabelledImages(*DATA)
    model = ConditionalVAE.from_data(data, **SMALL)
    assert (model.condition_dropout, model.unset, model.sampling) == (0.05, "average", {"guidance": 1.0})

    def drawn(**setting):
        g = torch.Generator().manual_seed(0)
        return model.sample(3, 4, generator=g, mixed_precision=False, **setting)

    assert torch.equal(drawn(), drawn(guidance=1.0)) and not torch.equal(drawn(), drawn(guidance=0.0))
    model.save_pretrained(tmp_path / "m")
    assert ConditionalVAE.from_pretrained(tmp_path / "m").sampling == {"guidance": 1.0}
    card = (tmp_path / "m" / "README.md").read_text()
    assert "- condition dropout: 0.05 (unset: `average`)" in card and "- sampling: guidance 1 where" in card
    # A setting of the same mechanism, semi-supervision or several conditions: none added.
    for settings in ({"condition_dropout": 0.0}, {"unset": "free"}, {"sampling": {"temperature": 0.8}},
                     {"semi_supervised": True}):
        other = ConditionalVAE.from_data(data, **SMALL, **settings)
        assert other.sampling.get("guidance") is None
        assert other.condition_dropout == settings.get("condition_dropout", 0.0)
    several = ConditionalVAE.from_data(tensor_data(), **{**SMALL, "image_shape": (1, 8, 8)})
    assert (several.condition_dropout, several.unset, several.sampling) == (0.1, "data", {})
    assert ConditionalVAE(**SMALL).sampling == {}  # the tutorial's model is untouched


def test_unset_defaults_by_the_conditions_and_is_saved(tmp_path):
    assert ConditionalVAE(**SMALL).unset == "average"
    several = ConditionalVAE(**SMALL, conditions=[{"name": "digit", "kind": "categorical", "num_classes": 10},
                                                  {"name": "size", "kind": "continuous"}])
    assert several.unset == "free" and several.config["unset"] == "free"
    ConditionalVAE(**SMALL, condition_dropout=0.1, unset="free").save_pretrained(tmp_path / "m")
    assert ConditionalVAE.from_pretrained(tmp_path / "m").unset == "free"


def fit(epochs, checkpoints=None, resume=False):
    torch.manual_seed(0)
    model = ConditionalVAE(**SMALL, condition_dropout=0.3)
    Trainer(model, DATA, epochs=epochs, batch_size=16, seed=1, verbose=False,
            checkpoint_dir=checkpoints, resume=resume).train()
    return model


def test_a_resumed_run_drops_the_labels_an_uninterrupted_one_drops(tmp_path):
    straight = fit(3)
    fit(2, tmp_path)
    assert same(fit(3, tmp_path, resume=True), straight)


def test_condition_dropout_is_saved_and_older_configs_load_without_it(tmp_path):
    model = fit(1)
    model.save_pretrained(tmp_path / "m")
    loaded = ConditionalVAE.from_pretrained(tmp_path / "m")
    assert loaded.condition_dropout == 0.3 and same(loaded, model)
    assert ConditionalVAE.from_pretrained("mnist-mlp").condition_dropout == 0.0


REFUSED = {
    "sharpness-value": lambda: ConditionalVAE(**SMALL).sample(1, 2, sharpness=0),
    "sharpness-gaussian": lambda: ConditionalVAE(**SMALL, likelihood="gaussian").sample(1, 2, sharpness=2),
    "guidance-value": lambda: ConditionalVAE(**SMALL, condition_dropout=0.1).sample(1, 2, guidance=-1.0),
    "guidance-no-dropout": lambda: ConditionalVAE(**SMALL).sample(1, 2, guidance=1.0),
    "condition-dropout-value": lambda: ConditionalVAE(condition_dropout=1.0),
    "condition-dropout-semi": lambda: ConditionalVAE(semi_supervised=True, condition_dropout=0.1),
    "unset-value": lambda: ConditionalVAE(condition_dropout=0.1, unset="none"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_bad_sampling_settings_are_refused_in_one_line(case):
    with pytest.raises(ValueError) as err:
        REFUSED[case]()
    assert_refused(case, err.value)


def test_the_command_samples_sharper_and_refuses_guidance_it_cannot_give(tmp_path, capsys):
    assert main(["sample", "--digit", "3", "-n", "4", "--sharpness", "2", "-o", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").is_file()
    capsys.readouterr()
    # the default model, mnist-conv, guides; mnist-mlp was trained without condition dropout
    assert main(["sample", "--digit", "3", "--guidance", "1", "-o", str(tmp_path / "g.png")]) == 0
    capsys.readouterr()
    assert main(["sample", "--model", "mnist-mlp", "--digit", "3", "--guidance", "1",
                 "-o", str(tmp_path / "m.png")]) == 2
    err = capsys.readouterr().err
    assert "condition dropout" in err and err.count("\n") == 1 and not (tmp_path / "m.png").exists()


@pytest.fixture(scope="module")
def guided(mnist_train):
    """A model trained briefly with condition dropout, and the images it trained on."""
    data = cvae.LabelledImages(mnist_train.images[:10000], mnist_train.labels[:10000])
    torch.manual_seed(0)
    model = ConditionalVAE(condition_dropout=0.2)
    Trainer(model, data, epochs=5, seed=0, verbose=False).train()
    return model, data


def test_guidance_makes_samples_more_typical_of_their_class(guided):
    """Guided samples are recognised far more often by the bundled MNIST classifier than
    unguided ones (0.21 and 0.69 when written)."""
    from cvae.evaluation.classifier import load_classifier

    model, _ = guided
    classifier = load_classifier()
    labels = torch.arange(10)
    g = torch.Generator()

    def recognised(**settings):
        images = model.sample(labels, 100, generator=g.manual_seed(0), **settings)
        with torch.inference_mode():
            guessed = classifier(images).argmax(1)
        return (guessed == labels.repeat_interleave(100)).float().mean().item()

    plain, guided_share = recognised(), recognised(guidance=3.0)
    assert guided_share > plain + 0.2, (plain, guided_share)


def test_choose_guidance_takes_the_weight_a_classifier_of_the_data_recognises_best(guided):
    """Where guidance helps (the test above), the weight that helps is chosen, whichever order
    the weights are given in, by a classifier trained on the model's own images; the model is
    left as it was."""
    from cvae.evaluation import choose_guidance

    model, data = guided
    data = cvae.data.stratified_subset(data, 150, 0)  # the classifier's floor of 200 steps: seconds
    found = choose_guidance(model, data, weights=[3.0, 0.0], n_per_class=50)
    by_weight = {row["guidance"]: row for row in found["weights"]}
    assert found["chosen"] == 3.0 and list(by_weight) == [3.0, 0.0]
    assert by_weight[3.0]["share"] > by_weight[0.0]["share"] + 0.2, by_weight
    real = found["real"]
    assert len(real) == 10 and all(0 <= r <= 1 for r in real)
    kept = [c for c in range(10) if real[c] > 0]  # a class it never recognises in real images is left out
    for row in found["weights"]:
        shares = {c: row["recognised"][c] / real[c] for c in kept}
        assert [row["shares"][c] for c in kept] == pytest.approx(list(shares.values()))
        assert all(math.isnan(row["shares"][c]) for c in range(10) if c not in kept)
        capped = [min(1, share) for share in shares.values()]
        assert row["score"] == pytest.approx(sum(capped) / len(capped) + min(capped))
        worst = min(shares, key=shares.get)
        assert row["worst_class"] == str(worst) and row["worst_share"] == pytest.approx(shares[worst])
    assert model.sampling == {}
    # a weight alone is chosen; where guidance is given a part of the model's sampling setting
    model.set_sampling({"temperature": 0.9})
    try:
        assert choose_guidance(model, data, weights=[0.5], n_per_class=4)["chosen"] == 0.5
    finally:
        model.set_sampling(None)


@pytest.mark.parametrize("case, weights, words", [
    ("no dropout", [0.0, 1.0], "condition dropout"),
    ("negative", [-1.0], "guidance must be a finite number"),
    ("none", [], "at least one guidance weight"),
])
def test_choose_guidance_refuses_bad_weights_before_training_a_classifier(monkeypatch, case, weights, words):
    from cvae.evaluation import choose_guidance, guidance

    trained = []
    monkeypatch.setattr(guidance, "fit_classifier", lambda *a, **k: trained.append(a))
    torch.manual_seed(0)
    model = ConditionalVAE(**SMALL, condition_dropout=0.0 if case == "no dropout" else 0.1)
    with pytest.raises(ValueError, match=words):
        choose_guidance(model, cvae.LabelledImages(*DATA), weights=weights)
    assert trained == []


def test_choose_guidance_needs_labelled_images_and_one_label():
    from cvae.evaluation import choose_guidance

    torch.manual_seed(0)
    model = ConditionalVAE(**SMALL, condition_dropout=0.1)
    with pytest.raises(ValueError, match="labelled images"):
        choose_guidance(model, cvae.LabelledImages(DATA[0], torch.full((48,), -1)))
    several = ConditionalVAE(**SMALL, conditions=[{"name": "digit", "kind": "categorical", "num_classes": 10},
                                                   {"name": "size", "kind": "continuous"}])
    with pytest.raises(ValueError, match="several conditions"):
        choose_guidance(several, cvae.LabelledImages(*DATA))


# The sweep: every setting measured, one recommended


def test_a_sweep_measures_every_setting_and_recommends_the_balanced_one(mnist_test):
    from cvae.evaluation import load_classifier, recommend, sweep

    model = cvae.ConditionalVAE.from_pretrained("mnist-mlp")
    test = cvae.data.stratified_subset(mnist_test, 500, 0)
    found = sweep(model, test, load_classifier(), temperature=[1.0, 0.8], sharpness=[1.0, 2.0],
                  n_per_class=30)
    rows = found["settings"]
    assert [(r["temperature"], r["sharpness"], r["guidance"]) for r in rows] == [
        (1.0, 1.0, 0.0), (1.0, 2.0, 0.0), (0.8, 1.0, 0.0), (0.8, 2.0, 0.0)]
    for row in rows:
        assert row["precision_share"] == pytest.approx(row["precision"] / row["precision_real"])
        assert row["recognised_worst"] <= row["recognised"]
        assert row["recognised_worst_class"] in model.class_names
    assert rows[2]["recall"] < rows[0]["recall"]  # a colder prior draws less variety
    assert found["recommended"] is recommend(rows) and found["min_precision"] == 0.95
    # recognised as often as the model's own distribution (the first row), and of those the
    # most varied that look real, or the most precise where none does
    candidates = [r for r in rows if r["recognised"] >= rows[0]["recognised"]]
    precise = [r for r in candidates if r["precision_share"] >= 0.95]
    if precise:
        assert found["recommended"] in precise
        assert round(min(found["recommended"]["recall_share"], 1), 2) == max(
            round(min(r["recall_share"], 1), 2) for r in precise)
    else:
        assert found["recommended"]["precision_share"] == max(r["precision_share"] for r in candidates)


def _row(temperature, recognised, precision_share, recall_share, sharpness=1.0):
    return {"temperature": temperature, "sharpness": sharpness, "guidance": 0.0, "recognised": recognised,
            "precision_share": precision_share, "recall_share": recall_share}


def test_the_recommended_setting_is_the_most_varied_that_looks_real_and_is_recognised():
    from cvae.evaluation import recommend

    own, colder = _row(1.0, 0.990, 0.97, 0.70), _row(0.8, 0.995, 0.99, 0.75)
    warmer = _row(1.1, 0.985, 0.96, 0.92)  # more varied, bought with more samples of the wrong class
    sharper = _row(1.0, 0.992, 0.90, 0.90, sharpness=2.0)  # more varied, bought with precision
    assert recommend([own, warmer, colder, sharper]) is colder
    assert recommend([own, warmer, colder, sharper], min_precision=0.9) is sharper
    assert recommend([own, warmer]) is own
    assert recommend([own, {**warmer, "recognised": 0.990}]) is not own  # as often is enough
    # recall shares equal to the hundredth tie, and the more precise wins
    assert recommend([own, {**colder, "recall_share": 0.7496}, {**sharper, "precision_share": 0.96,
                                                               "recall_share": 0.7504}]) is not sharper
    # none as precise as asked: the most precise of those recognised as often
    vague = [_row(1.0, 0.99, 0.80, 0.90), _row(0.8, 0.99, 0.85, 0.60), _row(0.9, 0.98, 0.90, 0.70)]
    assert recommend(vague) is vague[1]
    with pytest.raises(ValueError, match="own distribution"):
        recommend([warmer, colder])
    for bad in (0, -0.5, math.nan, math.inf, True):
        with pytest.raises(ValueError, match="min_precision"):
            recommend([own, colder], min_precision=bad)


def test_the_sweeps_curve_names_the_settings_on_its_frontier():
    from cvae.evaluation.plots import _frontier

    rows = [_row(1.0, 0.99, 0.97, 0.70), _row(0.8, 0.99, 0.99, 0.60), _row(1.1, 0.99, 0.90, 0.90),
            _row(1.0, 0.99, 0.96, 0.69, sharpness=2.0), _row(0.9, 0.99, 0.97, 0.70, sharpness=3.0)]
    assert _frontier(rows) == [rows[0], rows[1], rows[2], rows[4]]  # rows[3] beaten by rows[0]


def test_a_sweep_measures_the_models_own_distribution_where_the_grid_leaves_it_out(mnist_test):
    from cvae.evaluation import load_classifier, sweep

    model = cvae.ConditionalVAE.from_pretrained("mnist-mlp")
    test = cvae.data.stratified_subset(mnist_test, 300, 0)
    rows = sweep(model, test, load_classifier(), temperature=[0.8], sharpness=[1.0],
                 n_per_class=20)["settings"]
    assert [(r["temperature"], r["sharpness"], r["guidance"]) for r in rows] == [
        (1.0, 1.0, 0.0), (0.8, 1.0, 0.0)]


def test_a_sweep_refuses_a_setting_before_drawing_anything(monkeypatch, mnist_test):
    from cvae.evaluation import load_classifier, sweep

    model = ConditionalVAE(**SMALL)
    drawn = []
    monkeypatch.setattr(ConditionalVAE, "sample", lambda *a, **k: drawn.append(a))
    with pytest.raises(ValueError, match="condition dropout"):
        sweep(model, mnist_test, load_classifier(), guidance=[0.0, 2.0])
    with pytest.raises(ValueError, match="min_precision"):
        sweep(model, mnist_test, load_classifier(), min_precision=-1)
    assert drawn == []


def test_the_recommended_setting_is_saved_and_used_by_sample(tmp_path, capsys):
    folder = tmp_path / "mine"
    ConditionalVAE.from_pretrained("mnist-mlp").save_pretrained(folder)
    (folder / "training_history.json").write_text('{"epochs": []}\n')  # the run's, kept
    code = main(["eval", str(folder), "--sweep", "--sharpness", "1", "3", "--temperature", "1",
                 "--limit", "300", "--samples-per-class", "20", "--recommend",
                 "-o", str(tmp_path / "sweep.json")])
    out = capsys.readouterr().out
    assert code == 0 and "recommended:" in out
    record = json.loads((tmp_path / "sweep.json").read_text())
    chosen = {key: record["recommended"][key] for key in ("temperature", "sharpness", "guidance")}
    loaded = ConditionalVAE.from_pretrained(folder)
    assert loaded.sampling == chosen and loaded.config["sampling"] == chosen
    g = torch.Generator()
    assert torch.equal(loaded.sample(4, 3, generator=g.manual_seed(0), mixed_precision=False),
                       loaded.sample(4, 3, generator=g.manual_seed(0), mixed_precision=False, **chosen))
    card = (folder / "README.md").read_text()
    assert card.count("## Sampling settings") == 1 and "(sweep.png)" in card
    assert "(20 samples a class, seed 0)" in card and (record["n_per_class"], record["seed"]) == (20, 0)
    assert (folder / "sweep.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "sweep-sweep.png").is_file()
    assert (folder / "training_history.json").read_text() == '{"epochs": []}\n'


@pytest.mark.parametrize("case, argv", [
    ("sweep-recommend-bundled", ["eval", "mnist-mlp", "--sweep", "--recommend"]),
    ("sweep-options-alone", ["eval", "mnist-mlp", "--sharpness", "2"]),
])
def test_sweep_options_are_refused_where_they_cannot_apply(case, argv, capsys):
    assert main(argv) == 2
    assert_refused(case, f"exit 2: {capsys.readouterr().err.strip()}")
