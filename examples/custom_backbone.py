"""Plug in a backbone of your own: register it by name, train it, save it, load it back.

A registered backbone is rebuilt by `from_pretrained` from `config.json` (its name and
settings), with no pickle: the loading process only needs to import the module that
registers it, as this script does for itself.

    python examples/custom_backbone.py [--epochs 5] [--limit 60000] [-o residual-cvae]
"""

import argparse

import torch
from torch import nn

import cvae


class Residual(nn.Module):
    """x + MLP(x): a block that starts as the identity, so depth does not slow learning."""

    def __init__(self, width: int):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.SiLU(),
                                 nn.Linear(width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class ResidualEncoder(nn.Module):
    """The encoder interface: (images (B, C, H, W), one-hot (B, K)) -> (mu, logvar)."""

    def __init__(self, image_shape, num_classes, latent_dim, width=256, blocks=2):
        super().__init__()
        c, h, w = image_shape
        self.net = nn.Sequential(nn.Linear(c * h * w + num_classes, width),
                                 *[Residual(width) for _ in range(blocks)], nn.SiLU())
        self.heads = nn.Linear(width, 2 * latent_dim)

    def forward(self, x, y):
        mu, logvar = self.heads(self.net(torch.cat([x.flatten(1), y], 1))).chunk(2, dim=1)
        return mu, logvar


class ResidualDecoder(nn.Module):
    """The decoder interface: (z (B, D), one-hot (B, K)) -> logits (B, C, H, W)."""

    def __init__(self, image_shape, num_classes, latent_dim, width=256, blocks=2):
        super().__init__()
        self.image_shape = tuple(image_shape)
        c, h, w = image_shape
        self.net = nn.Sequential(nn.Linear(latent_dim + num_classes, width),
                                 *[Residual(width) for _ in range(blocks)], nn.SiLU(),
                                 nn.Linear(width, c * h * w))

    def forward(self, z, y):
        return self.net(torch.cat([z, y], 1)).view(-1, *self.image_shape)


# The settings after the first three arguments (width, blocks) go into config.json.
cvae.register_backbone("residual-mlp", ResidualEncoder, ResidualDecoder, overwrite=True)

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--limit", type=int, default=None, help="use the first N images only")
    parser.add_argument("-o", "--output", default="residual-cvae")
    args = parser.parse_args()

    data = cvae.load_dataset("mnist", train=True)
    torch.manual_seed(0)
    model = cvae.ConditionalVAE(backbone="residual-mlp", backbone_kwargs={"blocks": 3},
                                class_names=data.class_names)
    cvae.Trainer(model, (data.images[: args.limit], data.labels[: args.limit]),
                 epochs=args.epochs, seed=0).train()
    model.save_pretrained(args.output)

    reloaded = cvae.ConditionalVAE.from_pretrained(args.output)
    print("config:", reloaded.config["backbone"], reloaded.config["backbone_kwargs"])
    same = all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 reloaded.state_dict().values()))
    print("reloaded weights identical:", same)
    cvae.save_grid(reloaded.sample(list(range(10)), n=8), f"{args.output}/digits.png", nrow=8, scale=2)
    print(f"wrote {args.output}/digits.png")
