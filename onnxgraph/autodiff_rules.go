package onnxgraph

// The registry of gradient rules; the rules live in the grad_*.go files.

// gradRules is the registry: operator type → gradient rule.
var gradRules map[string]gradRule

func init() {
	gradRules = map[string]gradRule{
		"Add": {grad: addGrad}, "Sub": {grad: subGrad}, "Mul": {grad: mulGrad}, "Div": {grad: divGrad},
		"Sum": {grad: sumGrad}, "Neg": {grad: negGrad}, "Identity": {grad: identityGrad},
		"Relu": {grad: reluGrad}, "LeakyRelu": {grad: leakyReluGrad}, "PRelu": {grad: preluGrad},
		"Elu": {grad: eluGrad}, "Selu": {grad: seluGrad}, "Sigmoid": {grad: sigmoidGrad},
		"Tanh": {grad: tanhGrad}, "Softplus": {grad: softplusGrad}, "Softsign": {grad: softsignGrad},
		"Exp": {grad: expGrad}, "Log": {grad: logGrad}, "Sqrt": {grad: sqrtGrad},
		"Reciprocal": {grad: reciprocalGrad}, "Abs": {grad: absGrad}, "Pow": {grad: powGrad},
		"Clip": {grad: clipGrad}, "Where": {grad: whereGrad}, "Cast": {grad: castGrad},
		"Expand": {grad: expandGrad}, "Dropout": {grad: dropoutGrad, prepare: dropoutPrepare},

		"Gemm": {grad: gemmGrad}, "MatMul": {grad: matMulGrad},
		"Conv": {grad: convGrad}, "ConvTranspose": {grad: convTransposeGrad},
		"MaxPool": {grad: maxPoolGrad, prepare: maxPoolPrepare}, "AveragePool": {grad: avgPoolGrad},
		"GlobalAveragePool": {grad: globalAvgPoolGrad}, "GlobalMaxPool": {grad: globalMaxPoolGrad},
		"BatchNormalization": {grad: batchNormGrad, prepare: batchNormPrepare, prepareAll: true},

		"Flatten": {grad: reshapeGrad}, "Reshape": {grad: reshapeGrad}, "Squeeze": {grad: reshapeGrad},
		"Unsqueeze": {grad: reshapeGrad}, "Transpose": {grad: transposeGrad}, "Concat": {grad: concatGrad},
		"Split": {grad: splitGrad}, "Slice": {grad: sliceGrad}, "Pad": {grad: padGrad},
		"Gather": {grad: gatherGrad}, "Tile": {grad: tileGrad},

		"ReduceSum": {grad: reduceSumGrad}, "ReduceMean": {grad: reduceMeanGrad},
		"ReduceMax": {grad: reduceMaxGrad}, "ReduceMin": {grad: reduceMaxGrad},
		"Softmax": {grad: softmaxGrad}, "LogSoftmax": {grad: logSoftmaxGrad},
		"SoftmaxCrossEntropyLoss": {grad: sceGrad, prepare: scePrepare},
	}
}
