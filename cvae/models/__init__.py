"""The models layer: the conditional VAE, its backbones and likelihoods, its posterior and loss.

Everything here is about the network and its objective; nothing reads data sets, trains,
or measures. A `ConditionalVAE` is built from named parts, each in a registry
(`register_backbone`, `register_likelihood`), saves and loads through the Hub layer's
mixin, and computes its own loss (`model.loss`), which the Trainer minimises.
"""

from cvae.models.backbones import Backbone, get_backbone, list_backbones, register_backbone
from cvae.models.conditional_vae import ConditionalVAE
from cvae.models.likelihoods import Likelihood, get_likelihood, list_likelihoods, register_likelihood
from cvae.models.loss import VAELoss, kl_divergence, vae_loss
from cvae.models.posterior import DiagonalGaussian

__all__ = ["Backbone", "ConditionalVAE", "DiagonalGaussian", "Likelihood", "VAELoss", "get_backbone",
           "get_likelihood", "kl_divergence", "list_backbones", "list_likelihoods", "register_backbone",
           "register_likelihood", "vae_loss"]
