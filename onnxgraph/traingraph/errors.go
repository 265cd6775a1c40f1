package traingraph

import "github.com/robust-go/robust/internal/liberr"

// prefixErr puts "traingraph: " in front of *errp once; the exported
// functions defer it.
func prefixErr(errp *error) { liberr.Prefix(errp, "traingraph") }
