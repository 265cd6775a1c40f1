package zoo

import (
	"bytes"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/robust-go/robust/internal/liberr"
	og "github.com/robust-go/robust/onnxgraph"
)

// knownParams are the parameter counts PyTorch reports for the reference
// models (sum(p.numel() for p in model.parameters())).
var knownParams = map[string]int64{
	// 16·1·4·4+16 + 32·16·4·4+32 + 1568·100+100 + 100·10+10
	"small-cnn": 166_406,
	// Wong et al.'s PreActResNet18 has a final BatchNorm2d(512) (1,024
	// parameters) that Kuang Liu's original, 11,171,146 parameters, lacks.
	"preact-resnet18": 11_172_170,
	// WRN-34-10 less its three 1×1 projection shortcuts
	// (16·160 + 160·320 + 320·640 = 258,560): the same convolutions, BN and
	// logit layer, with parameter-free shortcuts.
	"wrn-32-10": 45_901_914,
	// TRADES WideResNet(depth=34, widen_factor=10) without its unused
	// sub_block1.
	"wrn-34-10": 46_160_474,
	"resnet50":  25_557_032,
}

// initWant is how the reference code initialises a model.
type initWant struct {
	// heConv: convolution weights N(0, 2/(k·k·out)) without bias; otherwise
	// PyTorch's default U(±1/√fan_in) for weight and bias.
	heConv bool
	// linearBound is the bound of the uniform linear weight for a fan-in.
	linearBound func(fanIn float64) float64
	// zeroLinearBias: linear bias 0; otherwise U(±1/√fan_in).
	zeroLinearBias bool
}

func torchBound(fanIn float64) float64 { return 1 / math.Sqrt(fanIn) }

var wantInit = map[string]initWant{
	"small-cnn":       {linearBound: torchBound},
	"preact-resnet18": {linearBound: torchBound},
	"wrn-32-10":       {heConv: true, linearBound: func(f float64) float64 { return math.Sqrt(3 / f) }, zeroLinearBias: true},
	"wrn-34-10":       {heConv: true, linearBound: torchBound, zeroLinearBias: true},
	"resnet50":        {heConv: true, linearBound: torchBound},
}

func TestList(t *testing.T) {
	list := List()
	if len(list) != len(knownParams) {
		t.Fatalf("List has %d models, want %d", len(list), len(knownParams))
	}
	for _, in := range list {
		if in.Params != knownParams[in.Name] {
			t.Errorf("%s: List says %d parameters, want %d", in.Name, in.Params, knownParams[in.Name])
		}
		if in.Description == "" || in.Classes <= 0 || len(in.Mean) != int(in.InputShape[0]) || len(in.Std) != len(in.Mean) {
			t.Errorf("%s: incomplete info %+v", in.Name, in)
		}
	}
}

// TestModels builds every model once and checks its graph, its parameter
// count, its serialisation and its initial weights.
func TestModels(t *testing.T) {
	for _, in := range List() {
		t.Run(in.Name, func(t *testing.T) {
			m, err := Build(in.Name, Options{Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Validate(); err != nil {
				t.Fatal(err)
			}
			if m.IRVersion != 8 || m.Opset("") != 17 {
				t.Errorf("IR %d opset %d, want 8 and 17", m.IRVersion, m.Opset(""))
			}
			checkInterface(t, m, in)
			if got := ParamCount(m); got != knownParams[in.Name] {
				t.Errorf("ParamCount = %d, want %d", got, knownParams[in.Name])
			}
			checkInit(t, m, wantInit[in.Name])

			data, err := og.Encode(m)
			if err != nil {
				t.Fatal(err)
			}
			back, err := og.Decode(data, "")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m, back) {
				t.Error("model differs after Encode and Decode")
			}
		})
	}
}

// checkInterface checks the input, output, normalisation and metadata.
func checkInterface(t *testing.T, m *og.Model, in Info) {
	t.Helper()
	g := m.Graph
	c, h, w := in.InputShape[0], in.InputShape[1], in.InputShape[2]
	wantIn := og.Shape{og.Sym("N"), og.D(c), og.D(h), og.D(w)}
	if len(g.Inputs) != 1 || g.Inputs[0].Name != "input" || !g.Inputs[0].Type.Shape.Equal(wantIn) {
		t.Errorf("inputs %v, want one \"input\" %v", g.Inputs, wantIn)
	}
	wantOut := og.Shape{og.Sym("N"), og.D(int64(in.Classes))}
	if len(g.Outputs) != 1 || g.Outputs[0].Name != "logits" || !g.Outputs[0].Type.Shape.Equal(wantOut) {
		t.Errorf("outputs %v, want one \"logits\" %v", g.Outputs, wantOut)
	}
	types, err := og.InferShapes(m)
	if err != nil {
		t.Fatalf("InferShapes: %v", err)
	}
	// The batch dimension may come out unknown (Pad loses the symbol),
	// the class dimension may not.
	if s := types["logits"].Shape; len(s) != 2 || s[1] != og.D(int64(in.Classes)) {
		t.Errorf("inferred logits shape %v, want [N,%d]", s, in.Classes)
	}

	normalised := g.Initializer("normalize.mean") != nil
	identity := true
	for i := range in.Mean {
		identity = identity && in.Mean[i] == 0 && in.Std[i] == 1
	}
	if normalised == identity {
		t.Errorf("normalisation nodes present: %v, want %v", normalised, !identity)
	}
	if normalised {
		consumers := g.Consumers()["input"]
		if len(consumers) != 1 || consumers[0].OpType != "Sub" {
			t.Errorf("input read by %v, want one Sub", consumers)
		}
		mean, _ := g.Initializer("normalize.mean").Float32s()
		std, _ := g.Initializer("normalize.std").Float32s()
		if !reflect.DeepEqual(mean, in.Mean) || !reflect.DeepEqual(std, in.Std) {
			t.Errorf("normalisation %v / %v, want %v / %v", mean, std, in.Mean, in.Std)
		}
	}
	for key, want := range map[string]string{
		"robust.zoo":  in.Name,
		"robust.mean": formatFloats(in.Mean),
		"robust.std":  formatFloats(in.Std),
	} {
		if got, _ := m.MetadataValue(key); got != want {
			t.Errorf("metadata %s = %q, want %q", key, got, want)
		}
	}
	if !strings.Contains(m.DocString, "Reference:") {
		t.Errorf("doc string %q cites no reference", m.DocString)
	}
}

// checkInit compares the statistics of every weight with the reference
// initialisation.
func checkInit(t *testing.T, m *og.Model, want initWant) {
	t.Helper()
	g := m.Graph
	data := func(name string) []float32 {
		v, err := g.Initializer(name).Float32s()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, nd := range g.Nodes {
		switch nd.OpType {
		case "Conv":
			dims := g.Initializer(nd.Inputs[1]).Dims
			fanIn := float64(dims[1] * dims[2] * dims[3])
			fanOut := float64(dims[0] * dims[2] * dims[3])
			bias := nd.Input(2)
			if want.heConv {
				checkNormal(t, nd.Inputs[1], data(nd.Inputs[1]), math.Sqrt(2/fanOut))
				if bias != "" {
					t.Errorf("%v has a bias", nd)
				}
				continue
			}
			checkUniform(t, nd.Inputs[1], data(nd.Inputs[1]), torchBound(fanIn))
			if bias != "" {
				checkUniform(t, bias, data(bias), torchBound(fanIn))
			}
		case "Gemm":
			fanIn := float64(g.Initializer(nd.Inputs[1]).Dims[1])
			checkUniform(t, nd.Inputs[1], data(nd.Inputs[1]), want.linearBound(fanIn))
			if want.zeroLinearBias {
				checkConstant(t, nd.Inputs[2], data(nd.Inputs[2]), 0)
			} else {
				checkUniform(t, nd.Inputs[2], data(nd.Inputs[2]), torchBound(fanIn))
			}
		case "BatchNormalization":
			for i, v := range []float32{1, 0, 0, 1} {
				checkConstant(t, nd.Inputs[i+1], data(nd.Inputs[i+1]), v)
			}
		}
	}
}

func moments(x []float32) (mean, std float64) {
	var s, s2 float64
	for _, v := range x {
		s += float64(v)
		s2 += float64(v) * float64(v)
	}
	n := float64(len(x))
	mean = s / n
	return mean, math.Sqrt(max(s2/n-mean*mean, 0))
}

// tolerance is a loose bound (6 standard errors) on the relative error of a
// sample standard deviation over n values.
func tolerance(n int) float64 { return 6 / math.Sqrt(2*float64(n)) }

func checkNormal(t *testing.T, name string, x []float32, sigma float64) {
	t.Helper()
	mean, std := moments(x)
	if math.Abs(mean) > 6*sigma/math.Sqrt(float64(len(x))) || math.Abs(std/sigma-1) > tolerance(len(x)) {
		t.Errorf("%s: mean %.4g std %.4g over %d values, want N(0, %.4g²)", name, mean, std, len(x), sigma)
	}
}

func checkUniform(t *testing.T, name string, x []float32, bound float64) {
	t.Helper()
	mean, std := moments(x)
	sigma := bound / math.Sqrt(3)
	var top float64
	for _, v := range x {
		top = max(top, math.Abs(float64(v)))
	}
	if top > bound || math.Abs(mean) > 6*sigma/math.Sqrt(float64(len(x))) || math.Abs(std/sigma-1) > tolerance(len(x)) {
		t.Errorf("%s: mean %.4g std %.4g max |x| %.4g over %d values, want U(±%.4g)", name, mean, std, top, len(x), bound)
	}
}

func checkConstant(t *testing.T, name string, x []float32, want float32) {
	t.Helper()
	for _, v := range x {
		if v != want {
			t.Errorf("%s holds %v, want all %v", name, v, want)
			return
		}
	}
}

func TestSeeds(t *testing.T) {
	for _, name := range []string{"small-cnn", "preact-resnet18"} {
		encode := func(seed uint64) []byte {
			m, err := Build(name, Options{Seed: seed})
			if err != nil {
				t.Fatal(err)
			}
			data, err := og.Encode(m)
			if err != nil {
				t.Fatal(err)
			}
			return data
		}
		if !bytes.Equal(encode(5), encode(5)) {
			t.Errorf("%s: the same seed gave different models", name)
		}
		a, _ := Build(name, Options{Seed: 5})
		b, _ := Build(name, Options{Seed: 6})
		for i, ta := range a.Graph.Initializers {
			tb := b.Graph.Initializers[i]
			random := !strings.Contains(ta.Name, "bn") && !strings.HasPrefix(ta.Name, "normalize.")
			if equal := bytes.Equal(ta.Raw, tb.Raw); equal == random {
				t.Errorf("%s: %s: seeds 5 and 6 give equal data: %v, want %v", name, ta.Name, equal, !random)
			}
		}
	}
	// Tensors of one shape and distribution get their own streams.
	m, _ := Build("preact-resnet18", Options{})
	if bytes.Equal(m.Graph.Initializer("layer1.0.conv1.weight").Raw, m.Graph.Initializer("layer1.0.conv2.weight").Raw) {
		t.Error("two layers got the same weights")
	}
}

func TestOptions(t *testing.T) {
	m, err := Build("preact-resnet18", Options{Classes: 100, InputShape: [3]int64{3, 64, 64}, Mean: []float32{0.5}, Std: []float32{0.25}})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Graph.Outputs[0].Type.Shape; !got.Equal(og.Shape{og.Sym("N"), og.D(100)}) {
		t.Errorf("logits %v, want [N,100]", got)
	}
	if got, _ := m.MetadataValue("robust.mean"); got != "0.5,0.5,0.5" {
		t.Errorf("robust.mean = %q", got)
	}
	if got := ParamCount(m); got != knownParams["preact-resnet18"]+90*513 {
		t.Errorf("ParamCount = %d with 100 classes", got)
	}

	// small-cnn sizes its first linear layer to the input.
	m, err = Build("small-cnn", Options{InputShape: [3]int64{3, 32, 32}, Mean: []float32{0.1, 0.2, 0.3}})
	if err != nil {
		t.Fatal(err)
	}
	if d := m.Graph.Initializer("5.weight").Dims; d[1] != 32*8*8 {
		t.Errorf("5.weight %v, want [100 2048]", d)
	}
	if d := m.Graph.Initializer("0.weight").Dims; d[1] != 3 {
		t.Errorf("0.weight %v, want 3 input channels", d)
	}

	// No normalisation nodes for mean 0, std 1.
	m, _ = Build("resnet50", Options{Mean: []float32{0}, Std: []float32{1}, InputShape: [3]int64{3, 64, 64}})
	if m.Graph.Nodes[0].OpType != "Conv" {
		t.Errorf("first node %v, want the Conv", m.Graph.Nodes[0])
	}

	for _, c := range []struct {
		name, model string
		opts        Options
	}{
		{"unknown model", "vgg16", Options{}},
		{"wrong mean length", "preact-resnet18", Options{Mean: []float32{0, 0}}},
		{"zero std", "small-cnn", Options{Std: []float32{0}}},
		{"negative classes", "small-cnn", Options{Classes: -1}},
		{"negative size", "small-cnn", Options{InputShape: [3]int64{1, -28, 28}}},
		{"input too small", "small-cnn", Options{InputShape: [3]int64{1, 2, 2}}},
		{"default mean for other channels", "resnet50", Options{InputShape: [3]int64{1, 224, 224}}},
		{"odd size for pooled shortcuts", "wrn-32-10", Options{InputShape: [3]int64{3, 31, 31}}},
	} {
		_, err := Build(c.model, c.opts)
		if err := liberr.Check(err, "zoo"); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if _, err := Build("vgg16", Options{}); err == nil || !strings.Contains(err.Error(), "wrn-34-10") {
		t.Errorf("unknown model error %v does not list the models", err)
	}
}
