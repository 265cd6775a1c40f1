// Package zoo defines the classifiers robust trains and attacks, built with
// onnxgraph.Builder and exported as ONNX (opset 17, IR 8).
//
// Every model reads one input, "input" [N,C,H,W] float32 with pixels in
// [0,1] (N symbolic), normalises it inside the graph ((input − mean)/std by
// constant [1,C,1,1] tensors, left out when it is the identity) and outputs
// "logits" [N,classes]. Batch normalisation is in eval form: its inputs
// scale, B, mean and var are initializers named like PyTorch's state_dict
// (".weight", ".bias", ".running_mean", ".running_var"), as are the
// convolution and linear weights ("layer1.0.conv1.weight", "fc.bias"), so
// weights trained elsewhere can be loaded by name. Linear layers are Gemm
// with transB=1 on PyTorch's [out, in] layout.
//
// Initial weights follow each model's reference code (documented per model)
// and come from PCG streams keyed by the seed and the tensor's name: the same
// name and Options give byte-identical models.
package zoo

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/robust-go/robust/internal/liberr"
	og "github.com/robust-go/robust/onnxgraph"
)

// Info describes a zoo model with its default options.
type Info struct {
	Name        string
	Description string
	// InputShape is the per-sample input shape [C, H, W].
	InputShape [3]int64
	Classes    int
	// Mean and Std are the default per-channel normalisation.
	Mean, Std []float32
	// Params is the number of trainable parameters (see ParamCount).
	Params int64
}

// Options adjust a model at build time. The zero value builds the model as
// listed by List, from seed 0.
type Options struct {
	// Mean and Std are the normalisation (input − Mean)/Std applied inside
	// the graph: nil selects the model's default, one value applies to every
	// channel, otherwise there is one value per channel. Mean 0 and Std 1
	// add no nodes.
	Mean, Std []float32
	// Classes is the number of logits; 0 selects the model's default.
	Classes int
	// InputShape is the per-sample input shape [C, H, W]; the zero value
	// selects the model's default. Global average pooling lets the residual
	// networks take other image sizes; small-cnn sizes its first linear
	// layer to the input.
	InputShape [3]int64
	// Seed selects the initial weights.
	Seed uint64
}

// spec is one entry of the zoo.
type spec struct {
	info   Info
	doc    string
	scheme scheme
	body   func(n *net, x value, classes int64) value
}

var (
	cifarMean    = []float32{0.4914, 0.4822, 0.4465}
	cifarStd     = []float32{0.2471, 0.2435, 0.2616}
	imageNetMean = []float32{0.485, 0.456, 0.406}
	imageNetStd  = []float32{0.229, 0.224, 0.225}
)

// pytorch is the layer convention of the PyTorch reference models.
var pytorch = scheme{conv: torchDefaultConv, linear: torchDefaultLinear, bnEpsilon: 1e-5}

var specs = []spec{
	{
		info: Info{
			Name:        "small-cnn",
			Description: "MNIST CNN of Wong et al. 2020 (fast adversarial training): 2 conv + 2 linear layers",
			InputShape:  [3]int64{1, 28, 28}, Classes: 10, Mean: []float32{0}, Std: []float32{1},
		},
		doc: "Reference: github.com/locuslab/fast_adversarial MNIST/mnist_net.py. " +
			"Init: PyTorch defaults, U(±1/√fan_in) for weights and biases.",
		scheme: pytorch,
		body:   smallCNN,
	},
	{
		info: Info{
			Name:        "preact-resnet18",
			Description: "PreActResNet18 for CIFAR of Wong et al. 2020 (fast adversarial training)",
			InputShape:  [3]int64{3, 32, 32}, Classes: 10, Mean: cifarMean, Std: cifarStd,
		},
		doc: "Reference: github.com/locuslab/fast_adversarial CIFAR10/preact_resnet.py " +
			"(with the final BN-ReLU; normalisation as in its utils.py). " +
			"Init: PyTorch defaults, U(±1/√fan_in) for weights and the linear bias; BN weight 1, bias 0.",
		scheme: pytorch,
		body:   preActResNet18,
	},
	{
		info: Info{
			Name:        "wrn-32-10",
			Description: "WideResNet-32-10 of Madry et al.'s CIFAR-10 challenge, the free adversarial training seed model",
			InputShape:  [3]int64{3, 32, 32}, Classes: 10, Mean: cifarMean, Std: cifarStd,
		},
		doc: "Reference: github.com/MadryLab/cifar10_challenge model.py, as trained by " +
			"github.com/ashafahi/free_adv_train (Shafahi et al. 2019). Leaky ReLU 0.1, TensorFlow SAME padding, " +
			"pooling + zero-padding shortcuts, BN epsilon 1e-3. Per-image standardisation replaced by CIFAR-10 " +
			"channel statistics. Init: convolutions N(0, 2/(k·k·out)); logit weight U(±√(3/fan_in)), bias 0; BN weight 1, bias 0.",
		scheme: scheme{
			conv:      heFanOut,
			linear:    madryLinear,
			bnEpsilon: 1e-3, leak: 0.1, tfSame: true,
		},
		body: wideResNet32,
	},
	{
		info: Info{
			Name:        "wrn-34-10",
			Description: "WideResNet-34-10 for CIFAR (TRADES / Madry et al. PyTorch port)",
			InputShape:  [3]int64{3, 32, 32}, Classes: 10, Mean: []float32{0, 0, 0}, Std: []float32{1, 1, 1},
		},
		doc: "Reference: github.com/yaodongyu/TRADES models/wideresnet.py (no input normalisation; " +
			"the unused sub_block1 left out). Init: convolutions N(0, 2/(k·k·out)); " +
			"linear weight U(±1/√fan_in), bias 0; BN weight 1, bias 0.",
		scheme: scheme{
			conv:      heFanOut,
			linear:    tradesLinear,
			bnEpsilon: 1e-5,
		},
		body: wideResNet34,
	},
	{
		info: Info{
			Name:        "resnet50",
			Description: "ResNet-50 for ImageNet (torchvision layout), the free adversarial training ImageNet model",
			InputShape:  [3]int64{3, 224, 224}, Classes: 1000, Mean: imageNetMean, Std: imageNetStd,
		},
		doc: "Reference: torchvision.models.resnet50 (v1.5), ImageNet normalisation. " +
			"Init: convolutions kaiming_normal_(fan_out, relu); BN weight 1, bias 0; " +
			"fc PyTorch default U(±1/√fan_in) for weight and bias.",
		scheme: scheme{conv: heFanOut, linear: torchDefaultLinear, bnEpsilon: 1e-5},
		body:   resNet50,
	},
}

// List describes every model of the zoo, in a fixed order.
func List() []Info {
	out := make([]Info, len(specs))
	for i, s := range specs {
		out[i] = s.info
		out[i].Mean = slices.Clone(s.info.Mean)
		out[i].Std = slices.Clone(s.info.Std)
		_, n, err := s.build(Options{}, true)
		if err != nil { // cannot happen: the defaults are valid
			panic(fmt.Sprintf("zoo: %s: %v", s.info.Name, err))
		}
		out[i].Params = n.params
	}
	return out
}

// Build returns a freshly initialised model of the zoo.
func Build(name string, opts Options) (_ *og.Model, err error) {
	defer liberr.Prefix(&err, "zoo")
	i := slices.IndexFunc(specs, func(s spec) bool { return s.info.Name == name })
	if i < 0 {
		names := make([]string, len(specs))
		for i, s := range specs {
			names[i] = s.info.Name
		}
		return nil, fmt.Errorf("zoo: unknown model %q (known: %s)", name, strings.Join(names, ", "))
	}
	m, _, err := specs[i].build(opts, false)
	return m, err
}

// build assembles the model; dry skips the weight data.
func (s spec) build(opts Options, dry bool) (*og.Model, *net, error) {
	name := s.info.Name
	shape := s.info.InputShape
	if opts.InputShape != ([3]int64{}) {
		shape = opts.InputShape
	}
	c, h, w := shape[0], shape[1], shape[2]
	if c < 1 || h < 1 || w < 1 {
		return nil, nil, fmt.Errorf("zoo: %s: input shape %v must be positive", name, shape)
	}
	classes := int64(s.info.Classes)
	if opts.Classes < 0 {
		return nil, nil, fmt.Errorf("zoo: %s: %d classes", name, opts.Classes)
	} else if opts.Classes > 0 {
		classes = int64(opts.Classes)
	}
	mean, err := channelValues("mean", opts.Mean, s.info.Mean, c)
	if err != nil {
		return nil, nil, fmt.Errorf("zoo: %s: %w", name, err)
	}
	std, err := channelValues("std", opts.Std, s.info.Std, c)
	if err != nil {
		return nil, nil, fmt.Errorf("zoo: %s: %w", name, err)
	}
	for i := range c {
		if !(std[i] > 0) || math.IsInf(float64(std[i]), 0) || math.IsNaN(float64(mean[i])) || math.IsInf(float64(mean[i]), 0) {
			return nil, nil, fmt.Errorf("zoo: %s: normalisation mean %v, std %v: need finite values and std > 0", name, mean, std)
		}
	}

	n := &net{b: og.NewBuilder(name), s: s.scheme, seed: opts.Seed, dry: dry}
	n.output(s.body(n, n.input(c, h, w, mean, std), classes))
	if n.err != nil {
		return nil, nil, fmt.Errorf("zoo: %s with input %d×%d×%d: %w", name, c, h, w, n.err)
	}
	if !dry {
		n.fill()
	}
	m := n.b.Model()
	m.DocString = s.info.Description + ". " + s.doc
	m.Graph.DocString = s.info.Description
	m.SetMetadata("robust.zoo", name)
	m.SetMetadata("robust.mean", formatFloats(mean))
	m.SetMetadata("robust.std", formatFloats(std))
	m.SetMetadata("robust.seed", strconv.FormatUint(opts.Seed, 10))
	return m, n, nil
}

// channelValues resolves a per-channel option: nil takes the default, one
// value is repeated for every channel.
func channelValues(what string, v, def []float32, c int64) ([]float32, error) {
	if v == nil {
		v = def
	}
	switch int64(len(v)) {
	case c:
		return slices.Clone(v), nil
	case 1:
		return slices.Repeat(v, int(c)), nil
	}
	if c == 1 {
		return nil, fmt.Errorf("%s has %d values for 1 channel", what, len(v))
	}
	return nil, fmt.Errorf("%s has %d values for %d channels (want 1 or %d)", what, len(v), c, c)
}

func formatFloats(v []float32) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatFloat(float64(x), 'g', -1, 32)
	}
	return strings.Join(s, ",")
}

// trainableInputs lists, per operator, the input positions that hold
// trainable parameters.
var trainableInputs = map[string][]int{
	"Conv":               {1, 2}, // weight, bias
	"Gemm":               {1, 2}, // B, C
	"BatchNormalization": {1, 2}, // scale, B
}

// Parameters returns the trainable tensors of m: the initializers that a
// Conv or Gemm reads as weight or bias, or a BatchNormalization reads as
// scale or bias. BN running statistics and other constants are not
// parameters. Tensors are listed once each, in initializer order.
func Parameters(m *og.Model) []*og.Tensor {
	used := map[string]bool{}
	for _, nd := range m.Graph.Nodes {
		if nd.Domain != "" && nd.Domain != "ai.onnx" {
			continue
		}
		for _, i := range trainableInputs[nd.OpType] {
			if in := nd.Input(i); in != "" {
				used[in] = true
			}
		}
	}
	var out []*og.Tensor
	for _, t := range m.Graph.Initializers {
		if used[t.Name] {
			out = append(out, t)
		}
	}
	return out
}

// ParamCount returns the number of trainable parameters of m (the elements
// of Parameters), the figure PyTorch reports as
// sum(p.numel() for p in model.parameters()).
func ParamCount(m *og.Model) int64 {
	var n int64
	for _, t := range Parameters(m) {
		n += t.NumElements()
	}
	return n
}
