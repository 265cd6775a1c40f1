# robust — common tasks. `make demo` is the main job, `make test` the test suite.
SHELL := /bin/bash
GO ?= go
BIN := bin/robust
# Fuzzing budgets are counts of inputs, not durations: Go 1.26's fuzzing
# coordinator can fail a run whose -fuzztime duration expires while a worker
# is busy ("context deadline exceeded", no crasher; golang/go#75804, fixed in
# Go 1.27). 200000 inputs take about 20 s on 2 cores.
FUZZTIME ?= 200000x
STATICCHECK := $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build setup ort ort-gpu deps test test-short fuzz bench bench-archs bench-data demo lint clean check-torch

all: build

build:
	$(GO) build -o $(BIN) ./cmd/robust

# Installs what robust needs on a fresh machine: Debian test data and
# Fashion-MNIST, and the ONNX Runtime library (from the npm registry).
setup: deps ort

deps:
	scripts/setup-debian.sh

ort:
	scripts/setup-ort.sh >/dev/null

# Adds ONNX Runtime's CUDA provider libraries beside the CPU library (from
# NuGet; not exercised by CI). docs/data-and-gpu.md.
ort-gpu:
	scripts/setup-ort.sh --gpu >/dev/null

# The test suite. ROBUST_REQUIRE_* turn "library or data missing" skips into
# failures, so a green run means everything really ran.
test: setup lint
	ROBUST_REQUIRE_ORT=1 ROBUST_REQUIRE_DATA=1 $(GO) test -count=1 ./...
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./onnxgraph

test-short:
	$(GO) test -short ./...

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime 3000000x ./onnxgraph

# Speed and memory targets live in benchmarks (PyTorch reference timings run
# in the same benchmark when /usr/bin/python3 has torch).
bench: setup
	$(GO) test -run '^$$' -bench . -benchtime 3x ./...

# Evaluation speed on real architectures (internal/archbench): PGD-10 on
# torchvision ResNet-18/50, MobileNetV2, EfficientNet-B0 at 64 and 224 px,
# batch 64, 2 threads, against the same attack in PyTorch 1.13 in the same
# run; prints img/s, torch-img/s and ratio-vs-torch per case. ARCHS picks
# cases by -bench regex, e.g. ARCHS='Archs/resnet18-64$$'.
ARCHS ?= Archs
bench-archs: setup
	ROBUST_BENCH_ARCHS=1 $(GO) test ./internal/archbench -run '^$$' -bench '$(ARCHS)' -benchtime 1x -timeout 0

# The streaming loader and a whole evaluation on 20,000 generated 256×256
# JPEGs (written once under $$TMPDIR): images/s and peak RSS. Minutes.
bench-data: setup
	ROBUST_BENCH_IMAGES=20000 $(GO) test -run '^$$' -bench 'ImageFolderLoader' -benchtime 1x ./dataset
	ROBUST_BENCH_IMAGES=20000 $(GO) test -run '^$$' -bench 'EvalImageFolder' -benchtime 1x ./cmd/robust

# The main job: train small-cnn on the real Fashion-MNIST with free
# adversarial training and naturally for the same budget, evaluate both.
demo: setup build
	scripts/demo.sh

lint:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(STATICCHECK) ./...

clean:
	rm -rf bin runs demo-out

# Cross-checks robust's input and parameter gradients with PyTorch autograd on
# torchvision's classifiers (needs Debian's python3-torch and python3-torchvision;
# about an hour on 2 cores for every architecture: CHECK_TORCH_ARGS="--only resnet18,vit_b_16").
check-torch: setup
	scripts/setup-debian.sh --torch
	scripts/check_torch.py $(CHECK_TORCH_ARGS)
