package onnxgraph

import "slices"

// The operator table. Everything robust knows about one operator of the
// default ONNX domain lives in its entry: how to infer its output types,
// how to differentiate it (or that no gradient flows through it), which
// inputs are trainable parameters and which of those get weight decay by
// default, and how to bring a node from an older opset to DefaultOpset.
// Entries are grouped by family in the ops_*.go files, next to the rules
// they name; adding an operator touches one file.

// opDef is the table entry of one operator.
type opDef struct {
	// shape sets the types of the node's outputs; nil leaves them unknown.
	shape shapeRule
	// grad reads the gradients of the node's outputs and adds the gradients
	// of the inputs that need one; nil means no gradient rule.
	grad func(c *gradCtx) error
	// prepare, when set, runs before the backward pass for every node of the
	// type on the differentiated path (for every node of the type when
	// prepareAll is set); it may add outputs or rewrite the forward node.
	prepare    func(c *gradCtx) error
	prepareAll bool
	// noGrad marks operators whose outputs carry no gradient even when they
	// are floating-point (piecewise-constant functions, comparisons, shape
	// queries, random generators): they are constants on the gradient path.
	noGrad bool
	// params lists the inputs that hold trainable parameters; decay those
	// that get weight decay by default (weights, not biases or
	// normalisation parameters).
	params, decay []int
	// upgrade rewrites a node of a model importing an opset older than
	// DefaultOpset into its DefaultOpset form.
	upgrade func(u *upgrader, n *Node) error
	// legacyBroadcast marks operators that took the broadcast and axis
	// attributes before opset 7.
	legacyBroadcast bool
	// quantized marks operators of integer-quantised models.
	quantized bool
}

// ops is the operator table, filled by init from the families below and
// read-only afterwards.
var ops map[string]*opDef

func init() {
	ops = map[string]*opDef{}
	for _, family := range []map[string]*opDef{
		elementwiseOps(), linalgOps(), convOps(), poolOps(), normOps(), reduceOps(), shapeOps(), indexOps(),
		resampleOps(), otherOps(),
	} {
		for name, d := range family {
			if _, dup := ops[name]; dup {
				panic("onnxgraph: operator " + name + " is defined twice")
			}
			ops[name] = d
		}
	}
}

// opOf returns the table entry of a default-domain node, or nil.
func opOf(n *Node) *opDef {
	if normDomain(n.Domain) != "" {
		return nil
	}
	return ops[n.OpType]
}

// otherOps lists the remaining operators of the default ONNX domain (up to
// opset 22) about which robust knows nothing beyond their name, and the
// operators of quantised models.
func otherOps() map[string]*opDef {
	t := map[string]*opDef{}
	for _, name := range []string{
		"AffineGrid", "BitwiseAnd", "BitwiseNot", "BitwiseOr", "BitwiseXor",
		"BlackmanWindow", "CenterCropPad", "Col2Im", "Compress", "ConcatFromSequence", "DFT", "DeformConv",
		"Det", "GRU", "GridSample", "HammingWindow", "HannWindow", "If", "ImageDecoder", "LSTM",
		"Loop", "MaxRoiPool", "MaxUnpool", "MelWeightMatrix",
		"Multinomial", "NonMaxSuppression", "OneHot", "Optional", "OptionalGetElement",
		"OptionalHasElement", "RNN", "RandomNormal", "RandomUniform", "RegexFullMatch", "ReverseSequence",
		"RoiAlign", "STFT", "Scan", "Scatter", "SequenceAt", "SequenceConstruct", "SequenceEmpty",
		"SequenceErase", "SequenceInsert", "SequenceLength", "SequenceMap", "SplitToSequence",
		"StringConcat", "StringNormalizer", "StringSplit", "TfIdfVectorizer", "TopK", "Unique", "Upsample",
		// Removed from recent opsets but found in older models.
		"ATen", "Affine", "Crop", "DynamicSlice", "GRUUnit", "GivenTensorFill", "ImageScaler",
		"ParametricSoftplus", "Scale", "ScaledTanh",
	} {
		t[name] = &opDef{}
	}
	for _, name := range []string{"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearConv",
		"QLinearMatMul", "ConvInteger", "MatMulInteger"} {
		t[name] = &opDef{quantized: true}
	}
	return t
}

// IsStandardOp reports whether opType is an operator of the default ONNX
// domain.
func IsStandardOp(opType string) bool { return ops[opType] != nil }

// IsQuantizedOp reports whether opType is an operator of integer-quantised
// models (QuantizeLinear, QLinearConv, MatMulInteger, ...).
func IsQuantizedOp(opType string) bool {
	d := ops[opType]
	return d != nil && d.quantized
}

// GradientOps lists, sorted, the operator types [Gradients] can
// differentiate through. Operators with integer or boolean outputs (Shape,
// Gather of shapes, Equal, ...) and Constant never need a rule: they are
// recognised as non-differentiable and skipped.
func GradientOps() []string {
	var names []string
	for name, d := range ops {
		if d.grad != nil {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// IsNonDifferentiable reports whether no gradient flows through operator
// opType even where its outputs are floating-point (comparisons, rounding,
// shape queries, ConstantOfShape, Range, random generators): [Gradients]
// treats its outputs as constants.
func IsNonDifferentiable(opType string) bool {
	d := ops[opType]
	return d != nil && d.noGrad
}

// TrainableParams returns the float initializers a training graph trains by
// default: the parameter inputs of the operator table (weights and biases of
// Conv, ConvTranspose and Gemm, MatMul operands, normalisation scales and
// biases, PRelu slopes) and the scale and bias of normalisations exported
// as primitive operators (LayerNorm before opset 17), in order of first
// use. Initializers read through
// Identity nodes are not included (see package harden, which unties them
// first).
func TrainableParams(g *Graph) []string {
	var out []string
	affine := decomposedNormAffine(g)
	for _, n := range g.Nodes {
		d := opOf(n)
		if d == nil {
			continue
		}
		params := d.params
		if i, ok := affine[n]; ok {
			params = []int{i}
		}
		for _, i := range params {
			name := n.Input(i)
			if t := g.Initializer(name); t != nil && t.DataType.IsFloat() && !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	return out
}

// WeightDecayed reports whether weight decay applies by default to the
// parameter name: a Conv or ConvTranspose weight or a Gemm or MatMul matrix,
// not a bias or normalisation parameter.
func WeightDecayed(g *Graph, name string) bool {
	for _, n := range g.Nodes {
		if d := opOf(n); d != nil && slices.ContainsFunc(d.decay, func(i int) bool { return n.Input(i) == name }) {
			return true
		}
	}
	return false
}

// decomposedNormAffine finds the scale and bias of normalisations that an
// exporter wrote as primitive operators (PyTorch's LayerNorm before opset
// 17):
//
//	y = (x − ReduceMean(x)) / Sqrt(…) · γ + β
//
// It returns the Mul and Add nodes that apply γ and β, with the index of
// the initializer input.
func decomposedNormAffine(g *Graph) map[*Node]int {
	producers, consumers := g.Producers(), g.Consumers()
	isOp := func(v, op string) *Node {
		if p := producers[v]; p != nil && p.OpType == op && normDomain(p.Domain) == "" {
			return p
		}
		return nil
	}
	// floatInit returns the index of n's float initializer operand, or −1.
	floatInit := func(n *Node) int {
		for i, in := range n.Inputs {
			if t := g.Initializer(in); t != nil && t.DataType.IsFloat() && t.NumElements() > 1 {
				return i
			}
		}
		return -1
	}
	found := map[*Node]int{}
	for _, n := range g.Nodes {
		if n.OpType != "Div" || normDomain(n.Domain) != "" {
			continue
		}
		sub := isOp(n.Input(0), "Sub")
		if sub == nil || isOp(sub.Input(1), "ReduceMean") == nil || isOp(n.Input(1), "Sqrt") == nil {
			continue
		}
		cs := consumers[n.Outputs[0]]
		if len(cs) != 1 || cs[0].OpType != "Mul" {
			continue
		}
		mul := cs[0]
		i := floatInit(mul)
		if i < 0 {
			continue
		}
		found[mul] = i
		if as := consumers[mul.Outputs[0]]; len(as) == 1 && as[0].OpType == "Add" {
			if j := floatInit(as[0]); j >= 0 {
				found[as[0]] = j
			}
		}
	}
	return found
}
