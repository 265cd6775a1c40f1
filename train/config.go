package train

import (
	"fmt"
	"math"

	"github.com/robust-go/robust/dataset"
)

// Method is a training method.
type Method string

// Methods.
const (
	// Natural trains on clean images.
	Natural Method = "natural"
	// Free is free adversarial training (Shafahi et al., 2019): every
	// minibatch is replayed Replays times; each replay's one backward pass
	// updates both the weights and the persistent perturbation δ.
	Free Method = "free"
	// PGD is PGD adversarial training (Madry et al., 2018): AttackSteps
	// steps of size StepSize from a uniformly random start, then a weight
	// step on the adversarial batch.
	PGD Method = "pgd"
	// Fast is FGSM adversarial training from a uniformly random start with
	// step 1.25ε (Wong et al., 2020), with the catastrophic-overfitting
	// check after every epoch.
	Fast Method = "fast"
)

// Methods lists the training methods.
var Methods = []Method{Natural, Free, PGD, Fast}

// ParseMethod parses a method name.
func ParseMethod(s string) (Method, error) {
	for _, m := range Methods {
		if string(m) == s {
			return m, nil
		}
	}
	return "", fmt.Errorf("unknown training method %q (want natural, free, pgd or fast)", s)
}

// Config is a training recipe: everything that determines the trained
// weights. It is stored in checkpoints, and resuming requires the same
// Config.
type Config struct {
	Method Method `json:"method"`
	// Epochs counts epoch-equivalents: passes over the data for natural,
	// pgd and fast training; for free training, which replays each
	// minibatch Replays times, ⌈Epochs/Replays⌉ passes (the reference code's
	// convention), so that every method does about Epochs·N/BatchSize
	// gradient steps.
	Epochs    int `json:"epochs"`
	BatchSize int `json:"batch_size"`
	// LR is the base learning rate of Schedule (see [ParseSchedule]); the
	// schedule's steps are weight updates (replays, for free training).
	LR       float64 `json:"lr"`
	Schedule string  `json:"schedule"`
	// Momentum and WeightDecay configure [SGD]. Weight decay applies to
	// Conv, Gemm and MatMul weights only, unless DecayAll is set.
	Momentum    float64 `json:"momentum"`
	WeightDecay float64 `json:"weight_decay"`
	DecayAll    bool    `json:"decay_all,omitempty"`
	// Eps is the L∞ radius of the perturbations, for images in [0,1].
	Eps float64 `json:"eps"`
	// Replays is free training's m (0: 8).
	Replays int `json:"replays,omitempty"`
	// AttackSteps and StepSize are PGD training's k and α (0: 7 steps of
	// ε/4). Fast training uses one step of 1.25ε.
	AttackSteps int     `json:"attack_steps,omitempty"`
	StepSize    float64 `json:"step_size,omitempty"`
	// Seed drives the data order, augmentation and random starts.
	Seed uint64 `json:"seed"`
	// Augment is applied to training images (e.g. pad 2–4 and flip for
	// CIFAR).
	Augment dataset.Augment `json:"augment"`
	// Params names the initializers to train; empty means all of the
	// model's parameters (Conv, Gemm and MatMul weights and biases,
	// BatchNormalization scales and biases). Others stay fixed.
	Params []string `json:"params,omitempty"`
	// EvalSteps is the number of PGD steps (α = ε/4, random start) of the
	// per-epoch robust accuracy on the held-out set (default 10).
	EvalSteps int `json:"eval_steps"`
}

// withDefaults fills in zero fields that have defaults, as documented on
// each field; negative values are left for validate to refuse.
func (c Config) withDefaults() Config {
	if c.Method == "" {
		c.Method = Natural
	}
	if c.Schedule == "" {
		c.Schedule = "piecewise"
	}
	if c.Method == Free && c.Replays == 0 {
		c.Replays = 8
	}
	if c.Method == PGD {
		if c.AttackSteps == 0 {
			c.AttackSteps = 7
		}
		if c.StepSize == 0 {
			c.StepSize = c.Eps / 4
		}
	}
	if c.EvalSteps == 0 {
		c.EvalSteps = 10
	}
	return c
}

// validate checks a config with defaults applied.
func (c Config) validate() error {
	if _, err := ParseMethod(string(c.Method)); err != nil {
		return err
	}
	positive := func(v float64) bool { return v > 0 && !math.IsInf(v, 0) }
	switch {
	case c.Epochs <= 0:
		return fmt.Errorf("epochs %d must be positive", c.Epochs)
	case c.BatchSize <= 0:
		return fmt.Errorf("batch size %d must be positive", c.BatchSize)
	case c.Momentum < 0 || c.Momentum >= 1 || math.IsNaN(c.Momentum):
		return fmt.Errorf("momentum %g must be in [0,1)", c.Momentum)
	case c.WeightDecay < 0 || math.IsNaN(c.WeightDecay) || math.IsInf(c.WeightDecay, 0):
		return fmt.Errorf("weight decay %g must be a non-negative number", c.WeightDecay)
	case c.EvalSteps < 0:
		return fmt.Errorf("evaluation steps %d must not be negative", c.EvalSteps)
	}
	if _, err := ParseSchedule(c.Schedule, c.LR); err != nil {
		return err
	}
	if c.Method == Natural {
		if c.Eps < 0 || c.Eps > 1 || math.IsNaN(c.Eps) {
			return fmt.Errorf("ε = %g must be in [0,1]", c.Eps)
		}
		return nil
	}
	if !positive(c.Eps) || c.Eps > 1 {
		return fmt.Errorf("%s training needs ε in (0,1], got %g", c.Method, c.Eps)
	}
	switch c.Method {
	case Free:
		if c.Replays < 1 {
			return fmt.Errorf("free training needs at least 1 replay, got %d", c.Replays)
		}
	case PGD:
		if c.AttackSteps < 1 {
			return fmt.Errorf("PGD training needs at least 1 attack step, got %d", c.AttackSteps)
		}
		if !positive(c.StepSize) {
			return fmt.Errorf("PGD step size %g must be positive", c.StepSize)
		}
	}
	return nil
}

// replays returns the number of weight steps per minibatch.
func (c Config) replays() int {
	if c.Method == Free {
		return c.Replays
	}
	return 1
}

// Passes returns the number of passes over the training data.
func (c Config) Passes() int {
	m := c.replays()
	return (c.Epochs + m - 1) / m
}

// attack returns the step size and number of steps of the attack that
// crafts the training batch of PGD and fast training.
func (c Config) attack() (steps int, alpha float64) {
	switch c.Method {
	case PGD:
		return c.AttackSteps, c.StepSize
	case Fast:
		return 1, 1.25 * c.Eps
	}
	return 0, 0
}
