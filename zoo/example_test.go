package zoo_test

import (
	"fmt"
	"log"

	"github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/zoo"
)

func ExampleBuild() {
	m, err := zoo.Build("small-cnn", zoo.Options{Seed: 1})
	if err != nil {
		log.Fatal(err)
	}
	in, out := m.Graph.Inputs[0], m.Graph.Outputs[0]
	fmt.Println(in.Name, in.Type)
	fmt.Println(out.Name, out.Type)
	fmt.Println(zoo.ParamCount(m), "parameters")
	w := m.Graph.Initializer("0.weight")
	fmt.Println(w.Name, w.Dims)
	// Save it with onnxgraph.Save(path, m), or serialise it:
	data, err := onnxgraph.Encode(m)
	fmt.Println(len(data) > 4*166406, err)
	// Output:
	// input float[N,1,28,28]
	// logits float[N,10]
	// 166406 parameters
	// 0.weight [16 1 4 4]
	// true <nil>
}

func ExampleList() {
	for _, m := range zoo.List() {
		fmt.Printf("%-16s %v %5d classes %11d parameters\n", m.Name, m.InputShape, m.Classes, m.Params)
	}
	// Output:
	// small-cnn        [1 28 28]    10 classes      166406 parameters
	// preact-resnet18  [3 32 32]    10 classes    11172170 parameters
	// wrn-32-10        [3 32 32]    10 classes    45901914 parameters
	// wrn-34-10        [3 32 32]    10 classes    46160474 parameters
	// resnet50         [3 224 224]  1000 classes    25557032 parameters
}
