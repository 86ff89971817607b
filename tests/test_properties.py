"""Property-based tests: the shape and range contracts of encode, decode, sample and vae_loss
hold for any image shape, class count, latent size and batch size."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cvae import ConditionalVAE, vae_loss

PROPERTIES = settings(max_examples=30, deadline=None)


@st.composite
def models(draw):
    """A model of random size and backbone, a batch of images and labels for it, and a generator."""
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 12)), draw(st.integers(1, 12)))
    classes, latent = draw(st.integers(1, 6)), draw(st.integers(1, 8))
    backbone = draw(st.sampled_from(["mlp", "conv"]))
    if backbone == "mlp":
        settings = {"hidden_dims": draw(st.lists(st.integers(1, 24), min_size=1, max_size=2))}
    else:
        settings = {"channels": draw(st.lists(st.integers(1, 6), min_size=1, max_size=3)),
                    "hidden_dim": draw(st.integers(1, 16))}
    batch = draw(st.integers(1, 6))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**32 - 1)))
    torch.manual_seed(g.initial_seed())
    likelihood = draw(st.sampled_from(["bernoulli", "continuous-bernoulli"]))  # both in [0, 1]
    model = ConditionalVAE(shape, classes, latent, backbone, settings, likelihood=likelihood)
    x = torch.rand(batch, *shape, generator=g)
    y = torch.randint(0, classes, (batch,), generator=g)
    return model, x, y, g


@PROPERTIES
@given(models())
def test_encode_and_decode_keep_their_shapes_and_ranges(case):
    model, x, y, g = case
    b, d = len(x), model.latent_dim
    mu, logvar = model.encode(x, y)
    assert mu.shape == logvar.shape == (b, d)
    assert torch.isfinite(mu).all() and torch.isfinite(logvar).all()
    images = model.decode(torch.randn(b, d, generator=g) * 3, y)
    assert images.shape == x.shape and images.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1
    recon, mu2, _ = model(x, y, generator=g)
    assert recon.shape == x.shape and torch.equal(mu2, mu)
    logits, _, _ = model(x, y, generator=torch.Generator().manual_seed(0), return_logits=True)
    again, _, _ = model(x, y, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(logits.sigmoid(), again)


@PROPERTIES
@given(models(), st.data())
def test_wrong_shapes_are_refused(case, data):
    model, x, y, _ = case
    c, h, w = model.image_shape
    other = data.draw(st.sampled_from([(c + 1, h, w), (c, h + 1, w), (c, h, w + 1)]))
    with pytest.raises(ValueError, match="images must be"):
        model.encode(torch.rand(len(x), *other), y)
    with pytest.raises(ValueError, match="labels must be"):
        model.encode(x, torch.zeros(len(x) + 1, dtype=torch.long))
    with pytest.raises(ValueError, match="latent codes must be"):
        model.decode(torch.zeros(len(x), model.latent_dim + 1), y)


@PROPERTIES
@given(models(), st.data())
def test_sample_gives_n_images_per_label_in_range(case, data):
    model, _, _, g = case
    k = model.num_classes
    labels = data.draw(st.lists(st.integers(0, k - 1), min_size=1, max_size=4))
    n = data.draw(st.integers(1, 5))
    images = model.sample(labels, n, generator=g)
    assert images.shape == (len(labels) * n, *model.image_shape)
    assert images.min() >= 0 and images.max() <= 1
    cold = model.sample(labels[0], n, temperature=0.0)  # no noise: every image the same
    torch.testing.assert_close(cold, cold[:1].expand_as(cold))
    with pytest.raises(ValueError, match="outside this model's classes"):
        model.sample(data.draw(st.sampled_from([-1, k, k + 7])), n)


@PROPERTIES
@given(st.integers(1, 6), st.integers(1, 300), st.integers(1, 8),
       st.floats(0, 4), st.integers(0, 2**32 - 1))
def test_vae_loss_is_its_terms_and_they_are_non_negative(batch, pixels, latent, beta, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 1, 1, pixels, generator=g)
    logits = torch.randn(batch, 1, 1, pixels, generator=g) * 5
    mu = torch.randn(batch, latent, generator=g) * 2
    logvar = torch.randn(batch, latent, generator=g) * 2
    total = vae_loss(logits, x, mu, logvar, beta, logits=True)
    assert total.reconstruction >= 0 and total.kl >= -1e-5 * batch * latent
    torch.testing.assert_close(total.loss, total.reconstruction + beta * total.kl)
    # Probabilities give the same loss, where float32 holds them well (not too near 0 or 1).
    mild = logits.clamp(-5, 5)
    torch.testing.assert_close(vae_loss(mild.sigmoid(), x, mu, logvar, beta).loss,
                               vae_loss(mild, x, mu, logvar, beta, logits=True).loss,
                               rtol=1e-4, atol=1e-3)
    each = vae_loss(logits, x, mu, logvar, beta, reduction="none", logits=True)
    assert each.loss.shape == each.reconstruction.shape == each.kl.shape == (batch,)
    torch.testing.assert_close(each.loss.sum(), total.loss)
    mean = vae_loss(logits, x, mu, logvar, beta, reduction="mean", logits=True)
    torch.testing.assert_close(mean.loss, total.loss / batch)
