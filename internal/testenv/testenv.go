// Package testenv gives robust's tests what they need from the machine — the
// ONNX Runtime library, ONNX's test models, Fashion-MNIST — and decides what
// happens when it is missing: the test is skipped, or, when
// ROBUST_REQUIRE_ORT / ROBUST_REQUIRE_DATA is set (as `make test` and CI do),
// it fails, so that a green run means everything really ran.
package testenv

import (
	"os"
	"sync"
	"testing"

	"github.com/robust-go/robust/dataset"
	"github.com/robust-go/robust/ort"
)

var (
	envOnce sync.Once
	env     *ort.Env
	envErr  error
)

// ORT returns a CPU Env with two intra-op threads (the size of robust's
// machines) that logs errors only.
func ORT(tb testing.TB) *ort.Env {
	tb.Helper()
	envOnce.Do(func() {
		if _, envErr = ort.FindLibrary(""); envErr == nil {
			env, envErr = ort.Init(ort.Options{Threads: 2, LogLevel: ort.LogError})
		}
	})
	if envErr != nil {
		missing(tb, "ROBUST_REQUIRE_ORT", "ONNX Runtime (run scripts/setup-ort.sh)", envErr)
	}
	return env
}

// Data makes sure path exists: a file or folder installed by a Debian
// package (libonnx-testdata, dataset-fashion-mnist).
func Data(tb testing.TB, path string) {
	tb.Helper()
	if _, err := os.Stat(path); err != nil {
		missing(tb, "ROBUST_REQUIRE_DATA", "test data (run scripts/setup-debian.sh)", err)
	}
}

var (
	fashionOnce               sync.Once
	fashionTrain, fashionTest *dataset.Dataset
	fashionErr                error
)

// FashionMNIST returns the real Fashion-MNIST training and test sets, loaded
// once per test binary. Tests must not modify them.
func FashionMNIST(tb testing.TB) (train, test *dataset.Dataset) {
	tb.Helper()
	fashionOnce.Do(func() {
		if fashionTrain, fashionErr = dataset.LoadFashionMNIST("", true); fashionErr == nil {
			fashionTest, fashionErr = dataset.LoadFashionMNIST("", false)
		}
	})
	if fashionErr != nil {
		missing(tb, "ROBUST_REQUIRE_DATA", "Fashion-MNIST (run scripts/setup-debian.sh)", fashionErr)
	}
	return fashionTrain, fashionTest
}

func missing(tb testing.TB, requireVar, what string, err error) {
	tb.Helper()
	if os.Getenv(requireVar) != "" {
		tb.Fatalf("%s is set, but %s is missing: %v", requireVar, what, err)
	}
	tb.Skipf("%s is missing (set %s=1 to fail instead): %v", what, requireVar, err)
}
