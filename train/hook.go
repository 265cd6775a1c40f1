package train

// hookPoint names a point of a training step at which a Trainer's hook,
// when set, observes it. The hook exists for the package's tests, which
// check free, PGD and fast training's perturbation arithmetic on the
// buffers the steps really use (t.delta, t.clean, t.eng.x, t.eng.xgrad);
// it is nil otherwise and never set by exported API.
type hookPoint int

const (
	// hookStart follows the random start of an attack (PGD and fast
	// training, and their evaluations): eng.x holds the starting point.
	hookStart hookPoint = iota
	// hookAttackGrad follows an attack step's gradient pass, before the
	// step: eng.xgrad is ∂loss/∂input at eng.x.
	hookAttackGrad
	// hookAttackStep follows an attack step: eng.x holds the new point.
	hookAttackStep
	// hookUpdate follows a step's weight pass (a free replay's one
	// backward pass), before the weight and δ updates: eng.x is the input
	// the weights are trained on and, for free training, eng.xgrad its
	// gradient and delta the δ that made it.
	hookUpdate
	// hookUpdated follows the weight and δ updates of a step.
	hookUpdated
)

// observe calls the hook, if any, with the point and the minibatch size.
func (t *Trainer) observe(p hookPoint, n int) {
	if t.hook != nil {
		t.hook(p, n)
	}
}
