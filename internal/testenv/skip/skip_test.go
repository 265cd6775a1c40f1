package skip

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// recorder is a testing.TB that records Fatalf and Skipf instead of
// stopping the test.
type recorder struct {
	testing.TB
	fatal, skipped string
}

func (r *recorder) Helper()                           {}
func (r *recorder) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }
func (r *recorder) Skipf(format string, args ...any)  { r.skipped = fmt.Sprintf(format, args...) }

func TestMissing(t *testing.T) {
	cause := errors.New("no such file")
	for _, tc := range []struct {
		require             string // value of ROBUST_REQUIRE_DATA
		wantFatal, wantSkip bool
	}{
		{"", false, true},
		{"1", true, false},
	} {
		t.Run("require="+tc.require, func(t *testing.T) {
			t.Setenv(RequireData, tc.require)
			r := &recorder{TB: t}
			Missing(r, RequireData, "the data", cause)
			if (r.fatal != "") != tc.wantFatal || (r.skipped != "") != tc.wantSkip {
				t.Fatalf("fatal %q, skipped %q; want fatal %v, skip %v", r.fatal, r.skipped, tc.wantFatal, tc.wantSkip)
			}
			msg := r.fatal + r.skipped
			for _, want := range []string{"the data", RequireData, "no such file"} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q lacks %q", msg, want)
				}
			}
		})
	}
}
