"""What limits a model's recall: its prior, or its decoder? Precision, recall and diversity of
images drawn several ways, in the bundled MNIST classifier's features.

For each digit, 500 images of each kind against 500 test digits (as `cvae eval` measures):

- `prior`: samples, `z ~ N(0, I)` (what `cvae eval` scores);
- `posterior`: training digits encoded and decoded with a draw from `q(z | x, y)`: what a
  prior that matched the encoder's codes exactly would draw;
- `reconstruction`: the same at the posterior mean;
- `training digits`: real training images, the ceiling any generator can reach;
- `posterior, sharpened` and `prior, sharpened`: the `posterior` and `prior` images with
  their logits doubled (strokes pushed towards 0 and 1), and `training digits, blurred`:
  each pixel the mean of its 3x3 neighbourhood: how much sharpness alone moves the figures
  in these features;
- `training digits, binarised`: each pixel drawn from `Bernoulli(x)`, black or white: how
  these features score binary images (what a decoder that draws pixels would make).

If `posterior` scores about as `prior`, a better prior (learned, or fitted to the codes
afterwards) will not raise recall: the decoder's blurred means are what fall short. The
last line gives what sharpening costs the likelihood: the reconstruction term (BCE, nats
an image) of the training digits from the `posterior` logits, and from them doubled.

    CVAE_DATA=../shared/data python experiments/recall/recall_ceiling.py [--model mnist-conv]
"""

import argparse

import torch
import torch.nn.functional as F
from studies import data_root, embed, machine, test_digits

import cvae
from cvae.evaluation.classifier import load_classifier
from cvae.evaluation.diversity import diversity_ratio, precision_recall


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mnist-conv")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    model = cvae.ConditionalVAE.from_pretrained(args.model).eval()
    classifier = load_classifier()
    train = cvae.load_dataset("mnist", data_root())
    test = cvae.load_dataset("mnist", data_root(), train=False)
    g = torch.Generator().manual_seed(0)

    scores, bce, count = {}, torch.zeros(2, dtype=torch.float64), 0
    for digit in range(10):
        own = train.images[train.labels == digit]
        picks = own[torch.randperm(len(own), generator=g)[:500]]
        y = torch.full((500,), digit)
        with torch.inference_mode():
            mu, logvar = model.encode(picks, y)
            noise = torch.randn(mu.shape, generator=g)
            logits = model.decode_logits(mu + noise * (0.5 * logvar).exp(), y)
            prior = model.decode_logits(torch.randn(mu.shape, generator=g), y)
            kinds = {"prior": model.likelihood.mean(prior),
                     "posterior": model.likelihood.mean(logits),
                     "reconstruction": model.decode(mu, y),
                     "training digits": picks,
                     "posterior, sharpened": model.likelihood.mean(2 * logits),
                     "prior, sharpened": model.likelihood.mean(2 * prior),
                     "training digits, blurred": F.avg_pool2d(picks, 3, 1, 1, count_include_pad=False),
                     # its own generator, so that the other rows' draws stay as they were
                     "training digits, binarised": torch.bernoulli(
                         picks, generator=torch.Generator().manual_seed(digit))}
            bce += torch.stack([model.likelihood(s * logits, picks).sum().double() for s in (1, 2)])
            count += len(picks)
        real = embed(classifier, test_digits(test, digit)[0])
        for kind, images in kinds.items():
            fake = embed(classifier, images)
            scores.setdefault(kind, []).append((*precision_recall(real, fake), diversity_ratio(real, fake)))
    print(f"{args.model}: each digit's 500 images against 500 test digits, the classifier's features")
    for kind, rows in scores.items():
        precision, recall, diversity = torch.tensor(rows).mean(0).tolist()
        print(f"{kind:>26}: precision {precision:.3f}, recall {recall:.3f}, diversity {diversity:.3f}")
    plain, sharpened = (bce / count).tolist()
    print(f"reconstruction term of the posterior draws: {plain:.2f} nats an image; with the logits"
          f" doubled: {sharpened:.2f}")


if __name__ == "__main__":
    main()
