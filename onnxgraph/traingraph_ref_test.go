package onnxgraph_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/robust-go/robust/internal/testenv"

	og "github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/ort"
)

// A pure-Go float64 reference of the small BatchNorm CNN of
// TestTrainingGraphMatchesReference, and of 2-D Conv and ConvTranspose
// with every attribute (TestConvMatchesReference): forward and backward
// written out by hand from the ONNX operator definitions, independent of
// onnxgraph.

// tensor4 is a dense [n, c, h, w] array.
type tensor4 struct {
	n, c, h, w int
	d          []float64
}

func newT4(n, c, h, w int) *tensor4 { return &tensor4{n, c, h, w, make([]float64, n*c*h*w)} }

func (t *tensor4) at(n, c, h, w int) *float64 { return &t.d[((n*t.c+c)*t.h+h)*t.w+w] }

// conv2d computes y = conv(x, w) + b with square kernel k, stride s, pad p.
func conv2d(x *tensor4, w []float64, b []float64, m, k, s, p int) *tensor4 {
	oh, ow := (x.h+2*p-k)/s+1, (x.w+2*p-k)/s+1
	y := newT4(x.n, m, oh, ow)
	for n := 0; n < x.n; n++ {
		for o := 0; o < m; o++ {
			for i := 0; i < oh; i++ {
				for j := 0; j < ow; j++ {
					sum := b[o]
					for c := 0; c < x.c; c++ {
						for u := 0; u < k; u++ {
							for v := 0; v < k; v++ {
								hi, wi := i*s+u-p, j*s+v-p
								if hi >= 0 && hi < x.h && wi >= 0 && wi < x.w {
									sum += *x.at(n, c, hi, wi) * w[((o*x.c+c)*k+u)*k+v]
								}
							}
						}
					}
					*y.at(n, o, i, j) = sum
				}
			}
		}
	}
	return y
}

// conv2dBack returns dx, dw, db of conv2d.
func conv2dBack(x *tensor4, w []float64, dy *tensor4, k, s, p int) (*tensor4, []float64, []float64) {
	dx := newT4(x.n, x.c, x.h, x.w)
	dw := make([]float64, len(w))
	db := make([]float64, dy.c)
	for n := 0; n < x.n; n++ {
		for o := 0; o < dy.c; o++ {
			for i := 0; i < dy.h; i++ {
				for j := 0; j < dy.w; j++ {
					g := *dy.at(n, o, i, j)
					db[o] += g
					for c := 0; c < x.c; c++ {
						for u := 0; u < k; u++ {
							for v := 0; v < k; v++ {
								hi, wi := i*s+u-p, j*s+v-p
								if hi >= 0 && hi < x.h && wi >= 0 && wi < x.w {
									wIdx := ((o*x.c+c)*k+u)*k + v
									dw[wIdx] += g * *x.at(n, c, hi, wi)
									*dx.at(n, c, hi, wi) += g * w[wIdx]
								}
							}
						}
					}
				}
			}
		}
	}
	return dx, dw, db
}

// bnState holds what batch normalisation's backward pass needs.
type bnState struct {
	xhat             *tensor4
	mean, vr, invStd []float64 // batch mean, biased variance, 1/√(var+ε)
	gamma            []float64
	count            float64 // elements per channel
	newMean, newVar  []float64
}

func batchNormTrain(x *tensor4, gamma, beta, runMean, runVar []float64, eps, momentum float64) (*tensor4, *bnState) {
	st := &bnState{xhat: newT4(x.n, x.c, x.h, x.w), gamma: gamma, count: float64(x.n * x.h * x.w)}
	y := newT4(x.n, x.c, x.h, x.w)
	for c := 0; c < x.c; c++ {
		var sum, sq float64
		each(x, c, func(v *float64) { sum += *v })
		mean := sum / st.count
		each(x, c, func(v *float64) { sq += (*v - mean) * (*v - mean) })
		vr := sq / st.count
		inv := 1 / math.Sqrt(vr+eps)
		st.mean, st.vr, st.invStd = append(st.mean, mean), append(st.vr, vr), append(st.invStd, inv)
		st.newMean = append(st.newMean, momentum*runMean[c]+(1-momentum)*mean)
		st.newVar = append(st.newVar, momentum*runVar[c]+(1-momentum)*vr)
		for n := 0; n < x.n; n++ {
			for i := 0; i < x.h; i++ {
				for j := 0; j < x.w; j++ {
					xh := (*x.at(n, c, i, j) - mean) * inv
					*st.xhat.at(n, c, i, j) = xh
					*y.at(n, c, i, j) = gamma[c]*xh + beta[c]
				}
			}
		}
	}
	return y, st
}

// each calls f on every element of channel c.
func each(x *tensor4, c int, f func(*float64)) {
	for n := 0; n < x.n; n++ {
		for i := 0; i < x.h; i++ {
			for j := 0; j < x.w; j++ {
				f(x.at(n, c, i, j))
			}
		}
	}
}

func batchNormTrainBack(dy *tensor4, st *bnState) (*tensor4, []float64, []float64) {
	dx := newT4(dy.n, dy.c, dy.h, dy.w)
	dgamma := make([]float64, dy.c)
	dbeta := make([]float64, dy.c)
	for c := 0; c < dy.c; c++ {
		for n := 0; n < dy.n; n++ {
			for i := 0; i < dy.h; i++ {
				for j := 0; j < dy.w; j++ {
					g := *dy.at(n, c, i, j)
					dbeta[c] += g
					dgamma[c] += g * *st.xhat.at(n, c, i, j)
				}
			}
		}
		for n := 0; n < dy.n; n++ {
			for i := 0; i < dy.h; i++ {
				for j := 0; j < dy.w; j++ {
					g := *dy.at(n, c, i, j)
					xh := *st.xhat.at(n, c, i, j)
					*dx.at(n, c, i, j) = st.gamma[c] * st.invStd[c] * (g - dbeta[c]/st.count - xh*dgamma[c]/st.count)
				}
			}
		}
	}
	return dx, dgamma, dbeta
}

func relu4(x *tensor4) *tensor4 {
	y := newT4(x.n, x.c, x.h, x.w)
	for i, v := range x.d {
		y.d[i] = math.Max(v, 0)
	}
	return y
}

// reluBack masks dy where the forward output was not positive.
func reluBack(y, dy *tensor4) *tensor4 {
	dx := newT4(dy.n, dy.c, dy.h, dy.w)
	for i, v := range y.d {
		if v > 0 {
			dx.d[i] = dy.d[i]
		}
	}
	return dx
}

// maxPool2 is 2×2 max pooling with stride 2; it returns the argmax of each
// window as flat indices.
func maxPool2(x *tensor4) (*tensor4, []int) {
	y := newT4(x.n, x.c, x.h/2, x.w/2)
	arg := make([]int, len(y.d))
	for n := 0; n < x.n; n++ {
		for c := 0; c < x.c; c++ {
			for i := 0; i < y.h; i++ {
				for j := 0; j < y.w; j++ {
					best, bi := math.Inf(-1), 0
					for u := 0; u < 2; u++ {
						for v := 0; v < 2; v++ {
							idx := ((n*x.c+c)*x.h+2*i+u)*x.w + 2*j + v
							if x.d[idx] > best {
								best, bi = x.d[idx], idx
							}
						}
					}
					k := ((n*y.c+c)*y.h+i)*y.w + j
					y.d[k], arg[k] = best, bi
				}
			}
		}
	}
	return y, arg
}

// gemmT computes y = x·wᵀ + b for x [n, in], w [out, in].
func gemmT(x []float64, n, in int, w, b []float64, out int) []float64 {
	y := make([]float64, n*out)
	for r := 0; r < n; r++ {
		for o := 0; o < out; o++ {
			s := b[o]
			for i := 0; i < in; i++ {
				s += x[r*in+i] * w[o*in+i]
			}
			y[r*out+o] = s
		}
	}
	return y
}

// gemmTBack returns dx, dw, db of gemmT.
func gemmTBack(x []float64, n, in int, w []float64, out int, dy []float64) ([]float64, []float64, []float64) {
	dx := make([]float64, n*in)
	dw := make([]float64, out*in)
	db := make([]float64, out)
	for r := 0; r < n; r++ {
		for o := 0; o < out; o++ {
			g := dy[r*out+o]
			db[o] += g
			for i := 0; i < in; i++ {
				dw[o*in+i] += g * x[r*in+i]
				dx[r*in+i] += g * w[o*in+i]
			}
		}
	}
	return dx, dw, db
}

// softmaxCE returns the mean cross-entropy of logits z [n, k] and its
// gradient.
func softmaxCE(z []float64, n, k int, labels []int64) (float64, []float64) {
	loss := 0.0
	dz := make([]float64, len(z))
	for r := 0; r < n; r++ {
		row := z[r*k : (r+1)*k]
		mx := math.Inf(-1)
		for _, v := range row {
			mx = math.Max(mx, v)
		}
		sum := 0.0
		for _, v := range row {
			sum += math.Exp(v - mx)
		}
		lse := mx + math.Log(sum)
		loss += lse - row[labels[r]]
		for j, v := range row {
			p := math.Exp(v - lse)
			if int64(j) == labels[r] {
				p--
			}
			dz[r*k+j] = p / float64(n)
		}
	}
	return loss / float64(n), dz
}

// conv2dAttrs are the attributes of a 2-D Conv or ConvTranspose.
type conv2dAttrs struct {
	group              int
	strides, dilations [2]int
	pads               [4]int // begin H, begin W, end H, end W
	outputPadding      [2]int // ConvTranspose only
}

// convTerms calls term(yi, xi, wi) for every product x[xi]·w[wi] that the
// 2-D convolution y = Conv(x, w) (w [m, c/group, kh, kw]) adds into y[yi],
// as ONNX defines it: y[n, o, i, j] = Σ x[n, g·c/group + c', i·s + u·d − pb,
// j·s + v·d − pl] · w[o, c', u, v] over the positions inside x, g = the
// group of output channel o. It returns the output's shape.
func convTerms(x [4]int, m, kh, kw int, a conv2dAttrs, term func(yi, xi, wi int)) [4]int {
	n, c, h, w := x[0], x[1], x[2], x[3]
	oh := (h+a.pads[0]+a.pads[2]-((kh-1)*a.dilations[0]+1))/a.strides[0] + 1
	ow := (w+a.pads[1]+a.pads[3]-((kw-1)*a.dilations[1]+1))/a.strides[1] + 1
	cg, mg := c/a.group, m/a.group
	for b := range n {
		for o := range m {
			g := o / mg
			for i := range oh {
				for j := range ow {
					yi := ((b*m+o)*oh+i)*ow + j
					for ci := range cg {
						for u := range kh {
							for v := range kw {
								hi := i*a.strides[0] + u*a.dilations[0] - a.pads[0]
								wi := j*a.strides[1] + v*a.dilations[1] - a.pads[1]
								if hi < 0 || hi >= h || wi < 0 || wi >= w {
									continue
								}
								term(yi, ((b*c+g*cg+ci)*h+hi)*w+wi, ((o*cg+ci)*kh+u)*kw+v)
							}
						}
					}
				}
			}
		}
	}
	return [4]int{n, m, oh, ow}
}

// convTransposeTerms is convTerms for ConvTranspose (w [c, m/group, kh,
// kw]), as ONNX defines it: each x[n, g·c/group + c', i, j] adds
// x·w[g·c/group + c', o', u, v] into y[n, g·m/group + o', i·s + u·d − pb,
// j·s + v·d − pl] when that position lies in the output, whose size is
// s·(H−1) + output_padding + (k−1)·d + 1 − pb − pe.
func convTransposeTerms(x [4]int, m, kh, kw int, a conv2dAttrs, term func(yi, xi, wi int)) [4]int {
	n, c, h, w := x[0], x[1], x[2], x[3]
	oh := a.strides[0]*(h-1) + a.outputPadding[0] + (kh-1)*a.dilations[0] + 1 - a.pads[0] - a.pads[2]
	ow := a.strides[1]*(w-1) + a.outputPadding[1] + (kw-1)*a.dilations[1] + 1 - a.pads[1] - a.pads[3]
	cg, mg := c/a.group, m/a.group
	for b := range n {
		for ch := range c {
			g := ch / cg
			for i := range h {
				for j := range w {
					xi := ((b*c+ch)*h+i)*w + j
					for o := range mg {
						for u := range kh {
							for v := range kw {
								yh := i*a.strides[0] + u*a.dilations[0] - a.pads[0]
								yw := j*a.strides[1] + v*a.dilations[1] - a.pads[1]
								if yh < 0 || yh >= oh || yw < 0 || yw >= ow {
									continue
								}
								term(((b*m+g*mg+o)*oh+yh)*ow+yw, xi, ((ch*mg+o)*kh+u)*kw+v)
							}
						}
					}
				}
			}
		}
	}
	return [4]int{n, m, oh, ow}
}

// termsFunc enumerates the products of a convolution (convTerms or
// convTransposeTerms).
type termsFunc func(x [4]int, m, kh, kw int, a conv2dAttrs, term func(yi, xi, wi int)) [4]int

// convRef returns y = conv(x, w) + b and, for the upstream gradient dy of
// y's shape, ∂⟨dy, y⟩ with respect to x, w and b: each product's adjoint,
// dx[xi] += dy[yi]·w[wi] and dw[wi] += dy[yi]·x[xi].
func convRef(terms termsFunc, x []float64, xs [4]int, w []float64, m, kh, kw int, b []float64, a conv2dAttrs,
	upstream func(ys [4]int) []float64) (y, dy, dx, dw, db []float64, ys [4]int) {
	ys = terms(xs, m, kh, kw, a, func(int, int, int) {})
	y = make([]float64, ys[0]*ys[1]*ys[2]*ys[3])
	terms(xs, m, kh, kw, a, func(yi, xi, wi int) { y[yi] += x[xi] * w[wi] })
	plane := ys[2] * ys[3]
	for i := range y {
		y[i] += b[i/plane%m]
	}
	dy = upstream(ys)
	dx, dw, db = make([]float64, len(x)), make([]float64, len(w)), make([]float64, m)
	terms(xs, m, kh, kw, a, func(yi, xi, wi int) {
		dx[xi] += dy[yi] * w[wi]
		dw[wi] += dy[yi] * x[xi]
	})
	for i, g := range dy {
		db[i/plane%m] += g
	}
	return y, dy, dx, dw, db, ys
}

// TestConvMatchesReference differentiates single Conv and ConvTranspose
// nodes (grouped, depthwise, dilated, strided, asymmetric pads, output
// padding) with Gradients, runs the graph in ONNX Runtime (float32) and
// compares y and ∂⟨R, y⟩/∂x, ∂/∂W, ∂/∂B with the float64 reference above,
// element by element: |got − want| ≤ 2e-6·max(1, ‖want‖∞) + 1e-5·|want|,
// over 10× the float32 error seen, so that a rule off by 0.01% fails.
// ONNX Runtime's own Conv and ConvTranspose kernels check the reference's
// forward definition (y).
func TestConvMatchesReference(t *testing.T) {
	env := testenv.ORT(t)
	tests := []struct {
		name      string
		transpose bool
		x         [4]int
		m, kh, kw int
		a         conv2dAttrs
	}{
		{"Grouped", false, [4]int{2, 4, 6, 5}, 6, 3, 3,
			conv2dAttrs{group: 2, strides: [2]int{1, 2}, dilations: [2]int{1, 1}, pads: [4]int{1, 0, 1, 2}}},
		{"Dilated", false, [4]int{2, 2, 9, 8}, 3, 3, 2,
			conv2dAttrs{group: 1, strides: [2]int{2, 1}, dilations: [2]int{2, 3}, pads: [4]int{2, 1, 0, 2}}},
		{"DepthwiseDilatedStrided", false, [4]int{2, 3, 9, 8}, 6, 3, 3,
			conv2dAttrs{group: 3, strides: [2]int{2, 2}, dilations: [2]int{2, 2}, pads: [4]int{2, 1, 1, 2}}},
		{"GroupedDilatedAsymmetric", false, [4]int{1, 6, 8, 9}, 4, 2, 3,
			conv2dAttrs{group: 2, strides: [2]int{3, 2}, dilations: [2]int{3, 1}, pads: [4]int{0, 2, 2, 0}}},
		{"Transposed", true, [4]int{2, 4, 3, 4}, 3, 3, 2,
			conv2dAttrs{group: 1, strides: [2]int{2, 3}, dilations: [2]int{1, 2}, pads: [4]int{1, 0, 0, 1}, outputPadding: [2]int{1, 2}}},
		{"TransposedGrouped", true, [4]int{2, 4, 3, 3}, 6, 3, 3,
			conv2dAttrs{group: 2, strides: [2]int{2, 2}, dilations: [2]int{2, 1}, pads: [4]int{1, 1, 1, 1}, outputPadding: [2]int{1, 0}}},
		{"TransposedDepthwise", true, [4]int{1, 3, 4, 4}, 3, 2, 2,
			conv2dAttrs{group: 3, strides: [2]int{1, 1}, dilations: [2]int{1, 1}, pads: [4]int{0, 0, 0, 0}}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(11, uint64(i)))
			cin := tc.x[1]
			wd := [4]int{tc.m, cin / tc.a.group, tc.kh, tc.kw}
			terms := termsFunc(convTerms)
			if tc.transpose {
				wd = [4]int{cin, tc.m / tc.a.group, tc.kh, tc.kw}
				terms = convTransposeTerms
			}
			x := randUniform(r, tc.x[0]*tc.x[1]*tc.x[2]*tc.x[3], -1, 1)
			w := randUniform(r, wd[0]*wd[1]*wd[2]*wd[3], -1, 1)
			bias := randUniform(r, tc.m, -1, 1)
			y, dy, dx, dw, db, ys := convRef(terms, x, tc.x, w, tc.m, tc.kh, tc.kw, bias, tc.a, func(ys [4]int) []float64 {
				return randUniform(r, ys[0]*ys[1]*ys[2]*ys[3], -1, 1)
			})

			dims := func(d [4]int) og.Shape { return og.Dims(int64(d[0]), int64(d[1]), int64(d[2]), int64(d[3])) }
			a := tc.a
			opts := og.ConvOpts{
				Group: int64(a.group), Strides: []int64{int64(a.strides[0]), int64(a.strides[1])},
				Dilations: []int64{int64(a.dilations[0]), int64(a.dilations[1])},
				Pads:      []int64{int64(a.pads[0]), int64(a.pads[1]), int64(a.pads[2]), int64(a.pads[3])},
			}
			build := func() (m *og.Model, y, loss string) {
				b := og.NewBuilder("conv_ref")
				xi, wi := b.Input("x", og.Float, dims(tc.x)), b.Input("w", og.Float, dims(wd))
				bi, ri := b.Input("b", og.Float, og.Dims(int64(tc.m))), b.Input("r", og.Float, dims(ys))
				if tc.transpose {
					opts.OutputPadding = []int64{int64(a.outputPadding[0]), int64(a.outputPadding[1])}
					y = b.ConvTranspose(xi, wi, bi, opts)
				} else {
					y = b.Conv(xi, wi, bi, opts)
				}
				loss = b.ReduceSum(b.Mul(y, ri), nil, false)
				b.Output(loss, og.Float, og.Shape{})
				b.Output(y, og.Float, dims(ys))
				return b.Model(), y, loss
			}
			wrt, want := []string{"x", "w", "b"}, [][]float64{dx, dw, db}
			m, yo, loss := build()
			grads, err := og.Gradients(m, loss, wrt, nil)
			if err != nil && tc.transpose && tc.a.group > 1 && strings.Contains(err.Error(), "not supported") {
				// Documented limitation: check the gradients that exist.
				t.Logf("%v; checking ∂/∂x and ∂/∂b only", err)
				wrt, want = []string{"x", "b"}, [][]float64{dx, db}
				m, yo, loss = build()
				grads, err = og.Gradients(m, loss, wrt, nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			s, err := newSession(env, m, append([]string{yo}, grads...))
			if err != nil {
				t.Fatal(err)
			}
			defer s.close()
			got, err := s.run(map[string]*ort.Tensor{
				"x": tensorOf(og.Float, dims(tc.x).Ints(), x), "w": tensorOf(og.Float, dims(wd).Ints(), w),
				"b": tensorOf(og.Float, []int64{int64(tc.m)}, bias), "r": tensorOf(og.Float, dims(ys).Ints(), dy),
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := matchReference(values(got[yo]), y); err != nil {
				t.Errorf("y: %v", err)
			}
			for k, g := range grads {
				if err := matchReference(values(got[g]), want[k]); err != nil {
					t.Errorf("∂L/∂%s: %v", wrt[k], err)
				}
			}
		})
	}
}

// matchReference compares float32 results with a float64 reference,
// element by element (see TestConvMatchesReference).
func matchReference(got, want []float64) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d values, want %d", len(got), len(want))
	}
	floor := 2e-6 * math.Max(1, maxAbs(want))
	for i := range got {
		if e := math.Abs(got[i] - want[i]); e > floor+1e-5*math.Abs(want[i]) {
			return fmt.Errorf("[%d] = %.7g, reference %.7g", i, got[i], want[i])
		}
	}
	return nil
}
