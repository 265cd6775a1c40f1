package onnxgraph_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	og "github.com/robust-go/robust/onnxgraph"
)

// Build a model in Go, save and load it as an ONNX file, then append the
// backward graph: the gradients are ordinary graph outputs, computed by
// standard ONNX operators that any ONNX runtime runs (robust runs them
// with ONNX Runtime; see the attacks and train packages).
func Example() {
	// A linear classifier of 1×2×2 images into 3 classes.
	b := og.NewBuilder("linear")
	x := b.Input("input", og.Float, og.Shape{og.Sym("N"), og.D(1), og.D(2), og.D(2)})
	w := b.Initializer(og.NewFloatTensor("fc.weight", []int64{3, 4}, make([]float32, 12)))
	bias := b.Initializer(og.NewFloatTensor("fc.bias", []int64{3}, make([]float32, 3)))
	logits := b.Gemm(b.Flatten(x, 1), w, bias, og.GemmOpts{TransB: true})
	b.Output(logits, og.Float, og.Shape{og.Sym("N"), og.D(3)})
	// A scalar to differentiate: here the sum of the logits.
	loss := b.ReduceSum(logits, nil, false)
	b.Output(loss, og.Float, og.Shape{})

	dir, err := os.MkdirTemp("", "onnxgraph")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "linear.onnx")
	if err := og.Save(path, b.Model()); err != nil {
		log.Fatal(err)
	}
	m, err := og.Load(path)
	if err != nil {
		log.Fatal(err)
	}

	grads, err := og.Gradients(m, loss, []string{"input", "fc.weight", "fc.bias"}, nil)
	if err != nil {
		log.Fatal(err)
	}
	types, err := og.InferShapes(m)
	if err != nil {
		log.Fatal(err)
	}
	for _, g := range grads {
		fmt.Println(g, types[g].Shape)
	}
	fmt.Println("outputs:", len(m.Graph.Outputs))
	// Output:
	// input_grad [N,1,2,2]
	// fc.weight_grad [3,4]
	// fc.bias_grad [3]
	// outputs: 5
}
