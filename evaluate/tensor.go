package evaluate

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"

	"gorgonia.org/tensor"

	"github.com/robust-go/robust/attacks"
	"github.com/robust-go/robust/dataset"
)

// RunTensor evaluates a model, as [Run] does, on images held in memory by
// a Go program: x is a float32 tensor of shape [N, C, H, W] with values in
// [0,1] (the model's preprocessing, if any, belongs inside the model, see
// [Prepare]) and labels an integer tensor (int, int64, int32 or uint8) of
// shape [N]. Neither is modified; x's data is used in place when it is a
// dense row-major tensor.
func RunTensor(ctx context.Context, m attacks.Model, x, labels tensor.Tensor, cfg Config) (*Report, error) {
	d, err := FromTensors(x, labels, m.Classes())
	if err != nil {
		return nil, err
	}
	if cfg.Data == "" {
		cfg.Data = d.Name
	}
	return Run(ctx, m, d, cfg)
}

// AttackTensor runs one attack, as [Attack] does, on every image of x
// (see [RunTensor] for x and labels) and returns the adversarial images
// as a new float32 tensor of x's shape with the verified outcome.
func AttackTensor(ctx context.Context, m attacks.Model, a attacks.Attack, t attacks.ThreatModel, x, labels tensor.Tensor, opts AttackOptions) (tensor.Tensor, *Outcome, error) {
	d, err := FromTensors(x, labels, m.Classes())
	if err != nil {
		return nil, nil, err
	}
	if opts.Rng == nil {
		opts.Rng = rand.New(rand.NewPCG(0, 0))
	}
	idx := make([]int, d.Len())
	for i := range idx {
		idx[i] = i
	}
	out, err := Attack(ctx, m, a, t, d, idx, opts)
	if err != nil {
		return nil, nil, err
	}
	adv := tensor.New(tensor.WithShape(d.Len(), d.C, d.H, d.W), tensor.WithBacking(out.Adv))
	return adv, out, nil
}

// FromTensors wraps images and labels held as tensors (see [RunTensor])
// as a data set of the given number of classes (at least one more than
// the largest label).
func FromTensors(x, labels tensor.Tensor, classes int) (*dataset.Dataset, error) {
	if x == nil || labels == nil {
		return nil, errors.New("evaluate: nil images or labels")
	}
	s := x.Shape()
	if len(s) != 4 {
		return nil, fmt.Errorf("evaluate: images of shape %v, want [N, C, H, W]", s)
	}
	if x.Dtype() != tensor.Float32 {
		return nil, fmt.Errorf("evaluate: images of type %v, want float32", x.Dtype())
	}
	pix, err := float32Data(x)
	if err != nil {
		return nil, err
	}
	n := s[0]
	if ls := labels.Shape(); ls.TotalSize() != n || len(ls) > 1 && !(len(ls) == 2 && ls[1] == 1) {
		return nil, fmt.Errorf("evaluate: labels of shape %v for %d images, want [%d]", ls, n, n)
	}
	y, err := int64Data(labels)
	if err != nil {
		return nil, err
	}
	d := &dataset.Dataset{Name: "tensor", C: s[1], H: s[2], W: s[3], X: pix, Y: y, NumClasses: classes}
	for i, v := range y {
		if v < 0 || int(v) >= classes {
			return nil, fmt.Errorf("evaluate: label %d of image %d is not one of the model's %d classes", v, i, classes)
		}
	}
	for i, v := range pix {
		if !(v >= 0 && v <= 1) {
			return nil, fmt.Errorf("evaluate: value %v at index %d of the images is outside [0,1]", v, i)
		}
	}
	return d, nil
}

// float32Data returns a tensor's values in row-major order: in place for
// a dense row-major tensor, else copied element by element (views,
// column-major layouts).
func float32Data(t tensor.Tensor) ([]float32, error) {
	if d, ok := t.(*tensor.Dense); ok && !d.RequiresIterator() && !d.DataOrder().IsColMajor() {
		if v, ok := d.Data().([]float32); ok {
			return v, nil
		}
	}
	s := t.Shape()
	out := make([]float32, s.TotalSize())
	coord := make([]int, len(s))
	for i := range out {
		for k, r := len(s)-1, i; k >= 0; k-- {
			coord[k], r = r%s[k], r/s[k]
		}
		v, err := t.At(coord...)
		if err != nil {
			return nil, fmt.Errorf("evaluate: images: %w", err)
		}
		f, ok := v.(float32)
		if !ok {
			return nil, fmt.Errorf("evaluate: images hold %T, want float32", v)
		}
		out[i] = f
	}
	return out, nil
}

// int64Data converts integer labels to int64.
func int64Data(t tensor.Tensor) ([]int64, error) {
	d, ok := tensor.Materialize(t).(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("evaluate: labels of kind %T, want a dense tensor", t)
	}
	data := d.Data()
	if d.IsScalar() { // one label: gorgonia makes a one-element backing a scalar
		switch v := data.(type) {
		case int64:
			data = []int64{v}
		case int:
			data = []int{v}
		case int32:
			data = []int32{v}
		case uint8:
			data = []uint8{v}
		}
	}
	switch v := data.(type) {
	case []int64:
		return v, nil
	case []int:
		return convert(v), nil
	case []int32:
		return convert(v), nil
	case []uint8:
		return convert(v), nil
	}
	return nil, fmt.Errorf("evaluate: labels of type %v and shape %v, want int, int64, int32 or uint8 of shape [N]", t.Dtype(), t.Shape())
}

func convert[T int | int32 | int64 | uint8](v []T) []int64 {
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out
}
