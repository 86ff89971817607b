"""How the shapes demo's predictor reads the shape of real images and of samples, as it trains.

The predictor is the instrument of the demo's "shape recognised" figure
(`scripts/train_shapes.py`). Every image of the set is a function of its attributes, so an
exact reader would read every real shape right; what it misreads of the real images is the
instrument's error, not the model's. This trains `fit_predictor`'s predictor (the same
loop, seed and data) and reads, every 10 epochs, the shape of the first 2,000 held-out
images and of one sample for each of their conditions, with the sizes of those misread.

    python scripts/make_shapes.py /tmp/shapes --images 20000
    python experiments/shapes-predictor/readings.py /tmp/shapes /tmp/shapes-model --epochs 60
"""

import argparse

import torch

import cvae
from cvae.evaluation.predictor import ConditionPredictor


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="the shapes set (scripts/make_shapes.py)")
    parser.add_argument("model", help="a model trained by scripts/train_shapes.py")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--every", type=int, default=10)
    args = parser.parse_args()
    train, test = cvae.train_test_split(cvae.data.load_image_folder(args.folder), seed=0)
    model = cvae.ConditionalVAE.from_pretrained(args.model)
    conditions = model.conditions
    table = test.labels[:2000]
    asked = table[:, conditions.columns("shape")][:, 0].long()
    sizes = table[:, conditions.columns("size")][:, 0]
    samples = model.sample(table, 1, generator=torch.Generator().manual_seed(0))
    real = test.images[:2000]
    # fit_predictor's loop, read every few epochs (the same seeds: its epoch 30 is the demo's predictor)
    images, labels = train.images.float(), train.labels.float()
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    predictor = ConditionPredictor(images.shape[1], conditions)
    optimizer = torch.optim.Adam(predictor.parameters(), lr=1e-3)
    print("| predictor epochs | real read right | samples read right | sizes of the real misread"
          " | of the samples |")
    print("| --- | --- | --- | --- | --- |")
    for epoch in range(1, args.epochs + 1):
        predictor.train()
        for idx in torch.randperm(len(images), generator=generator).split(128):
            optimizer.zero_grad()
            predictor.loss(images[idx], labels[idx]).backward()
            optimizer.step()
        if epoch % args.every == 0:
            predictor.eval()
            wrong = [predictor.measure(x)["shape"].argmax(1) != asked for x in (real, samples)]
            print(f"| {epoch} | {1 - wrong[0].float().mean():.2%} | {1 - wrong[1].float().mean():.2%} | "
                  f"{_sizes(sizes[wrong[0]])} | {_sizes(sizes[wrong[1]])} |", flush=True)


def _sizes(values):
    """How many misread shapes had each size (rounded to a pixel): `5: 7, 6: 5`."""
    rounded = values.round().long()
    return ", ".join(f"{s}: {int((rounded == s).sum())}" for s in rounded.unique().tolist())


if __name__ == "__main__":
    main()
