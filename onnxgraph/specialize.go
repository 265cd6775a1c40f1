package onnxgraph

import (
	"math"
	"slices"
)

// SpecializeStats counts the rewrites [SpecializeFrozen] made.
type SpecializeStats struct {
	// FoldedBatchNorms is the number of inference-mode BatchNormalization
	// nodes folded into the Conv before them.
	FoldedBatchNorms int
	// Bypassed is the number of no-op nodes removed from the data path:
	// Identity, inference-mode Dropout, Cast to the type the value already
	// has, and Reshape to the shape the value already has.
	Bypassed int
	// ClipMasks is the number of Clip gradients Where(min ≤ x ≤ max, dy, 0)
	// rewritten as dy·Cast(x = Clip(x)).
	ClipMasks int
	// SubpixelConvTransposes is the number of strided ConvTranspose nodes
	// with constant weights rewritten as Conv + DepthToSpace.
	SubpixelConvTransposes int
	// DeadNodes and DeadInitializers count what was left unused.
	DeadNodes, DeadInitializers int
}

// SpecializeFrozen rewrites, in place, a graph whose weights are fixed (an
// input-gradient graph for attacks, or an inference graph) into an
// equivalent one that runs faster, and returns what it did. Graph inputs,
// outputs and their names are kept; weights stay initializers, so that
// ONNX Runtime constant-folds their transforms and pre-packs them.
//
//   - An inference-mode BatchNormalization whose input comes from a Conv
//     with constant weights, read by nothing else, is folded into that
//     Conv: W' = W·s, b' = (b − mean)·s + β with s = scale/√(var + ε),
//     computed in float64 and rounded once. The result equals the original
//     up to float32 rounding and summation order. Gradient nodes reading
//     the BatchNormalization's parameters keep them.
//   - Identity, Dropout without training mode and with an unused mask, Cast
//     to the element type the value has, and Reshape to the shape the
//     value has (known dimensions, 0 or one -1) are bypassed: their readers read the input instead.
//   - The gradient of a Clip with constant bounds (ReLU6 in MobileNets),
//     Where(And(x ≥ min, x ≤ max), dy, 0), becomes dy·Cast(Equal(x, y))
//     with y = Clip(x): x lies within the bounds exactly when clipping
//     leaves it unchanged, so the mask is the same, in one comparison
//     instead of three, and the multiply is much faster than Where on
//     ONNX Runtime's CPU provider (the ReLU gradient's form). The values are
//     the same except where dy is ±Inf or NaN outside the bounds (NaN
//     instead of 0) and for the sign of zero.
//   - A strided 2-D ConvTranspose with constant weights (the input
//     gradient of a strided Conv) becomes one unit-stride Conv with the
//     stride phases of the kernel as output channels, a DepthToSpace and a
//     Slice (see subpixelConvTransposes): equal up to summation order.
//   - Nodes whose outputs nobody reads and initializers nobody reads are
//     removed.
//
// Graphs that are not float32 where it matters, or whose shapes are not
// static, are left as they are by the rewrites that would need it, and
// graphs with subgraphs (If, Loop, Scan) are not touched.
// SpecializeFrozen never fails: a rewrite it cannot prove exact is skipped.
func SpecializeFrozen(m *Model) SpecializeStats {
	var st SpecializeStats
	g := m.Graph
	if hasSubgraphs(g) {
		return st // values read inside subgraphs are invisible to the rewrites
	}
	st.Bypassed = bypassNoOps(m)
	st.DeadNodes, st.DeadInitializers = removeDead(g) // bypassed nodes no longer count as readers
	st.FoldedBatchNorms = foldBatchNorms(g)
	st.ClipMasks = clipMasks(g)
	st.SubpixelConvTransposes = subpixelConvTransposes(m)
	nodes, inits := removeDead(g)
	st.DeadNodes += nodes
	st.DeadInitializers += inits
	return st
}

// foldBatchNorms folds inference BatchNormalization nodes into the Conv
// producing their input.
func foldBatchNorms(g *Graph) int {
	producers, consumers := g.Producers(), g.Consumers()
	inits := make(map[string]*Tensor, len(g.Initializers))
	for _, t := range g.Initializers {
		inits[t.Name] = t
	}
	isOutput := func(name string) bool { return g.Output(name) != nil }
	isInput := func(name string) bool { return g.Input(name) != nil }
	constant := func(name string) *Tensor {
		if name == "" || isInput(name) {
			return nil // an initializer that is also an input can be overridden
		}
		return inits[name]
	}
	remove := map[*Node]bool{}
	b := Extend(g, 0) // only for fresh initializer names
	folded := 0
	for _, bn := range g.Nodes {
		if bn.OpType != "BatchNormalization" || bn.Domain != "" || bnTraining(bn) || len(bn.Inputs) != 5 ||
			len(bn.Outputs) != 1 && slices.ContainsFunc(bn.Outputs[1:], func(s string) bool { return s != "" }) {
			continue
		}
		x := bn.Inputs[0]
		conv := producers[x]
		if conv == nil || conv.OpType != "Conv" || conv.Domain != "" || len(consumers[x]) != 1 || isOutput(x) {
			continue
		}
		w := constant(conv.Input(1))
		var bias *Tensor
		if conv.Input(2) != "" {
			if bias = constant(conv.Input(2)); bias == nil {
				continue
			}
		}
		params := make([][]float64, 4)
		ok := w != nil && w.DataType == Float && len(w.Dims) >= 3
		for i := 0; ok && i < 4; i++ {
			t := constant(bn.Inputs[i+1])
			ok = t != nil && t.DataType == Float && len(t.Dims) == 1 && t.Dims[0] == w.Dims[0]
			if ok {
				params[i] = float64s(t)
			}
		}
		if !ok || bias != nil && (bias.DataType != Float || bias.NumElements() != w.Dims[0]) {
			continue
		}
		wv, err := w.Float32s()
		if err != nil {
			continue
		}
		scale, beta, mean, variance := params[0], params[1], params[2], params[3]
		eps := float64(bn.AttrFloat("epsilon", 1e-5))
		outC := int(w.Dims[0])
		per := len(wv) / outC
		nw := make([]float32, len(wv))
		nb := make([]float32, outC)
		var bv []float32
		if bias != nil {
			if bv, err = bias.Float32s(); err != nil {
				continue
			}
		}
		for c := range outC {
			s := scale[c] / math.Sqrt(variance[c]+eps)
			for k := c * per; k < (c+1)*per; k++ {
				nw[k] = float32(float64(wv[k]) * s)
			}
			b0 := 0.0
			if bv != nil {
				b0 = float64(bv[c])
			}
			nb[c] = float32((b0-mean[c])*s + beta[c])
		}
		wName := b.Initializer(NewFloatTensor(b.Fresh(conv.Input(1)+"_bnfolded"), w.Dims, nw))
		bName := b.Initializer(NewFloatTensor(b.Fresh(bn.Outputs[0]+"_bias"), []int64{int64(outC)}, nb))
		conv.Inputs = []string{conv.Inputs[0], wName, bName}
		conv.Outputs = []string{bn.Outputs[0]}
		producers[bn.Outputs[0]] = conv
		remove[bn] = true
		folded++
	}
	if folded > 0 {
		g.Nodes = slices.DeleteFunc(g.Nodes, func(n *Node) bool { return remove[n] })
	}
	return folded
}

func float64s(t *Tensor) []float64 {
	v, err := t.Float32s()
	if err != nil {
		return nil
	}
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// bypassNoOps reroutes the readers of no-op nodes to their inputs.
func bypassNoOps(m *Model) int {
	g := m.Graph
	var types map[string]*TensorType
	typesOnce := false
	typeOf := func(name string) *TensorType {
		if !typesOnce {
			typesOnce = true
			types, _ = InferShapes(m) // on failure: no shape-based rewrites
		}
		return types[name]
	}
	inits := map[string]*Tensor{}
	for _, t := range g.Initializers {
		if g.Input(t.Name) == nil {
			inits[t.Name] = t
		}
	}
	consumers := g.Consumers()
	bypassed := 0
	rename := map[string]string{}
	resolve := func(s string) string {
		for {
			r, ok := rename[s]
			if !ok {
				return s
			}
			s = r
		}
	}
	for _, n := range g.Nodes {
		for i, in := range n.Inputs {
			n.Inputs[i] = resolve(in)
		}
		if n.Domain != "" || len(n.Outputs) == 0 || n.Outputs[0] == "" || g.Output(n.Outputs[0]) != nil || len(n.Inputs) == 0 {
			continue
		}
		out, in := n.Outputs[0], n.Inputs[0]
		if in == "" {
			continue
		}
		noop := false
		switch n.OpType {
		case "Identity":
			noop = true
		case "Dropout":
			// Before opset 7, Dropout's is_test attribute defaulted to
			// training.
			noop = m.Opset("") >= 7 && (len(n.Outputs) < 2 || n.Outputs[1] == "" || len(consumers[n.Outputs[1]]) == 0 && g.Output(n.Outputs[1]) == nil) &&
				!dropoutTraining(n, inits)
		case "Cast":
			t := typeOf(in)
			noop = t != nil && int64(t.Elem) == n.AttrInt("to", -1)
		case "Reshape":
			t, target := typeOf(in), inits[n.Input(1)]
			noop = t != nil && target != nil && reshapeNoOp(t.Shape, target, n.AttrInt("allowzero", 0) != 0)
		}
		if noop {
			rename[out] = in
			bypassed++
		}
	}
	return bypassed
}

// dropoutTraining reports whether a Dropout may drop: a training_mode input
// that is not a constant false.
func dropoutTraining(n *Node, inits map[string]*Tensor) bool {
	tm := n.Input(2)
	if tm == "" {
		return false
	}
	t := inits[tm]
	return t == nil || t.DataType != Bool || len(t.Raw) != 1 || t.Raw[0] != 0
}

// reshapeNoOp reports whether reshaping a value of shape s to the constant
// shape target keeps the shape: every entry equals the known dimension or
// is 0 (copy, without allowzero), and at most one is -1 (which then
// stands for the one dimension left).
func reshapeNoOp(s Shape, target *Tensor, allowZero bool) bool {
	dims, err := target.Int64s()
	if err != nil || len(dims) != len(s) {
		return false
	}
	inferred := 0
	for i, d := range dims {
		switch {
		case d == -1:
			inferred++
		case d == 0 && !allowZero:
		case d <= 0 || !s[i].Known() || s[i].Value != d:
			return false
		}
	}
	return inferred <= 1
}

// removeDead deletes nodes none of whose outputs is read or is a graph
// output, and initializers nobody reads (unless they are also inputs).
func removeDead(g *Graph) (nodes, inits int) {
	live := map[string]bool{}
	for _, o := range g.Outputs {
		live[o.Name] = true
	}
	keep := make([]bool, len(g.Nodes))
	for i := len(g.Nodes) - 1; i >= 0; i-- {
		n := g.Nodes[i]
		if !slices.ContainsFunc(n.Outputs, func(o string) bool { return o != "" && live[o] }) {
			nodes++
			continue
		}
		keep[i] = true
		for _, in := range n.Inputs {
			live[in] = true
		}
	}
	if nodes > 0 {
		kept := g.Nodes[:0]
		for i, n := range g.Nodes {
			if keep[i] {
				kept = append(kept, n)
			}
		}
		clear(g.Nodes[len(kept):])
		g.Nodes = kept
	}
	n0 := len(g.Initializers)
	g.Initializers = slices.DeleteFunc(g.Initializers, func(t *Tensor) bool { return !live[t.Name] && g.Input(t.Name) == nil })
	return nodes, n0 - len(g.Initializers)
}

func hasSubgraphs(g *Graph) bool {
	for _, n := range g.Nodes {
		for _, a := range n.Attrs {
			if a.Type == AttrGraph || a.Type == AttrGraphs {
				return true
			}
		}
	}
	return false
}

// clipMasks rewrites Clip gradients Where(inside, dy, 0), with inside the
// conjunction of x ≥ min and x ≤ max over the Clip's bounds, as
// dy·Cast(Equal(x, Clip(x))).
func clipMasks(g *Graph) int {
	producers := g.Producers()
	clips := map[string][]*Node{} // Clip nodes by input
	for _, n := range g.Nodes {
		if n.OpType == "Clip" && n.Domain == "" && len(n.Outputs) == 1 && len(n.Inputs) > 0 {
			clips[n.Inputs[0]] = append(clips[n.Inputs[0]], n)
		}
	}
	if len(clips) == 0 {
		return 0
	}
	b := Extend(g, 0) // only for fresh names
	out := make([]*Node, 0, len(g.Nodes))
	rewritten := 0
	for _, n := range g.Nodes {
		clip, elem := clipOfMask(g, n, producers, clips)
		if clip == nil {
			out = append(out, n)
			continue
		}
		x, dy := clip.Inputs[0], n.Inputs[1]
		eq := &Node{Name: b.Fresh(n.Name + "_inside"), OpType: "Equal", Inputs: []string{x, clip.Outputs[0]},
			Outputs: []string{b.Fresh(n.Outputs[0] + "_inside")}}
		cast := &Node{Name: b.Fresh(n.Name + "_mask"), OpType: "Cast", Inputs: eq.Outputs,
			Outputs: []string{b.Fresh(n.Outputs[0] + "_mask")}, Attrs: []*Attribute{IntAttr("to", int64(elem))}}
		mul := &Node{Name: b.Fresh(n.Name + "_masked"), OpType: "Mul", Inputs: []string{dy, cast.Outputs[0]},
			Outputs: []string{n.Outputs[0]}}
		out = append(out, eq, cast, mul)
		rewritten++
	}
	g.Nodes = out
	return rewritten
}

// clipOfMask returns the Clip whose gradient mask the Where node n applies,
// and the element type, or nil.
func clipOfMask(g *Graph, n *Node, producers map[string]*Node, clips map[string][]*Node) (*Node, DataType) {
	if n.OpType != "Where" || n.Domain != "" || len(n.Inputs) != 3 || len(n.Outputs) != 1 {
		return nil, 0
	}
	if z := constTensor(g, producers, n.Inputs[2]); z == nil || z.NumElements() != 1 || !isZero(z) {
		return nil, 0
	}
	// Collect the comparisons of the mask: x ≥ lo, x ≤ hi, or both under And.
	cmps := []*Node{producers[n.Inputs[0]]}
	if a := cmps[0]; a != nil && a.OpType == "And" && a.Domain == "" && len(a.Inputs) == 2 {
		cmps = []*Node{producers[a.Inputs[0]], producers[a.Inputs[1]]}
	}
	var x, lo, hi string
	for _, c := range cmps {
		if c == nil || c.Domain != "" || len(c.Inputs) != 2 || x != "" && c.Inputs[0] != x {
			return nil, 0
		}
		x = c.Inputs[0]
		switch {
		case c.OpType == "GreaterOrEqual" && lo == "":
			lo = c.Inputs[1]
		case c.OpType == "LessOrEqual" && hi == "":
			hi = c.Inputs[1]
		default:
			return nil, 0
		}
	}
	for _, clip := range clips[x] {
		if clip.Input(1) != lo || clip.Input(2) != hi {
			continue
		}
		var elem DataType
		var bounds [2]float64
		for i, name := range []string{lo, hi} {
			if name == "" {
				continue
			}
			t := constTensor(g, producers, name)
			if t == nil || t.NumElements() != 1 || t.DataType != Float && t.DataType != Double {
				return nil, 0
			}
			v, err := t.Float64s()
			if err != nil {
				return nil, 0
			}
			elem, bounds[i] = t.DataType, v[0]
		}
		if lo != "" && hi != "" && !(bounds[0] <= bounds[1]) {
			return nil, 0 // min > max: Clip's result is not "x when inside"
		}
		return clip, elem
	}
	return nil, 0
}

// constTensor returns the value of name when it is a constant: an
// initializer that no graph input overrides, or a Constant node's tensor.
func constTensor(g *Graph, producers map[string]*Node, name string) *Tensor {
	if name == "" || g.Input(name) != nil {
		return nil
	}
	if t := g.Initializer(name); t != nil {
		return t
	}
	if p := producers[name]; p != nil && p.OpType == "Constant" && p.Domain == "" {
		if a := p.Attr("value"); a != nil && a.Type == AttrTensor {
			return a.Tensor
		}
		if a := p.Attr("value_float"); a != nil && a.Type == AttrFloat {
			return NewFloatTensor(name, []int64{}, []float32{a.Float})
		}
	}
	return nil
}

func isZero(t *Tensor) bool {
	if t.DataType != Float && t.DataType != Double {
		return false
	}
	v, err := t.Float64s()
	return err == nil && len(v) == 1 && v[0] == 0
}
