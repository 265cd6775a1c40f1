package onnxgraph

// SubpixelAll makes SpecializeFrozen rewrite every ConvTranspose the
// sub-pixel form can express, not only those where it measured faster, and
// returns a function restoring the default.
func SubpixelAll() (restore func()) {
	subpixelAll = true
	return func() { subpixelAll = false }
}
