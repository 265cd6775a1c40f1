package onnxgraph

import "slices"

// subpixelConvTransposes rewrites strided 2-D ConvTranspose nodes with
// constant weights (the input gradients of strided convolutions) as one
// unit-stride Conv over the same input, whose s² phase kernels are cut from
// the weights here, a DepthToSpace (CRD) that interleaves the phases, and a
// Slice that drops the pads:
//
//	Y[i′] = Σ_{o·s+t = i′} X[o]·W[t], i′ = s·q + r  ⇒  Y[s·q+r] = Σ_j X[q−j]·W[s·j+r]
//
// for 0 ≤ j < J = ⌈k/s⌉ (taps past k are zero): phase r is a correlation
// of X, padded by J−1 before, with the J reversed taps W[s·(J−1−u)+r].
// The Conv does (J·s/k)² the multiply-adds of the ConvTranspose (16/9 for
// 3×3 kernels with stride 2, 64/49 for 7×7), but ONNX Runtime runs it as
// a pre-packed NCHWc convolution on both threads, where its CPU
// ConvTranspose runs a GEMM and col2im image by image. Kernels no wider
// than the stride (1×1 stride 2: 4× the work) are left alone. Only
// ConvTransposes with dilation 1, equal strides on both axes, explicit pads
// and inputs of static spatial size are rewritten. The result equals the
// ConvTranspose up to float32 summation order.
func subpixelConvTransposes(m *Model) int {
	g := m.Graph
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
	if s < 2 || w.strides[1] != s || w.dilations[0] != 1 || w.dilations[1] != 1 || k[0] <= s || k[1] <= s {
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
	wv, err := wt.Float32s()
	if err != nil {
		return false
	}
	// Output size, phase rows needed and the Conv's end pads per axis.
	var size, convPads, sliceStart, sliceEnd [2]int64
	var q [2]int64 // phase rows after the Conv
	jj := [2]int64{(k[0] + s - 1) / s, (k[1] + s - 1) / s}
	for i := range 2 {
		size[i] = s*(in[i]-1) + outPad[i] + k[i] - w.padBegin[i] - w.padEnd[i]
		if size[i] <= 0 || w.padBegin[i] < 0 || w.padEnd[i] < 0 {
			return false
		}
		need := (size[i] + w.padBegin[i] + s - 1) / s
		convPads[i] = max(0, need-in[i])
		q[i] = in[i] + convPads[i]
		sliceStart[i], sliceEnd[i] = w.padBegin[i], w.padBegin[i]+size[i]
	}
	// Phase kernels: Conv output channel co·s² + rh·s + rw (CRD order, which
	// keeps each group's channels together), input channel cl of group gi.
	cinG, cout := cin/group, coutG*group
	kh, kw := k[0], k[1]
	cw := make([]float32, cout*s*s*cinG*jj[0]*jj[1])
	for gi := range group {
		for col := range coutG {
			co := gi*coutG + col
			for rh := range s {
				for rw := range s {
					oc := (co*s+rh)*s + rw
					for cl := range cinG {
						ci := gi*cinG + cl
						for uh := range jj[0] {
							th := s*(jj[0]-1-uh) + rh
							if th >= kh {
								continue
							}
							for uw := range jj[1] {
								tw := s*(jj[1]-1-uw) + rw
								if tw >= kw {
									continue
								}
								cw[((oc*cinG+cl)*jj[0]+uh)*jj[1]+uw] = wv[((ci*coutG+col)*kh+th)*kw+tw]
							}
						}
					}
				}
			}
		}
	}
	inputs := []string{n.Inputs[0], b.Initializer(NewFloatTensor(b.Fresh(n.Inputs[1]+"_subpixel"), []int64{cout * s * s, cinG, jj[0], jj[1]}, cw))}
	if bias != nil {
		cb := make([]float32, cout*s*s)
		for i := range cb {
			cb[i] = bias[i/int(s*s)]
		}
		inputs = append(inputs, b.Initializer(NewFloatTensor(b.Fresh(n.Input(2)+"_subpixel"), []int64{cout * s * s}, cb)))
	}
	conv := b.Op("Conv", inputs, IntsAttr("pads", jj[0]-1, jj[1]-1, convPads[0], convPads[1]), IntAttr("group", group))
	d2s := b.Op("DepthToSpace", []string{conv}, IntAttr("blocksize", s), StringAttr("mode", "CRD"))
	last := g.Nodes[len(g.Nodes)-1]
	if sliceStart != [2]int64{0, 0} || sliceEnd != [2]int64{s * q[0], s * q[1]} {
		b.Op("Slice", []string{d2s, b.ConstInt64(sliceStart[:]...), b.ConstInt64(sliceEnd[:]...), b.ConstInt64(2, 3)})
		last = g.Nodes[len(g.Nodes)-1]
	}
	last.Outputs[0] = n.Outputs[0]
	return true
}
