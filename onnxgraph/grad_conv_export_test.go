package onnxgraph

import "fmt"

// SetConvGradForms forces the formulations of the Conv gradient rule until
// the returned function restores the automatic choice. weight is "auto",
// "correlate", "unfold-bmm" or "unfold-gemm"; input is "auto" or
// "transposed". Tests only: not safe for concurrent use.
func SetConvGradForms(weight, input string) (restore func()) {
	old := convForms
	weights := map[string]weightGradForm{
		"auto": weightAuto, "correlate": weightCorrelate, "unfold-bmm": weightUnfoldBMM, "unfold-gemm": weightUnfoldGemm,
	}
	inputs := map[string]inputGradForm{"auto": inputAuto, "transposed": inputTransposed}
	wf, ok1 := weights[weight]
	inf, ok2 := inputs[input]
	if !ok1 || !ok2 {
		panic(fmt.Sprintf("SetConvGradForms(%q, %q)", weight, input))
	}
	convForms.weight, convForms.input = wf, inf
	return func() { convForms = old }
}

// ConvGradForms reports the formulations the Conv gradient rule picks for
// a 2-D convolution with the given input and weight dimensions (batch
// excluded) and symmetric pads.
func ConvGradForms(in, wd []int64, stride, pad, group int64) (weight string, flipped bool) {
	k := len(wd) - 2
	w := &window{kernel: wd[2:], strides: make([]int64, k), dilations: ones(k),
		padBegin: make([]int64, k), padEnd: make([]int64, k), in: in[1:], out: make([]int64, k), group: group}
	for i := range k {
		w.strides[i], w.padBegin[i], w.padEnd[i] = stride, pad, pad
		w.out[i] = (in[1+i]+2*pad-wd[2+i])/stride + 1
	}
	names := map[weightGradForm]string{weightCorrelate: "correlate", weightUnfoldBMM: "unfold-bmm", weightUnfoldGemm: "unfold-gemm"}
	return names[weightForm(w, wd)], w.flippable() && convForms.input != inputTransposed
}
