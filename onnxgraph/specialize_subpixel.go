package onnxgraph

import "slices"

// subpixelConvTransposes rewrites strided 2-D ConvTranspose nodes with
// constant weights (the input gradients of strided convolutions) as one
// unit-stride Conv per output phase, whose kernels are the taps of the
// weights that reach that phase (cut here), a Concat of the phases and a
// DepthToSpace (DCR) that interleaves them:
//
//	Y[i] = Σ_{o·s+t = i+p} X[o]·W[t],  i = s·q + r  ⇒  Y[s·q+r] = Σ_j X[q+c−j]·W[s·j+a]
//
// with a = (r+p) mod s and c = (r+p) div s. The phase Convs do exactly the
// multiply-adds of the ConvTranspose (a 3×3 stride-2 kernel splits into
// 1×1, 1×2, 2×1 and 2×2 taps), and ONNX Runtime runs them as pre-packed
// NCHWc convolutions, where its CPU ConvTranspose runs a GEMM on
// unpacked weights and col2im image by image. Only ConvTransposes with
// dilation 1, equal strides on both axes, a kernel at least as wide as the
// stride, explicit pads, inputs of static spatial size and outputs whose
// size the stride divides are rewritten. The result equals the
// ConvTranspose up to float32 summation order.
//
// It is applied only where it measured faster (internal/archbench
// BenchmarkLayers, batch 64, 2 threads, ResNet-18's 3×3 stride-2 input
// gradients): inputs of at most subpixelMaxPositions positions per image
// (2×2: 0.4–0.5× the ConvTranspose's time, 4×4: 0.7×), where ONNX
// Runtime's per-image GEMM has only 4 or 16 columns, and group 1. From 7×7
// on the ConvTranspose is as fast or faster (7×7 1.05–1.1×, 8×8 1.3–1.5×,
// 14×14 1.2×, 28×28 2.1–2.5×), and so it is for the 7×7 stem (3 output
// channels, which the NCHWc convolution pads to 16: 2.3–6.5×). A single
// Conv over all s² phases of a common ⌈k/s⌉² kernel, DepthToSpace and a
// Slice (more multiply-adds: 16/9 of them for 3×3, plus the border
// phase rows) measured 1.3–3.3× slower on every shape.
func subpixelConvTransposes(m *Model) int {
	g := m.Graph
	if !slices.ContainsFunc(g.Nodes, func(n *Node) bool { return n.OpType == "ConvTranspose" }) {
		return 0
	}
	types, err := InferShapes(m)
	if err != nil {
		return 0
	}
	producers := g.Producers()
	b := Extend(g, 0)
	orig := slices.Clone(g.Nodes)
	out := make([]*Node, 0, len(orig))
	rewritten := 0
	for _, n := range orig {
		start := len(g.Nodes)
		if !subpixel(g, b, n, types, producers) {
			out = append(out, n)
			continue
		}
		out = append(out, g.Nodes[start:]...)
		rewritten++
	}
	g.Nodes = out
	return rewritten
}

// subpixelMaxPositions is the largest input (positions per image) whose
// ConvTranspose is rewritten; subpixelAll (tests) lifts that limit and the
// group-1 one.
const subpixelMaxPositions = 16

var subpixelAll bool

// subpixel appends the rewrite of n to g when n qualifies.
func subpixel(g *Graph, b *Builder, n *Node, types map[string]*TensorType, producers map[string]*Node) bool {
	if n.OpType != "ConvTranspose" || n.Domain != "" || len(n.Inputs) < 2 || len(n.Outputs) != 1 ||
		n.AttrString("auto_pad", "NOTSET") != "NOTSET" || n.Attr("output_shape") != nil {
		return false
	}
	wt := constTensor(g, producers, n.Inputs[1])
	if wt == nil || wt.DataType != Float || len(wt.Dims) != 4 {
		return false
	}
	var bias []float32
	if name := n.Input(2); name != "" {
		t := constTensor(g, producers, name)
		if t == nil || t.DataType != Float {
			return false
		}
		var err error
		if bias, err = t.Float32s(); err != nil {
			return false
		}
	}
	xt := types[n.Inputs[0]]
	if xt == nil || xt.Elem != Float || len(xt.Shape) != 4 || !xt.Shape[2].Known() || !xt.Shape[3].Known() {
		return false
	}
	in := []int64{xt.Shape[2].Value, xt.Shape[3].Value}
	k := wt.Dims[2:]
	w, err := windowAttrs(n, 2, k)
	if err != nil {
		return false
	}
	s := w.strides[0]
	if s < 2 || w.strides[1] != s || w.dilations[0] != 1 || w.dilations[1] != 1 {
		return false
	}
	outPad := n.AttrInts("output_padding", []int64{0, 0})
	if len(outPad) != 2 {
		return false
	}
	group := w.group
	cin, coutG := wt.Dims[0], wt.Dims[1]
	if group < 1 || cin%group != 0 || bias != nil && int64(len(bias)) != coutG*group {
		return false
	}
	if !subpixelAll && (group != 1 || in[0]*in[1] > subpixelMaxPositions) {
		return false // measured slower, see subpixelConvTransposes
	}
	wv, err := wt.Float32s()
	if err != nil {
		return false
	}
	// Output size per axis; the phases interleave with one DepthToSpace,
	// so every phase must have the same number of rows: size % s == 0.
	var size [2]int64
	for i := range 2 {
		size[i] = s*(in[i]-1) + outPad[i] + k[i] - w.padBegin[i] - w.padEnd[i]
		if size[i] <= 0 || size[i]%s != 0 || w.padBegin[i] < 0 || w.padEnd[i] < 0 {
			return false
		}
	}
	// Phase r of an axis (outputs i = s·q + r, 0 ≤ q < size/s) reads, with
	// a = (r + pad) mod s and c = (r + pad) div s, the taps t = s·j + a
	// (0 ≤ j < J = ⌈(k − a)/s⌉) at inputs q + c − j: a correlation of the
	// input padded by J − 1 − c before with the reversed taps.
	type phase struct{ a, taps, padBegin, padEnd int64 }
	phases := [2][]phase{}
	for i := range 2 {
		for r := range s {
			a, c := (r+w.padBegin[i])%s, (r+w.padBegin[i])/s
			j := (k[i] - a + s - 1) / s
			pb := j - 1 - c
			pe := size[i]/s - in[i] - pb + j - 1
			if j < 1 || pb < 0 || pe < 0 {
				return false
			}
			phases[i] = append(phases[i], phase{a, j, pb, pe})
		}
	}
	cinG, coutG := wt.Dims[0]/w.group, wt.Dims[1]
	kh, kw := k[0], k[1]
	var outs []string
	for _, ph := range phases[0] {
		for _, pw := range phases[1] {
			// Conv weight [cout, cin/g, Jh, Jw]: output channel gi·coutG + col
			// of group gi reads input channel gi·cinG + cl.
			cw := make([]float32, w.group*coutG*cinG*ph.taps*pw.taps)
			for gi := range w.group {
				for col := range coutG {
					co := gi*coutG + col
					for cl := range cinG {
						ci := gi*cinG + cl
						for uh := range ph.taps {
							th := s*(ph.taps-1-uh) + ph.a
							for uw := range pw.taps {
								tw := s*(pw.taps-1-uw) + pw.a
								cw[((co*cinG+cl)*ph.taps+uh)*pw.taps+uw] = wv[((ci*coutG+col)*kh+th)*kw+tw]
							}
						}
					}
				}
			}
			inputs := []string{n.Inputs[0], b.Initializer(NewFloatTensor(b.Fresh(n.Inputs[1]+"_phase"), []int64{w.group * coutG, cinG, ph.taps, pw.taps}, cw))}
			if n.Input(2) != "" {
				inputs = append(inputs, n.Input(2))
			}
			outs = append(outs, b.Op("Conv", inputs, IntsAttr("pads", ph.padBegin, pw.padBegin, ph.padEnd, pw.padEnd), IntAttr("group", w.group)))
		}
	}
	// Channel (rh·s + rw)·C + co: DepthToSpace's DCR order.
	b.Op("DepthToSpace", []string{b.Concat(1, outs...)}, IntAttr("blocksize", s), StringAttr("mode", "DCR"))
	g.Nodes[len(g.Nodes)-1].Outputs[0] = n.Outputs[0]
	return true
}
