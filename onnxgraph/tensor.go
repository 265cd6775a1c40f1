package onnxgraph

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"
)

// Tensor is a constant tensor: an initializer, a Constant node's value or a
// tensor attribute. Numeric data is held as little-endian bytes in Raw (the
// layout of ONNX raw_data) whatever field the file used; strings are in
// Strings.
type Tensor struct {
	Name      string
	DataType  DataType
	Dims      []int64
	Raw       []byte
	Strings   [][]byte
	DocString string
}

// NumElements returns the product of the dimensions (1 for a scalar).
func (t *Tensor) NumElements() int64 {
	n := int64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// Shape returns the tensor's dimensions as a Shape.
func (t *Tensor) Shape() Shape { return Dims(t.Dims...) }

// Clone returns a deep copy of t.
func (t *Tensor) Clone() *Tensor {
	c := *t
	c.Dims = append([]int64(nil), t.Dims...)
	c.Raw = append([]byte(nil), t.Raw...)
	if t.Strings != nil {
		c.Strings = make([][]byte, len(t.Strings))
		for i, s := range t.Strings {
			c.Strings[i] = append([]byte(nil), s...)
		}
	}
	return &c
}

// check verifies that the data size matches the dimensions.
func (t *Tensor) check() error {
	n := t.NumElements()
	if n < 0 {
		return fmt.Errorf("tensor %q: negative dimension in %v", t.Name, t.Dims)
	}
	if t.DataType == String {
		if int64(len(t.Strings)) != n {
			return fmt.Errorf("tensor %q: %d strings for shape %v", t.Name, len(t.Strings), t.Dims)
		}
		return nil
	}
	size := t.DataType.Size()
	if size == 0 {
		return fmt.Errorf("tensor %q: unsupported data type %s", t.Name, t.DataType)
	}
	if int64(len(t.Raw)) != n*int64(size) {
		return fmt.Errorf("tensor %q: %d bytes of data for %s%v (want %d)", t.Name, len(t.Raw), t.DataType, t.Dims, n*int64(size))
	}
	return nil
}

// NewFloatTensor returns a float32 tensor with a copy of data.
func NewFloatTensor(name string, dims []int64, data []float32) *Tensor {
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return &Tensor{Name: name, DataType: Float, Dims: append([]int64{}, dims...), Raw: raw}
}

// FloatTensorOver returns a float32 tensor whose bytes are data's own
// memory where the machine's byte order is ONNX's (little-endian: every
// machine ONNX Runtime ships for), and a copy elsewhere, so that a
// weights-sized tensor costs no second copy. data must not be changed
// afterwards; nothing in robust writes a tensor's bytes in place ([Model.Clone]
// relies on the same).
func FloatTensorOver(name string, dims []int64, data []float32) *Tensor {
	if len(data) == 0 || binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		return NewFloatTensor(name, dims, data)
	}
	raw := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(data))), 4*len(data))
	return &Tensor{Name: name, DataType: Float, Dims: append([]int64{}, dims...), Raw: raw}
}

// NewDoubleTensor returns a float64 tensor with a copy of data.
func NewDoubleTensor(name string, dims []int64, data []float64) *Tensor {
	raw := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(raw[8*i:], math.Float64bits(v))
	}
	return &Tensor{Name: name, DataType: Double, Dims: append([]int64{}, dims...), Raw: raw}
}

// NewInt64Tensor returns an int64 tensor with a copy of data.
func NewInt64Tensor(name string, dims []int64, data []int64) *Tensor {
	raw := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	return &Tensor{Name: name, DataType: Int64, Dims: append([]int64{}, dims...), Raw: raw}
}

// NewInt32Tensor returns an int32 tensor with a copy of data.
func NewInt32Tensor(name string, dims []int64, data []int32) *Tensor {
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], uint32(v))
	}
	return &Tensor{Name: name, DataType: Int32, Dims: append([]int64{}, dims...), Raw: raw}
}

// Float32s returns the data of a float, double or float16 tensor as float32.
func (t *Tensor) Float32s() (_ []float32, err error) {
	defer prefixErr(&err)
	if err := t.check(); err != nil {
		return nil, err
	}
	n := int(t.NumElements())
	out := make([]float32, n)
	switch t.DataType {
	case Float:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Raw[4*i:]))
		}
	case Double:
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(t.Raw[8*i:])))
		}
	case Float16:
		for i := range out {
			out[i] = halfToFloat(binary.LittleEndian.Uint16(t.Raw[2*i:]))
		}
	case BFloat16:
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(t.Raw[2*i:])) << 16)
		}
	default:
		return nil, fmt.Errorf("tensor %q: %s is not a floating-point type", t.Name, t.DataType)
	}
	return out, nil
}

// Float64s returns the data of a floating-point tensor as float64.
func (t *Tensor) Float64s() (_ []float64, err error) {
	defer prefixErr(&err)
	if t.DataType == Double {
		if err := t.check(); err != nil {
			return nil, err
		}
		out := make([]float64, t.NumElements())
		for i := range out {
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(t.Raw[8*i:]))
		}
		return out, nil
	}
	f, err := t.Float32s()
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(f))
	for i, v := range f {
		out[i] = float64(v)
	}
	return out, nil
}

// Int64s returns the data of an integer or bool tensor as int64.
func (t *Tensor) Int64s() (_ []int64, err error) {
	defer prefixErr(&err)
	if err := t.check(); err != nil {
		return nil, err
	}
	out := make([]int64, t.NumElements())
	r := t.Raw
	for i := range out {
		switch t.DataType {
		case Int64:
			out[i] = int64(binary.LittleEndian.Uint64(r[8*i:]))
		case Uint64:
			out[i] = int64(binary.LittleEndian.Uint64(r[8*i:]))
		case Int32:
			out[i] = int64(int32(binary.LittleEndian.Uint32(r[4*i:])))
		case Uint32:
			out[i] = int64(binary.LittleEndian.Uint32(r[4*i:]))
		case Int16:
			out[i] = int64(int16(binary.LittleEndian.Uint16(r[2*i:])))
		case Uint16:
			out[i] = int64(binary.LittleEndian.Uint16(r[2*i:]))
		case Int8:
			out[i] = int64(int8(r[i]))
		case Uint8, Bool:
			out[i] = int64(r[i])
		default:
			return nil, fmt.Errorf("tensor %q: %s is not an integer type", t.Name, t.DataType)
		}
	}
	return out, nil
}

// halfToFloat converts an IEEE 754 half-precision value to float32.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal
		for mant&0x400 == 0 {
			mant <<= 1
			exp--
		}
		exp++
		mant &= 0x3ff
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}
