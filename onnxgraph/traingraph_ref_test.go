package onnxgraph_test

import "math"

// A pure-Go float64 reference of the small BatchNorm CNN of
// TestTrainingGraphMatchesReference: forward and backward written out by
// hand, independent of onnxgraph.

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
