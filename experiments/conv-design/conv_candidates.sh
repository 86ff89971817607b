#!/usr/bin/env bash
# Train several designs of the conv MNIST model side by side on one GPU, then measure each
# with `cvae eval` there: how the design of the bundled `mnist-conv` was chosen. Each line of
# CANDIDATES is "NAME LATENT_DIM RECIPE_JSON"; logs, weights and one JSON of figures per
# design go to ${OUT:-candidates}/ (EVAL=0: no measuring). Run from the repo root with CVAE_DATA set:
#
#     CVAE_DATA=../shared/data EPOCHS=60 bash experiments/conv-design/conv_candidates.sh
set -u
out="${OUT:-candidates}"
epochs="${EPOCHS:-60}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
default='now64 64 {"hidden_dim": 928}
deeper 32 {"hidden_dim": 896, "extra_convs": 1}
deeper64 64 {"hidden_dim": 896, "extra_convs": 1}
three 64 {"channels": [32, 64, 128], "hidden_dim": 1024, "extra_convs": 1}'
device="${DEVICE:-cuda}"
while read -r name latent recipe; do
    [[ -n "$name" ]] || continue
    ( python3 scripts/train_mnist_conv.py --device "$device" --epochs "$epochs" --train-only ${TRAIN_ARGS:-} \
          --latent-dim "$latent" --recipe "$recipe" -o "$out/$name" \
          --checkpoints "/tmp/candidates/$name" > "$out/$name.log" 2>&1 &&
      if [[ "${EVAL:-1}" == 1 ]]; then python3 -m cvae.cli eval "$out/$name" --device "$device" ${EVAL_ARGS:-} -o "$out/$name.json" \
          >> "$out/$name.log" 2>&1; fi; echo "$name: exit $?" ) &
done <<< "${CANDIDATES:-$default}"
wait
