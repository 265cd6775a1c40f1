package onnxgraph

import (
	"slices"
)

// FoldConstants specialises the model's main graph to the static parts of
// its input shapes: every node whose integer or boolean outputs are known
// from constants and those shapes alone is replaced by initializers holding
// its outputs. Exported models compute Slice bounds, Reshape targets, Expand
// shapes, ConstantOfShape sizes, Range limits and masks from Shape chains
// (Shape→Gather→Unsqueeze→Concat, Equal→Where, ...); after folding they are
// constants, which the gradient rules read as attributes. Dimensions that are
// symbolic (a dynamic batch) stay computed, and so does everything that
// depends on them. Graph outputs are kept; constants (initializers and
// Constant nodes) that only the folded nodes read are removed. It returns
// the number of nodes folded; the graph is unchanged when it returns an
// error.
func FoldConstants(m *Model) (int, error) {
	s, err := inferShapes(m)
	if err != nil {
		return 0, err
	}
	g := m.Graph
	var folded []*Tensor
	var removed []*Node
	kept := make([]*Node, 0, len(g.Nodes))
	for _, n := range g.Nodes {
		ts := s.foldable(g, n)
		if ts == nil {
			kept = append(kept, n)
			continue
		}
		folded = append(folded, ts...)
		removed = append(removed, n)
	}
	if len(removed) == 0 {
		return 0, nil
	}
	g.Nodes = kept
	g.Initializers = append(g.Initializers, folded...)
	dropDead(g, removed)
	return len(removed), nil
}

// dropDead removes the constants that only the removed nodes read:
// initializers (folded values or the model's own) and Constant nodes; ONNX
// Runtime warns about every unused initializer. With subgraphs (If, Loop),
// which may read outer values, nothing is removed.
func dropDead(g *Graph, removed []*Node) {
	used := map[string]bool{}
	for _, n := range g.Nodes {
		for _, a := range n.Attrs {
			if a.Graph != nil || len(a.Graphs) > 0 {
				return
			}
		}
		for _, in := range n.Inputs {
			used[in] = true
		}
	}
	for _, o := range g.Outputs {
		used[o.Name] = true
	}
	dead := map[string]bool{}
	for _, n := range removed {
		for _, in := range n.Inputs {
			if in != "" && !used[in] && g.Input(in) == nil {
				dead[in] = true
			}
		}
	}
	g.Initializers = slices.DeleteFunc(g.Initializers, func(t *Tensor) bool { return dead[t.Name] })
	g.Nodes = slices.DeleteFunc(g.Nodes, func(n *Node) bool {
		return n.OpType == "Constant" && len(n.Outputs) == 1 && dead[n.Outputs[0]]
	})
}

// foldable returns the tensors of n's outputs when all are known integer
// or boolean values, else nil.
func (s *shapeState) foldable(g *Graph, n *Node) []*Tensor {
	if n.OpType == "Constant" || normDomain(n.Domain) != "" || len(n.Outputs) != 1 || n.Outputs[0] == "" {
		return nil
	}
	o := n.Outputs[0]
	v, ok := s.vals[o]
	t := s.types[o]
	if !ok || !valKnown(v) || t == nil || !t.Shape.Known() || t.Shape.Size() != int64(len(v)) || g.Output(o) != nil {
		return nil
	}
	vals := make([]int64, len(v))
	for i, d := range v {
		vals[i] = d.Value
	}
	dims := t.Shape.Ints()
	switch t.Elem {
	case Int64:
		return []*Tensor{NewInt64Tensor(o, dims, vals)}
	case Int32:
		i32 := make([]int32, len(vals))
		for i, x := range vals {
			i32[i] = int32(x)
		}
		return []*Tensor{NewInt32Tensor(o, dims, i32)}
	case Bool:
		raw := make([]byte, len(vals))
		for i, x := range vals {
			if x != 0 {
				raw[i] = 1
			}
		}
		return []*Tensor{{Name: o, DataType: Bool, Dims: slices.Clone(dims), Raw: raw}}
	}
	return nil
}
