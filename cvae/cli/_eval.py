"""`cvae eval`: every metric of `cvae.evaluation` on a test set, printed and as JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cvae.cli._run_data import as_trained, data_options, registered
from cvae.cli._train import given


def run_eval(args: argparse.Namespace) -> None:
    """`cvae eval`: every figure of `cvae.evaluation.evaluate` on a test set, printed and as JSON."""
    from cvae._devices import default_device
    from cvae._files import output_path, write_text
    from cvae.data._labelled import class_names_of, conditions_of
    from cvae.data._named import get_dataset, load_dataset
    from cvae.data._splits import stratified_subset
    from cvae.evaluation import evaluate
    from cvae.evaluation._report import format_results
    from cvae.evaluation.classifier import load_classifier
    from cvae.hub._pretrained import training_record
    from cvae.models.conditional_vae import ConditionalVAE

    output_path(args.output)  # a device or a folder is refused before the evaluation, not after it
    swept = [f"--{name.replace('_', '-')}"
             for name in ("temperature", "sharpness", "guidance", "min_precision", "recommend")
             if getattr(args, name) not in (None, False)]
    if swept and not args.sweep:
        raise ValueError(f"{', '.join(swept)} go with --sweep, which tries the sampling settings")
    device = args.device or default_device()
    model = ConditionalVAE.from_pretrained(args.model, map_location=device)
    trained = training_record(args.model)  # read once: the split settings, the loss curves
    as_trained(args, trained)
    options = data_options(args)
    dataset = get_dataset(args.dataset, options.pop("revision", None))  # opened once
    if not model.conditions.is_single and not registered(args.dataset) and args.conditions is None:
        options["conditions"] = model.conditions  # read with the model's classes and tags
    test = load_dataset(dataset, args.data_root, train=False, **options)
    # the same index must mean the same class
    model.match_conditions(conditions_of(test), class_names_of(test), "test")
    if args.limit:
        test = stratified_subset(test, args.limit, args.seed)
    classifier = (load_classifier(dataset.classifier, device=device) if dataset.classifier
                  else None)
    if args.sweep:
        from cvae.cli._sweep import run_sweep

        return run_sweep(args, model, test, classifier)
    settings = given(args, {"k": "k", "iwae_images": "iwae_images", "samples_per_class": "n_per_class"})
    if args.full:
        settings["iwae_images"] = None  # every test image
    if args.float32:  # the bound's network passes, and Bayes': float32 asked, or the default
        settings["mixed_precision"] = False
    results = evaluate(model, test, classifier=classifier, seed=args.seed, bayes_k=args.bayes_k,
                       **settings)
    print(f"{args.model} on {len(test)} images of {args.dataset}, {test.split} split"
          f" (seed {args.seed})")
    print(format_results(results, model.likelihood.label))
    if not model.conditions.is_single:
        from cvae.cli._eval_conditions import condition_figures, format_conditions

        train = load_dataset(dataset, args.data_root, train=True, **options)
        results["conditions"] = condition_figures(model, train, test, args.seed)
        print(format_conditions(results["conditions"]))
    record = {"model": str(args.model), "dataset": args.dataset, "split": test.split, **results}
    write_text(args.output, json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.output}")
    if args.plots:
        from cvae.evaluation.plots import plot_latent_space, plot_loss_curves, plot_samples

        out = Path(args.plots)
        written = [plot_samples(model, out / "samples.png", seed=args.seed),
                   plot_latent_space(model, test, out / "latent_space.png")]
        if trained.get("epochs"):
            written.append(plot_loss_curves(trained["epochs"], out / "loss_curves.png"))
        print("wrote " + ", ".join(str(p) for p in written))
