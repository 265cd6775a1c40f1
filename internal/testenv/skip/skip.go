// Package skip holds the only ways robust's tests skip themselves: a
// dependency missing from the machine ([Missing]), which fails instead
// when the matching ROBUST_REQUIRE_* variable is set (as `make test` and
// CI do; [Data] for test data), and a slow test in `go test -short`
// ([Short]).
//
// It imports nothing of robust, so that the tests of the packages
// [github.com/robust-go/robust/internal/testenv] builds on (onnxgraph, ort,
// dataset) can use it too; other tests use testenv, which calls it.
package skip

import (
	"os"
	"testing"
)

// Variables that turn a missing dependency into a test failure.
const (
	RequireORT  = "ROBUST_REQUIRE_ORT"  // the ONNX Runtime library
	RequireData = "ROBUST_REQUIRE_DATA" // Debian's test data and data sets
)

// Missing skips the test because what (e.g. "ONNX Runtime (run
// scripts/setup-ort.sh)") is missing, with err saying why, or fails it
// when the environment variable requireVar is set.
func Missing(tb testing.TB, requireVar, what string, err error) {
	tb.Helper()
	if os.Getenv(requireVar) != "" {
		tb.Fatalf("%s is set, but %s is missing: %v", requireVar, what, err)
		return
	}
	tb.Skipf("%s is missing (set %s=1 to fail instead): %v", what, requireVar, err)
}

// Data makes sure path exists, a file or folder installed by a Debian
// package (libonnx-testdata, dataset-fashion-mnist), or skips the test
// ([Missing] with [RequireData]).
func Data(tb testing.TB, path string) {
	tb.Helper()
	if _, err := os.Stat(path); err != nil {
		Missing(tb, RequireData, "test data (run scripts/setup-debian.sh)", err)
	}
}

// Short skips a slow test under `go test -short`; why says what makes it
// slow. `make test` does not pass -short, so the test runs there.
func Short(tb testing.TB, why string) {
	tb.Helper()
	if testing.Short() {
		tb.Skipf("-short: %s", why)
	}
}
