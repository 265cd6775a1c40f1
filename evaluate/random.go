package evaluate

import (
	"fmt"
	"slices"
)

// CheckRandomness refuses the robust accuracy of a deterministic suite on a
// model the sanity checks found non-deterministic (single-sample attacks
// overestimate the robustness of randomised models; use the
// autoattack-rand suite), unless allow is set. It returns an error wrapping
// [ErrRandomModel], or nil.
func (r *Report) CheckRandomness(allow bool) error {
	if allow || r.RandomSuite || !slices.ContainsFunc(r.Flags, func(f Flag) bool { return f.Code == "non-deterministic" }) {
		return nil
	}
	return fmt.Errorf("evaluate: %w: suite %s does not average over the model's randomness; evaluate it with the autoattack-rand suite", ErrRandomModel, r.Suite)
}
