package onnxgraph

import (
	"slices"
	"testing"
)

// TestFoldConstants builds the shape chains PyTorch exports and checks
// which nodes FoldConstants replaces, the folded values and the shape of
// the result.
func TestFoldConstants(t *testing.T) {
	for _, tc := range []struct {
		name string
		// build returns the value to check and the chain nodes' outputs
		// that must be folded (or kept).
		build      func(b *Builder, x string) (out string, folded, kept []string)
		wantShape  Shape
		wantFolded map[int][]int64 // index in folded → value
	}{{
		name: "reshape target from a static dimension",
		build: func(b *Builder, x string) (string, []string, []string) {
			sh := b.Op("Shape", []string{x})
			c := b.Op("Gather", []string{sh, b.ConstInt64(1)}, IntAttr("axis", 0))
			target := b.Op("Concat", []string{b.ConstInt64(-1), c, b.ConstInt64(64)}, IntAttr("axis", 0))
			return b.Op("Reshape", []string{x, target}), []string{c, target}, []string{sh}
		},
		wantShape: Shape{Sym("N"), D(3), D(64)},
	}, {
		name: "batch dimension stays computed",
		build: func(b *Builder, x string) (string, []string, []string) {
			sh := b.Op("Shape", []string{x})
			n := b.Op("Gather", []string{sh, b.ConstInt64(0)}, IntAttr("axis", 0))
			target := b.Op("Concat", []string{n, b.ConstInt64(-1)}, IntAttr("axis", 0))
			return b.Op("Reshape", []string{x, target}), nil, []string{n, target}
		},
		wantShape: Shape{Sym("N"), D(192)},
	}, {
		name: "heads folded into the batch and back (attention)",
		build: func(b *Builder, x string) (string, []string, []string) {
			zero := b.Initializer(NewInt64Tensor("", []int64{}, []int64{0}))
			n := b.Op("Gather", []string{b.Op("Shape", []string{x}), zero}, IntAttr("axis", 0))
			nh := b.Op("Unsqueeze", []string{b.Op("Mul", []string{n, b.Initializer(NewInt64Tensor("", []int64{}, []int64{3}))}), b.ConstInt64(0)})
			heads := b.Op("Reshape", []string{x, b.Op("Concat", []string{nh, b.ConstInt64(8, -1)}, IntAttr("axis", 0))})
			back := b.Op("Concat", []string{b.Op("Unsqueeze", []string{n, b.ConstInt64(0)}), b.ConstInt64(-1)}, IntAttr("axis", 0))
			return b.Op("Reshape", []string{heads, back}), nil, []string{nh, back}
		},
		wantShape: Shape{Sym("N"), D(192)},
	}, {
		name: "slice bounds from arithmetic (ShuffleNet channel split)",
		build: func(b *Builder, x string) (string, []string, []string) {
			sh := b.Op("Shape", []string{x})
			c := b.Op("Gather", []string{sh, b.ConstInt64(1)}, IntAttr("axis", 0))
			half := b.Op("Div", []string{c, b.ConstInt64(3)})
			end := b.Op("Mul", []string{half, b.ConstInt64(2)})
			return b.Op("Slice", []string{x, half, end, b.ConstInt64(1)}), []string{half, end}, nil
		},
		wantShape: Shape{Sym("N"), D(1), D(8), D(8)},
	}, {
		name: "expand shape through Equal and Where (ViT class token)",
		build: func(b *Builder, x string) (string, []string, []string) {
			sh := b.Op("Shape", []string{x})
			zero := b.Initializer(NewInt64Tensor("", []int64{}, []int64{0}))
			n := b.Op("Gather", []string{sh, zero}, IntAttr("axis", 0))
			want := b.Op("Concat", []string{b.Op("Unsqueeze", []string{n, b.ConstInt64(0)}), b.ConstInt64(-1, -1)}, IntAttr("axis", 0))
			isNeg := b.Op("Equal", []string{want, b.ConstInt64(-1)})
			target := b.Op("Where", []string{isNeg, b.ConstInt64(1), want})
			tok := b.Initializer(NewFloatTensor("", []int64{1, 1, 5}, make([]float32, 5)))
			return b.Op("Expand", []string{tok, target}), []string{isNeg}, []string{target}
		},
		wantShape: Shape{Sym("N"), D(1), D(5)},
	}, {
		name: "ConstantOfShape and Range sizes",
		build: func(b *Builder, x string) (string, []string, []string) {
			sh := b.Op("Shape", []string{x})
			hw := b.Op("Slice", []string{sh, b.ConstInt64(-2), b.ConstInt64(1 << 40)})
			ones := b.Op("ConstantOfShape", []string{hw}, TensorAttr("value", NewInt64Tensor("", []int64{1}, []int64{1})))
			cum := b.Op("Range", []string{b.Op("Squeeze", []string{b.Op("Slice", []string{hw, b.ConstInt64(0), b.ConstInt64(1)}), b.ConstInt64(0)}),
				b.ConstInt64(0), b.ConstInt64(-2)})
			mask := b.Op("Less", []string{cum, b.ConstInt64(5)})
			return b.Op("Cast", []string{mask}, IntAttr("to", int64(Float))), []string{hw, ones, cum, mask}, nil
		},
		wantShape:  Shape{D(4)},
		wantFolded: map[int][]int64{3: {0, 0, 1, 1}}, // Range gives 8, 6, 4, 2
	}, {
		name: "window padding from Mod, transposed and reversed (Swin)",
		build: func(b *Builder, x string) (string, []string, []string) {
			sh := b.Op("Shape", []string{x})
			w := b.Op("Slice", []string{sh, b.ConstInt64(3), b.ConstInt64(4)})
			padW := b.Op("Mod", []string{b.Op("Sub", []string{b.ConstInt64(5), b.Op("Mod", []string{w, b.ConstInt64(5)})}), b.ConstInt64(5)})
			pairs := b.Op("Concat", []string{b.ConstInt64(0), padW, b.ConstInt64(0, 0, 0, 0, 0, 0)}, IntAttr("axis", 0))
			grid := b.Op("Reshape", []string{pairs, b.ConstInt64(-1, 2)})
			rev := b.Op("Slice", []string{grid, b.ConstInt64(-1), b.ConstInt64(-1 << 62), b.ConstInt64(0), b.ConstInt64(-1)})
			pads := b.Op("Reshape", []string{b.Op("Transpose", []string{rev}, IntsAttr("perm", 1, 0)), b.ConstInt64(-1)})
			return b.Op("Pad", []string{x, pads}), []string{padW, grid, rev, pads}, nil
		},
		wantShape:  Shape{Sym("N"), D(3), D(8), D(10)},
		wantFolded: map[int][]int64{3: {0, 0, 0, 0, 0, 0, 0, 2}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBuilder("fold")
			x := b.Input("x", Float, Shape{Sym("N"), D(3), D(8), D(8)})
			out, folded, kept := tc.build(b, x)
			b.Output(out, Float, nil)
			m := b.Model()
			if _, err := FoldConstants(m); err != nil {
				t.Fatal(err)
			}
			producers := m.Graph.Producers()
			for _, v := range folded {
				if producers[v] != nil {
					t.Errorf("%s was not folded", v)
				}
			}
			// Folded values that only fed other folded values are gone;
			// the rest are initializers.
			for _, n := range m.Graph.Nodes {
				for _, in := range n.Inputs {
					if in != "" && producers[in] == nil && m.Graph.Initializer(in) == nil && m.Graph.Input(in) == nil {
						t.Errorf("%v reads %q, which nothing defines", n, in)
					}
				}
			}
			for _, v := range kept {
				if producers[v] == nil {
					t.Errorf("%s was folded; it depends on the symbolic batch", v)
				}
			}
			for i, want := range tc.wantFolded {
				init := m.Graph.Initializer(folded[i])
				if init == nil {
					t.Errorf("no folded initializer %q", folded[i])
					continue
				}
				if got, err := init.Int64s(); err != nil || !slices.Equal(got, want) {
					t.Errorf("%s = %v (%v), want %v", folded[i], got, err, want)
				}
			}
			types, err := InferShapes(m)
			if err != nil {
				t.Fatal(err)
			}
			if got := types[out].Shape; got.String() != tc.wantShape.String() {
				t.Errorf("output shape %v, want %v", got, tc.wantShape)
			}
			if err := m.Validate(); err != nil {
				t.Error(err)
			}
		})
	}
}
