// Package testenv gives robust's tests what they need from the machine — the
// ONNX Runtime library, ONNX's test models, Fashion-MNIST — and decides what
// happens when it is missing: the test is skipped, or, when
// ROBUST_REQUIRE_ORT / ROBUST_REQUIRE_DATA is set (as `make test` and CI do),
// it fails, so that a green run means everything really ran. Tests skip
// only through it or its dependency-free core, package
// [github.com/robust-go/robust/internal/testenv/skip].
package testenv

import (
	"sync"
	"testing"

	"github.com/robust-go/robust/dataset"
	"github.com/robust-go/robust/internal/testenv/skip"
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
		skip.Missing(tb, skip.RequireORT, "ONNX Runtime (run scripts/setup-ort.sh)", envErr)
	}
	return env
}

// Data makes sure path exists: a file or folder installed by a Debian
// package (libonnx-testdata, dataset-fashion-mnist).
func Data(tb testing.TB, path string) {
	tb.Helper()
	skip.Data(tb, path)
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
		skip.Missing(tb, skip.RequireData, "Fashion-MNIST (run scripts/setup-debian.sh)", fashionErr)
	}
	return fashionTrain, fashionTest
}

// DataCases fails the test when a walk over a data folder checked fewer
// than min cases: an emptied or moved folder must not pass silently.
func DataCases(tb testing.TB, what string, checked, min int) {
	tb.Helper()
	if checked < min {
		tb.Fatalf("%s: %d cases checked, want at least %d: is the test data complete?", what, checked, min)
	}
}

// Short skips a slow test under `go test -short` (see [skip.Short]).
func Short(tb testing.TB, why string) {
	tb.Helper()
	skip.Short(tb, why)
}
