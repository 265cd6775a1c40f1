#!/usr/bin/env bash
# setup-debian.sh installs the Debian packages robust's tests and demo read:
#   libonnx-testdata       ONNX's operator test models (import, runtime and gradient tests)
#   dataset-fashion-mnist  the real Fashion-MNIST idx files (/usr/share/datasets/fashion-mnist)
# With --torch it also installs what the PyTorch cross-checks (make check-torch,
# make bench-archs) run on: python3-torch, python3-torchvision, python3-onnx.
# It does nothing when everything is present. Needs root (or sudo) and apt.
set -euo pipefail

need=()
[[ -d /usr/share/libonnx-testdata/data/node ]] || need+=(libonnx-testdata)
[[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]] || need+=(dataset-fashion-mnist)
if [[ ${1:-} == --torch ]] && ! /usr/bin/python3 -c 'import torch, torchvision, onnx' 2>/dev/null; then
	need+=(python3-torch python3-torchvision python3-onnx)
fi
if ((${#need[@]} == 0)); then
	exit 0
fi
sudo=""
if [[ $(id -u) != 0 ]]; then
	command -v sudo >/dev/null || { echo "setup-debian: need root or sudo to install ${need[*]}" >&2; exit 1; }
	sudo=sudo
fi
echo "setup-debian: installing ${need[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
