// Package liberr puts the package name in front of the errors that leave
// robust's library packages, as the standard library does ("image: unknown
// format", "json: cannot unmarshal ..."): each exported function of a
// package defers [Prefix], so that its errors read "onnxgraph: load
// model.onnx: ..." however deep inside the package they were made.
package liberr

import (
	"errors"
	"fmt"
	"strings"
)

// Prefix puts "pkg: " in front of *errp unless *errp is nil or already
// starts with it, so that an exported function calling another one of its
// package does not double the prefix. The result wraps *errp: errors.Is
// and errors.As see through it. It is meant to be deferred by functions
// with a named error result:
//
//	func Load(path string) (m *Model, err error) {
//		defer liberr.Prefix(&err, "onnxgraph")
//		...
//	}
func Prefix(errp *error, pkg string) {
	if *errp == nil || strings.HasPrefix((*errp).Error(), pkg+": ") {
		return
	}
	*errp = fmt.Errorf("%s: %w", pkg, *errp)
}

// Check reports why err's message does not start with "pkg: " exactly
// once, or nil if it does. Tests of the library packages use it on the
// errors their exported functions return.
func Check(err error, pkg string) error {
	if err == nil {
		return errors.New("no error")
	}
	msg, p := err.Error(), pkg+": "
	switch {
	case !strings.HasPrefix(msg, p):
		return fmt.Errorf("%q does not start with %q", msg, p)
	case strings.Contains(msg[len(p):], p):
		return fmt.Errorf("%q names %q more than once", msg, p)
	}
	return nil
}
