package onnxgraph

import "github.com/robust-go/robust/internal/liberr"

// prefixErr puts "onnxgraph: " in front of *errp once. Exported functions
// defer it; the package's own calls of exported functions go through
// unexported ones, or return the error without adding context, so that
// the prefix is never doubled.
func prefixErr(errp *error) { liberr.Prefix(errp, "onnxgraph") }
