// Package skip holds the only ways robust's tests skip themselves: a
// dependency missing from the machine ([Missing]), which fails instead
// when the matching ROBUST_REQUIRE_* variable is set (as `make test` and
// CI do), and a slow test in `go test -short` ([Short]).
//
// It imports nothing of robust, so that the tests of the packages
// [github.com/robust-go/robust/internal/testenv] builds on (ort, dataset)
// can use it too; other tests use testenv, which calls it.
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

// Short skips a slow test under `go test -short`; why says what makes it
// slow. `make test` does not pass -short, so the test runs there.
func Short(tb testing.TB, why string) {
	tb.Helper()
	if testing.Short() {
		tb.Skipf("-short: %s", why)
	}
}
