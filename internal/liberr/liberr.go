// Package liberr puts the package name in front of the errors that leave
// robust's library packages, as the standard library does ("image: unknown
// format", "json: cannot unmarshal ..."): each exported function of a
// package defers [Prefix], so that its errors read "onnxgraph: load
// model.onnx: ..." however deep inside the package they were made.
package liberr

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// Prefix puts "pkg: " in front of *errp unless *errp is nil or already
// starts with it. An exported function that calls another one of its
// package and adds context ("load x.onnx: onnxgraph: ...") would double
// the prefix: Prefix keeps only the leading one in the message, so the
// package name appears exactly once. The result wraps *errp: errors.Is
// and errors.As see through it. It is meant to be deferred by functions
// with a named error result:
//
//	func Load(path string) (m *Model, err error) {
//		defer liberr.Prefix(&err, "onnxgraph")
//		...
//	}
func Prefix(errp *error, pkg string) {
	if *errp == nil {
		return
	}
	p := pkg + ": "
	msg := (*errp).Error()
	inner := strings.ReplaceAll(msg, ": "+p, ": ")
	if inner == msg && strings.HasPrefix(msg, p) {
		return
	}
	*errp = &prefixed{msg: p + strings.TrimPrefix(inner, p), err: *errp}
}

// prefixed is an error with the package name in front, once.
type prefixed struct {
	msg string
	err error
}

func (e *prefixed) Error() string { return e.msg }
func (e *prefixed) Unwrap() error { return e.err }

// Bare returns the error under an *fs.PathError or *os.LinkError, and err
// itself otherwise. Functions that write through a temporary file use it
// so that their messages name the user's path, not the temporary one.
// errors.Is still matches the underlying error (fs.ErrNotExist, ...).
func Bare(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

// Check reports why err's message does not start with "pkg: " exactly
// once, or nil if it does: a second prefix, as wrapping would add it
// (": pkg: "), is an error. Tests of the library packages use it on the
// errors their exported functions return.
func Check(err error, pkg string) error {
	if err == nil {
		return errors.New("no error")
	}
	msg, p := err.Error(), pkg+": "
	switch {
	case !strings.HasPrefix(msg, p):
		return fmt.Errorf("%q does not start with %q", msg, p)
	case strings.Contains(msg, ": "+p):
		return fmt.Errorf("%q names %q more than once", msg, p)
	}
	return nil
}
