package harden

import (
	"fmt"
	"slices"

	"github.com/robust-go/robust/internal/liberr"
	"github.com/robust-go/robust/onnxgraph"
)

// trainableWith returns the trainable form of the model (Plan.Trainable,
// which the trainer runs) holding the given values: what the trainer's
// Model would return, built after the trainer is closed.
func (p *Plan) trainableWith(values map[string][]float32) (*onnxgraph.Model, error) {
	m := p.Trainable.Clone()
	for name, v := range values {
		t := m.Graph.Initializer(name)
		if t == nil {
			return nil, fmt.Errorf("the trainable model has no initializer %q", name)
		}
		if err := setValues(t, v); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Export returns a copy of the original model holding the given values
// (trained parameters and updated BatchNormalization statistics, by name).
// Everything else — inputs, outputs, opset, nodes, other initializers — is
// the original's, so the result is a drop-in replacement; the metadata gets
// the key "robust.hardened" with note. A value that Prepare untied from a
// shared tensor replaces the Identity node that read it, the one structural
// change Export can make.
func (p *Plan) Export(values map[string][]float32, note string) (_ *onnxgraph.Model, err error) {
	defer liberr.Prefix(&err, "harden")
	out := p.Original.Clone()
	g := out.Graph
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		v := values[name]
		if t := g.Initializer(name); t != nil {
			if err := setValues(t, v); err != nil {
				return nil, fmt.Errorf("export: %w", err)
			}
			continue
		}
		i := slices.IndexFunc(g.Nodes, func(n *onnxgraph.Node) bool {
			return len(n.Outputs) == 1 && n.Outputs[0] == name && (n.OpType == "Identity" || n.OpType == "Constant")
		})
		if i < 0 {
			return nil, fmt.Errorf("export: %q is neither an initializer nor a Constant or Identity output of the original model", name)
		}
		n := g.Nodes[i]
		if n.OpType == "Constant" {
			if err := setValues(n.Attr("value").Tensor, v); err != nil {
				return nil, fmt.Errorf("export: %w", err)
			}
			continue
		}
		src := g.Initializer(n.Input(0))
		if src == nil {
			return nil, fmt.Errorf("export: %q is an Identity of %q, which is not an initializer", name, n.Input(0))
		}
		t := src.Clone()
		t.Name = name
		if err := setValues(t, v); err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		g.Initializers = append(g.Initializers, t)
		g.Nodes = slices.Delete(g.Nodes, i, i+1)
	}
	if note != "" {
		out.SetMetadata("robust.hardened", note)
	}
	if err := out.Validate(); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return out, nil
}

// setValues makes a float32 tensor hold v: v's own memory where the byte
// order allows ([onnxgraph.FloatTensorOver]), so the trained values of a
// 2.5 GB model are held once, by the trainable copy the evaluation runs and
// by the exported model alike; the values come from a closed trainer and
// are not changed afterwards.
func setValues(t *onnxgraph.Tensor, v []float32) error {
	if t.DataType != onnxgraph.Float {
		return fmt.Errorf("%q is %s; robust writes back float32 values only", t.Name, t.DataType)
	}
	if int64(len(v)) != t.NumElements() {
		return fmt.Errorf("%q has %d elements, got %d values", t.Name, t.NumElements(), len(v))
	}
	t.Raw = onnxgraph.FloatTensorOver(t.Name, t.Dims, v).Raw
	return nil
}
