package onnxgraph_test

import (
	"fmt"

	og "github.com/robust-go/robust/onnxgraph"
)

// The channel split PyTorch exports for ShuffleNetV2: Slice bounds computed
// from the input's shape. FoldConstants turns the static part of the chain
// into initializers (Gather and Div; Shape stays, its
// value holds the symbolic batch).
func ExampleFoldConstants() {
	b := og.NewBuilder("split")
	x := b.Input("x", og.Float, og.Shape{og.Sym("N"), og.D(8), og.D(4), og.D(4)})
	channels := b.Op("Gather", []string{b.Op("Shape", []string{x}), b.ConstInt64(1)}, og.IntAttr("axis", 0))
	half := b.Op("Div", []string{channels, b.ConstInt64(2)})
	y := b.Op("Slice", []string{x, half, b.ConstInt64(1 << 40), b.ConstInt64(1)})
	b.Output(y, og.Float, nil)
	m := b.Model()

	removed, err := og.FoldConstants(m)
	if err != nil {
		fmt.Println(err)
		return
	}
	types, _ := og.InferShapes(m)
	start, _ := m.Graph.Initializer(half).Int64s()
	fmt.Println("folded nodes:", removed, "slice start:", start, "output shape:", types[y].Shape)
	// Output: folded nodes: 2 slice start: [4] output shape: [N,4,4,4]
}

func ExampleIsNonDifferentiable() {
	for _, op := range []string{"Relu", "Equal", "ConstantOfShape", "Floor"} {
		fmt.Println(op, og.IsNonDifferentiable(op))
	}
	// Output:
	// Relu false
	// Equal true
	// ConstantOfShape true
	// Floor true
}
