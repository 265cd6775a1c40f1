package attacks

import "errors"

// Sentinel errors; returned errors wrap them with context.
var (
	// ErrUnsupported is returned by [Attack.Supports] (and Run) for a norm
	// or a model the attack cannot handle; evaluations skip such attacks.
	ErrUnsupported = errors.New("unsupported")
	// ErrUnknownNorm is returned for a norm other than L∞, L2 and L1.
	ErrUnknownNorm = errors.New("unknown norm")
	// ErrUnknownLoss is returned for an unknown loss name or kind.
	ErrUnknownLoss = errors.New("unknown loss")
	// ErrClosed is returned by a closed [ONNXModel].
	ErrClosed = errors.New("model is closed")
)

// UnsupportedError says why an attack cannot run in a norm or on a model;
// it matches [ErrUnsupported] with errors.Is.
type UnsupportedError struct {
	Attack string
	// Reason is a sentence fragment: "supports the L∞ norm only".
	Reason string
}

func (e *UnsupportedError) Error() string { return e.Attack + ": " + e.Reason }

// Is makes errors.Is(err, ErrUnsupported) hold.
func (e *UnsupportedError) Is(target error) bool { return target == ErrUnsupported }
