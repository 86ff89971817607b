#!/usr/bin/env bash
# Follow the README on a machine without a GPU, in a fresh virtual environment, and prove
# that the install works: torchvision imports beside torch, `cvae train` takes a step on a
# handful of images, and no CUDA library was installed.
#
#   bash scripts/check_cpu_install.sh [VENV]            # default VENV: a temporary folder
#
# TORCH_INSTALL is the README's first command, the CPU build of torch and torchvision:
#   pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu
# Override it where that index cannot be reached, with CPU builds of both from elsewhere.
# Then the README's second command installs the library: nothing it adds may bring CUDA.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-$(mktemp -d)/venv}"
TORCH_INSTALL="${TORCH_INSTALL:-pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu}"

python3 -m venv "$VENV"
# shellcheck disable=SC1091
. "$VENV/bin/activate"
echo "+ $TORCH_INSTALL"
$TORCH_INSTALL -q
echo "+ pip install -e ."
pip install -q -e .

fail() { echo "FAIL: $*"; exit 1; }
# A torchvision built for another torch installs, then fails on import ("operator
# torchvision::nms does not exist"): listing the packages would not show it.
python -c "import torch, torchvision; print(f'torch {torch.__version__} (CUDA: {torch.version.cuda}),'
f' torchvision {torchvision.__version__}')" || fail "torchvision does not import beside torch"

work=$(mktemp -d)
python - "$work/pets" <<'PY'
import sys
from pathlib import Path
from PIL import Image
for c, name in enumerate(["cat", "dog"]):
    (Path(sys.argv[1]) / name).mkdir(parents=True)
    for i in range(5):
        Image.new("L", (8, 8), 40 * c + 10 * i).save(Path(sys.argv[1]) / name / f"{i}.png")
PY
echo "+ cvae train --dataset $work/pets --epochs 1 (one step)"
cvae train --dataset "$work/pets" --epochs 1 --batch-size 8 --hidden-dims 16 --latent-dim 2 \
    --no-progress -o "$work/run" || fail "cvae train did not run"
test -f "$work/run/model.safetensors" || fail "cvae train wrote no model"

cuda=$(pip list --format=freeze 2>/dev/null | grep -i -E '^(nvidia-|triton==|cuda-)' || true)
build=$(python -c "import torch; print(torch.version.cuda)")
size=$(du -sm "$VENV" | cut -f1)
echo "the environment takes $size MB"
if [ -n "$cuda" ] || [ "$build" != "None" ]; then
    echo "FAIL: CUDA libraries were installed:"
    echo "${cuda:-torch is a CUDA build}"
    exit 1
fi
echo "OK: torchvision imports, cvae train ran, and no CUDA library is in $VENV"
