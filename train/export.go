package train

import (
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/robust-go/robust/internal/liberr"
	og "github.com/robust-go/robust/onnxgraph"
)

// Values returns a copy of the trained values by initializer name: the
// parameters and the BatchNormalization running statistics.
func (t *Trainer) Values() map[string][]float32 { return t.eng.values(slices.Clone[[]float32]) }

// Finish closes the trainer and returns its values as [Trainer.Values]
// does, handing over the parameter buffers instead of copying them: for a
// model of gigabytes the copy would be as large again, on top of the
// trainer's weights, gradients and momentum that Finish releases.
func (t *Trainer) Finish() (_ map[string][]float32, err error) {
	defer liberr.Prefix(&err, "train")
	e := t.eng
	if e == nil {
		return nil, errors.New("finish: the trainer is closed")
	}
	// The parameters' Data is Go memory that outlives the ONNX Runtime
	// values over it.
	out := e.values(func(data []float32) []float32 { return data })
	return out, t.Close()
}

// values returns the parameters (each through param: a copy, or the
// buffer itself) and copies of the running statistics by initializer name.
func (e *engine) values(param func([]float32) []float32) map[string][]float32 {
	out := make(map[string][]float32, len(e.params)+2*len(e.bn))
	for _, p := range e.params {
		out[p.Name] = param(p.Data)
	}
	for i, st := range e.bn {
		mean, vars := e.runningStats(i)
		out[st.Mean], out[st.Var] = slices.Clone(mean), slices.Clone(vars)
	}
	return out
}

// Model returns the inference model with the current weights: a copy of
// the model given to [New] (same inputs, outputs and nodes, so
// BatchNormalization stays in its eval form) whose parameter and
// running-statistics initializers hold the trained values. Its metadata
// records the training recipe. Any ONNX Runtime can run it.
func (t *Trainer) Model() (_ *og.Model, err error) {
	defer liberr.Prefix(&err, "train")
	m := t.base.Clone()
	g := m.Graph
	for name, data := range t.Values() {
		init := g.Initializer(name)
		if init == nil {
			return nil, fmt.Errorf("train: export: the model has no initializer %q", name)
		}
		v := og.NewFloatTensor(name, init.Dims, data)
		v.DocString = init.DocString
		*init = *v
	}
	c := t.cfg
	m.SetMetadata("robust.train.method", string(c.Method))
	m.SetMetadata("robust.train.eps", strconv.FormatFloat(c.Eps, 'g', -1, 64))
	m.SetMetadata("robust.train.epochs", strconv.Itoa(c.Epochs))
	m.SetMetadata("robust.train.steps", strconv.Itoa(t.st.Step))
	if c.Method == Free {
		m.SetMetadata("robust.train.replays", strconv.Itoa(c.Replays))
	}
	return m, nil
}
