"""The evaluation layer: how good a model is, measured the same way for every model.

The negative ELBO and IWAE bound, reconstruction error, active units, samples judged by a
classifier (accuracy, Frechet distance, precision, recall, diversity), classification by
Bayes' rule, plots, `evaluate`, which gives everything `cvae eval` prints, `sweep`, the
sample figures at every sampling setting (`cvae eval --sweep`), and, for a model with
several conditions, measures part by part (`condition_fidelity`, `latent_leakage`,
`unset_spread`), and `ReferenceClassifier`, the small CNN that `cvae.augment` trains to
judge a synthetic set and to measure whether it helps.
"""

from cvae.evaluation._evaluate import class_halves, evaluate
from cvae.evaluation.bayes import bayes_accuracy, class_log_posterior
from cvae.evaluation.classifier import load_classifier
from cvae.evaluation.conditions import condition_fidelity, latent_leakage, unset_spread
from cvae.evaluation.diversity import diversity_ratio, precision_recall
from cvae.evaluation.guidance import choose_guidance
from cvae.evaluation.metrics import (
    active_units,
    classifier_accuracy,
    elbo,
    frechet_distance,
    iwae_bound,
    reconstruction_error,
    sample_accuracy,
)
from cvae.evaluation.predictor import ConditionPredictor, fit_predictor
from cvae.evaluation.reference import ReferenceClassifier, fit_classifier
from cvae.evaluation.sweep import recommend, sweep

__all__ = ["ConditionPredictor", "ReferenceClassifier", "active_units", "bayes_accuracy",
           "choose_guidance", "class_halves", "class_log_posterior", "classifier_accuracy",
           "condition_fidelity", "diversity_ratio", "elbo", "evaluate", "fit_classifier", "fit_predictor",
           "frechet_distance", "iwae_bound", "latent_leakage", "load_classifier", "precision_recall",
           "recommend", "reconstruction_error", "sample_accuracy", "sweep", "unset_spread"]
