#!/usr/bin/env bash
# demo.sh — the README's main command (`make demo`, which first runs
# `make setup build`).
#
# Trains small-cnn on the real Fashion-MNIST twice for the same budget of
# 16 epoch-equivalents (≈7,400 gradient steps of batch 128): with free
# adversarial training (ε = 0.1, m = 8 replays, so 2 passes over the data)
# and naturally (16 passes). Then evaluates both models on the first 1000
# test images — clean, FGSM and PGD-20 (α = ε/4, random start) at ε = 0.1 —
# and prints the table. A few minutes on 2 CPU cores.
#
# Environment:
#   ROBUST      the robust binary (default bin/robust)
#   DEMO_OUT    output folder (default demo-out); its free/ and natural/ runs
#               are replaced
#   DEMO_ARGS   extra flags for both `robust train` runs (e.g. --threads 2)
set -euo pipefail

cd "$(dirname "$0")/.."
robust=${ROBUST:-bin/robust}
out=${DEMO_OUT:-demo-out}
eps=0.1
[[ -x $robust ]] || { echo "demo: $robust not found; run make build" >&2; exit 1; }
mkdir -p "$out"

# The recipe of the issue's bar; natural training gets the same number of
# gradient steps (16 passes of one step per minibatch). --log-level error
# hides ONNX Runtime's harmless "UnsqueezeElimination cannot remove node"
# warning about the training graph.
common=(--log-level error --model small-cnn --data fashion-mnist --eps "$eps" --epochs 16 --batch 128
	--lr 0.05 --momentum 0.9 --wd 5e-4 --seed 0)

declare -A seconds label=([free]="free adversarial, m=8" [natural]="natural")
for method in free natural; do
	rm -rf "${out:?}/$method"
	echo "== robust train --method $method (${common[*]})" >&2
	start=$SECONDS
	# shellcheck disable=SC2086 # DEMO_ARGS is a list of flags
	"$robust" train "${common[@]}" --method "$method" --replays 8 --out "$out/$method" ${DEMO_ARGS:-}
	seconds[$method]=$((SECONDS - start))
done

# evaluate prints "clean fgsm pgd" accuracies (in %) of a model from
# `robust eval`'s report.
evaluate() {
	"$robust" eval "$1" --data fashion-mnist --split test --n 1000 --eps "$eps" \
		--suite fgsm,pgd --independent --no-progress | tee "${1%.onnx}-eval.txt" |
		awk '/^clean accuracy/ {c=$3} $1=="fgsm" {f=$2} $1=="pgd" {p=$2} END {print c, f, p}'
}

echo >&2
echo "== robust eval (first 1000 test images, ε = $eps)" >&2
results=()
for method in free natural; do
	read -r clean fgsm pgd < <(evaluate "$out/$method/model.onnx")
	results+=("$(printf '| %-24s | %6s | %6s | %6s | %5ss |' "${label[$method]}" "$clean" "$fgsm" "$pgd" "${seconds[$method]}")")
done

cat <<EOF

small-cnn on Fashion-MNIST, 16 epoch-equivalents each; first 1000 test images, L∞ ε = $eps
| training                 |  clean |   FGSM | PGD-20 |  train |
|--------------------------|--------|--------|--------|--------|
EOF
printf '%s\n' "${results[@]}"
echo
echo "models, logs and evaluation reports: $out/{free,natural}/"
