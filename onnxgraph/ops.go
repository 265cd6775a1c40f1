package onnxgraph

import "slices"

// The operator table. Everything robust knows about one operator of the
// default ONNX domain lives in its entry: how to infer its output types,
// how to differentiate it (or that no gradient flows through it), which
// inputs are trainable parameters or may hold learned tensors and which
// get weight decay by default, and how to bring a node from an older
// opset to DefaultOpset.
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
	// learned lists the inputs that hold learned tensors when they are
	// float initializers of more than one element (the bias of a Linear
	// layer exported as MatMul + Add, embeddings, layer scales; see
	// [TrainableParams]); allInputs stands for every input.
	learned []int
	// view marks operators whose output is their first input's values
	// rearranged (Reshape, Transpose, ...): a weight read through one is
	// still a weight ([WeightDecayed]).
	view bool
	// upgrade rewrites a node of a model importing an opset older than
	// DefaultOpset into its DefaultOpset form.
	upgrade func(u *upgrader, n *Node) error
	// legacyBroadcast marks operators that took the broadcast and axis
	// attributes before opset 7.
	legacyBroadcast bool
	// quantized marks operators of integer-quantised models.
	quantized bool
}

// allInputs in opDef.learned stands for every input of the node.
const allInputs = -1

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
// default, in order of first use:
//
//   - whatever their size, the parameter inputs of the operator table:
//     weights and biases of Conv, ConvTranspose and Gemm, MatMul operands,
//     normalisation scales and biases, PRelu slopes;
//   - float initializers of more than one element at the inputs where
//     exported models keep their other learned tensors: either operand of
//     Add and Mul (the bias of a Linear layer exported as MatMul + Add, a
//     position embedding, a layer scale, the scale and bias of a LayerNorm
//     exported as primitive operators, an attention bias the exporter
//     folded to a constant), every input of Concat and Sum (a class token),
//     the two values of Where, and the data input of Expand, Gather, Slice,
//     Transpose, Reshape, Flatten, Squeeze and Unsqueeze (a class token
//     broadcast to the batch, an embedding table, a Linear weight exported
//     with its Transpose).
//
// Neither operand of Sub or Div is trained (that is where models bake in
// their preprocessing, (x − mean)/std, which PyTorch keeps as buffers), nor
// a one-element constant (GELU's 0.5 and 1/√2, epsilons, attention's 1/√d),
// nor any input of another operator (Resize scales, Pad values, Clip
// bounds, Pow exponents, BatchNormalization's running statistics).
//
// The rule reads the graph, which does not record whether the exporter's
// tensor was a parameter or a buffer, so it errs where the two look alike:
// a constant mask added to attention logits (Swin's shifted-window mask,
// constant-folded like its relative-position bias) or a fixed sinusoidal
// position encoding is trained like a learned bias; preprocessing written
// as a Mul by 1/std and an Add of −mean/std is trained like an affine
// layer; a learned scalar (a one-element temperature or scale) or a
// learned tensor that is subtracted or divided by is left out. A listed
// tensor that reaches the loss only through inputs without a gradient (a
// Resize scale assembled by a Concat) gets a zero gradient.
// Callers choose the parameters themselves where that matters: package
// harden removes the names its Options.Freeze patterns match (robust harden
// --freeze), and traingraph.TrainOptions.Params replaces the default set.
// Initializers read through Identity nodes are not included (see package
// harden, which unties them first).
func TrainableParams(g *Graph) []string {
	var out []string
	add := func(name string, anySize bool) {
		t := g.Initializer(name)
		if t != nil && t.DataType.IsFloat() && (anySize || t.NumElements() > 1) && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	for _, n := range g.Nodes {
		d := opOf(n)
		if d == nil {
			continue
		}
		for _, i := range d.params {
			add(n.Input(i), true)
		}
		for _, i := range d.learned {
			if i != allInputs {
				add(n.Input(i), false)
				continue
			}
			for _, in := range n.Inputs {
				add(in, false)
			}
		}
	}
	return out
}

// WeightDecayed reports whether weight decay applies by default to the
// parameter name: a Conv or ConvTranspose weight or a Gemm or MatMul matrix,
// also when read through views (a Linear weight exported with its
// Transpose), not a bias, embedding, layer scale or normalisation
// parameter.
func WeightDecayed(g *Graph, name string) bool {
	views := map[string]bool{name: true}
	for _, n := range g.Nodes {
		d := opOf(n)
		if d == nil {
			continue
		}
		if slices.ContainsFunc(d.decay, func(i int) bool { return views[n.Input(i)] }) {
			return true
		}
		if d.view && views[n.Input(0)] && len(n.Outputs) == 1 {
			views[n.Outputs[0]] = true
		}
	}
	return false
}
