#!/usr/bin/env bash
# Follow the README on a machine without a GPU, in a fresh virtual environment, and fail if
# any CUDA library was installed.
#
#   bash scripts/check_cpu_install.sh [VENV]            # default VENV: a temporary folder
#
# TORCH_INSTALL is the README's first command, the CPU build of torch and torchvision:
#   pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu
# Override it where that index cannot be reached, with another CPU build, for example
#   TORCH_INSTALL="pip install torch==2.13.0+cpu torchvision==0.28.0" bash scripts/check_cpu_install.sh
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

cuda=$(pip list --format=freeze 2>/dev/null | grep -i -E '^(nvidia-|triton==|cuda-)' || true)
build=$(python -c "import torch; print(torch.__version__, torch.version.cuda)")
size=$(du -sm "$VENV" | cut -f1)
echo "torch $build (version, CUDA it was built for); the environment takes $size MB"
if [ -n "$cuda" ] || [[ "$build" != *" None" ]]; then
    echo "FAIL: CUDA libraries were installed:"
    echo "${cuda:-torch is a CUDA build}"
    exit 1
fi
echo "OK: no CUDA library in $VENV"
