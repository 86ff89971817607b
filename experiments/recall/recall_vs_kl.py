"""Do decoded images get sharper, and recall rise, as the codes carry more about the image?

`experiments/recall/recall_ceiling.py` shows that the bundled models' recall is held back by their
decoders' blurred means, not by the prior. A factorised decoder blurs what its code leaves
uncertain, so the question for a better design is whether codes that carry more (more KL)
give sharp enough images. This trains the tutorial's MLP family (latent size 64, one hidden
layer of 512) with several KL weights `beta` (below 1, the codes carry more than the ELBO
pays for), the same epochs and seed each, and measures, in the bundled classifier's
features as `cvae eval` does (each digit's 500 images against 500 of its test digits, drawn
as `cvae eval` draws them, averaged over digits):

- `posterior`: 500 training digits of each class decoded from a draw of `q(z | x, y)`:
  what a prior that matched the codes exactly would draw;
- `fitted prior`: 500 draws from a Gaussian fitted to those codes, one per class (mean
  and full covariance), decoded: the simplest prior learned after training;
- `N(0, I)`: samples from the standard prior, what `sample` draws.

and the KL per image (nats) on those training digits. The first line is real test digits
against other real test digits: what a perfect generator would score.

    CVAE_DATA=../shared/data python experiments/recall/recall_vs_kl.py [--epochs 15] [--betas 1 0.3 0.1 0.03]
"""

import argparse

import torch
from studies import data_root, embed, machine, test_digits

import cvae
from cvae.evaluation.classifier import load_classifier
from cvae.evaluation.diversity import precision_recall
from cvae.models.loss import kl_divergence

PER_CLASS = 500


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--betas", type=float, nargs="+", default=[1.0, 0.3, 0.1, 0.03])
    args = parser.parse_args()
    print(f"machine: {machine()}")
    train = cvae.load_dataset("mnist", data_root())
    test = cvae.load_dataset("mnist", data_root(), train=False)
    classifier = load_classifier()

    real, other = {}, {}
    for d in range(10):
        real[d], other[d] = (embed(classifier, images) for images in test_digits(test, d, PER_CLASS))
    reference = torch.tensor([precision_recall(real[d], other[d]) for d in range(10)]).mean(0)
    print(f"{args.epochs} epochs each, MLP (512 hidden, latent 64); precision / recall against"
          f" {PER_CLASS} test digits of each class")
    print(f"real test digits: {reference[0]:.3f} / {reference[1]:.3f}")
    print("  beta | KL nats | posterior     | fitted prior  | N(0, I)")
    for beta in args.betas:
        torch.manual_seed(0)
        model = cvae.ConditionalVAE(latent_dim=64, backbone_kwargs={"hidden_dims": [512]})
        cvae.Trainer(model, train, epochs=args.epochs, beta=beta, lr_schedule="cosine", seed=0,
                     verbose=False, progress=False).train()
        model.eval()
        g = torch.Generator().manual_seed(0)
        scores, kls = {"posterior": [], "fitted prior": [], "N(0, I)": []}, []
        for digit in range(10):
            x = train.images[train.labels == digit][:PER_CLASS]
            y = torch.full((len(x),), digit)
            with torch.inference_mode():
                mu, logvar = model.encode(x, y)
                z = mu + torch.randn(mu.shape, generator=g) * (0.5 * logvar).exp()
                kls.append(kl_divergence(mu, logvar).mean())
                fitted = torch.distributions.MultivariateNormal(
                    z.double().mean(0), torch.cov(z.double().T) + 1e-6 * torch.eye(z.shape[1]))
                draws = {"posterior": z, "fitted prior": fitted.sample((len(x),)).float(),
                         "N(0, I)": torch.randn(mu.shape, generator=g)}
                for kind, codes in draws.items():
                    fake = embed(classifier, model.decode(codes, y))
                    scores[kind].append(precision_recall(real[digit], fake))
        cells = [f"{p:.3f} / {r:.3f}" for p, r in (torch.tensor(s).mean(0).tolist() for s in scores.values())]
        print(f"{beta:6g} | {torch.stack(kls).mean():7.1f} | " + " | ".join(cells))


if __name__ == "__main__":
    main()
