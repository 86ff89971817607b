#!/usr/bin/env bash
# Every benchmark on a CUDA machine, in one go, each step with a time limit of its own:
# the CUDA tests, the Trainer against the tutorial's loop, the conv recipe's step, `cvae eval`
# of the default model, sampling, then 100 epochs of the tutorial's recipe and of the conv
# recipe. Run from the repo root with CVAE_DATA set; logs go to ${OUT:-gpu-logs}/.
#
#     CVAE_DATA=../shared/data bash benchmarks/gpu.sh [CONV_EPOCHS]
#     STEPS="tests eval_conv" bash benchmarks/gpu.sh        # only the steps named
set -u
out="${OUT:-gpu-logs}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
conv_epochs="${1:-100}"
step() {  # step NAME SECONDS COMMAND...: run, log, and time one step
    local name=$1 limit=$2; shift 2
    [[ -z "${STEPS:-}" || " $STEPS " == *" $name "* ]] || return 0
    echo "== $name (limit ${limit} s): $*"
    local start=$SECONDS
    timeout "$limit" "$@" > "$out/$name.log" 2>&1
    echo "   exit $?, $((SECONDS - start)) s; last lines:"
    tail -n 4 "$out/$name.log" | sed 's/^/   /'
}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
step tests 90 python3 -m pytest -q -m "not slow" -p no:cacheprovider tests/test_cuda.py
step train_speed 80 python3 benchmarks/train_speed.py --device cuda --epochs 3
step conv_step 40 python3 benchmarks/conv_step.py --device cuda
step eval_conv 45 python3 benchmarks/eval_speed.py --device cuda
step sample 40 python3 benchmarks/sample_speed.py --device cuda --repeats 10
step tutorial_100 160 python3 -m cvae.cli train --dataset mnist --epochs 100 --device cuda \
    --no-progress --no-validation -o /tmp/gpu-mlp
step conv_recipe 230 python3 scripts/train_mnist_conv.py --device cuda --epochs "$conv_epochs" \
    -o /tmp/gpu-conv --checkpoints /tmp/gpu-conv-checkpoints --eval-limit 1000
cp /tmp/gpu-mlp/training_history.json "$out/tutorial_100_history.json" 2>/dev/null
cp /tmp/gpu-conv/training_history.json "$out/conv_history.json" 2>/dev/null
true
