package ort

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"

	ortgo "github.com/yalue/onnxruntime_go"
)

// ElementType is a tensor element type. The values are ONNX's
// TensorProto.DataType numbers.
type ElementType int32

// Element types.
const (
	Undefined  ElementType = 0
	Float32    ElementType = 1
	Uint8      ElementType = 2
	Int8       ElementType = 3
	Uint16     ElementType = 4
	Int16      ElementType = 5
	Int32      ElementType = 6
	Int64      ElementType = 7
	String     ElementType = 8
	Bool       ElementType = 9
	Float16    ElementType = 10
	Float64    ElementType = 11
	Uint32     ElementType = 12
	Uint64     ElementType = 13
	Complex64  ElementType = 14
	Complex128 ElementType = 15
	BFloat16   ElementType = 16
)

var elementTypeNames = [...]string{
	Undefined:  "undefined",
	Float32:    "float32",
	Uint8:      "uint8",
	Int8:       "int8",
	Uint16:     "uint16",
	Int16:      "int16",
	Int32:      "int32",
	Int64:      "int64",
	String:     "string",
	Bool:       "bool",
	Float16:    "float16",
	Float64:    "float64",
	Uint32:     "uint32",
	Uint64:     "uint64",
	Complex64:  "complex64",
	Complex128: "complex128",
	BFloat16:   "bfloat16",
}

func (t ElementType) String() string {
	if t >= 0 && int(t) < len(elementTypeNames) {
		return elementTypeNames[t]
	}
	return "ElementType(" + strconv.Itoa(int(t)) + ")"
}

// Element is the set of Go types that tensor data can have.
type Element interface {
	~float32 | ~float64 | ~int8 | ~uint8 | ~int16 | ~uint16 | ~int32 | ~uint32 | ~int64 | ~uint64 | ~bool
}

// ElementTypeOf returns the element type of a tensor of Ts.
func ElementTypeOf[T Element]() ElementType {
	switch reflect.TypeFor[T]().Kind() {
	case reflect.Float32:
		return Float32
	case reflect.Float64:
		return Float64
	case reflect.Int8:
		return Int8
	case reflect.Uint8:
		return Uint8
	case reflect.Int16:
		return Int16
	case reflect.Uint16:
		return Uint16
	case reflect.Int32:
		return Int32
	case reflect.Uint32:
		return Uint32
	case reflect.Int64:
		return Int64
	case reflect.Uint64:
		return Uint64
	case reflect.Bool:
		return Bool
	}
	return Undefined
}

// Value is a tensor that ONNX Runtime can read and write: a session input or
// output. The only implementation is [*TensorValue]. A Value must be closed
// when no longer needed.
type Value interface {
	// Shape returns the tensor's dimensions (empty for a scalar). The slice
	// must not be modified.
	Shape() []int64
	// ElementType returns the type of the tensor's elements.
	ElementType() ElementType
	// Close releases the ONNX Runtime side of the value. It is safe to call
	// more than once.
	Close() error
	// ortValue returns the onnxruntime_go value, nil once closed.
	ortValue() ortgo.Value
}

// TensorValue is a tensor of Ts shared between Go and ONNX Runtime.
//
// For a tensor of rank 1 or more, [TensorValue.Data] is the very memory ONNX
// Runtime reads (as an input) and writes (as a pre-allocated output): fill
// it, run, read it, without copies. A rank-0 (scalar) tensor keeps its one
// element in memory Go cannot reach; read and write it with
// [TensorValue.Item] and [TensorValue.SetItem].
//
// A TensorValue must not be written while a session run that uses it is in
// progress.
type TensorValue[T Element] struct {
	shape  []int64
	dense  *ortgo.Tensor[T] // rank >= 1
	scalar *ortgo.Scalar[T] // rank 0
}

// NewValue returns a tensor of the given shape that uses data, without
// copying, as its storage; len(data) must be the product of the dimensions.
// For a rank-0 shape (empty), data must hold one element, which is copied.
func NewValue[T Element](shape []int64, data []T) (*TensorValue[T], error) {
	n, err := numElements(shape)
	if err != nil {
		return nil, fmt.Errorf("ort: new %s tensor: %w", ElementTypeOf[T](), err)
	}
	if int64(len(data)) != n {
		return nil, fmt.Errorf("ort: new %s tensor of shape %v: got %d elements, want %d",
			ElementTypeOf[T](), shape, len(data), n)
	}
	v := &TensorValue[T]{shape: append([]int64{}, shape...)}
	if len(shape) == 0 {
		v.scalar, err = ortgo.NewScalar(data[0])
	} else {
		v.dense, err = ortgo.NewTensor(ortgo.Shape(v.shape), data)
	}
	if err != nil {
		return nil, fmt.Errorf("ort: new %s tensor of shape %v: %w", ElementTypeOf[T](), shape, notInitialized(err))
	}
	return v, nil
}

// NewEmptyValue returns a zero-filled tensor of the given shape, typically a
// pre-allocated session output.
func NewEmptyValue[T Element](shape []int64) (*TensorValue[T], error) {
	n, err := numElements(shape)
	if err != nil {
		return nil, fmt.Errorf("ort: new %s tensor: %w", ElementTypeOf[T](), err)
	}
	if n > math.MaxInt {
		return nil, fmt.Errorf("ort: new %s tensor of shape %v: too large", ElementTypeOf[T](), shape)
	}
	return NewValue(shape, make([]T, n))
}

func notInitialized(err error) error {
	if errors.Is(err, ortgo.NotInitializedError) {
		return errors.New("ONNX Runtime is not initialised: call ort.Init first")
	}
	return err
}

// numElements returns the product of the dimensions, checking each is
// non-negative and the product does not overflow.
func numElements(shape []int64) (int64, error) {
	n := int64(1)
	for i, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %v: dimension %d is negative", shape, i)
		}
		if d != 0 && n > math.MaxInt64/d {
			return 0, fmt.Errorf("shape %v: too many elements", shape)
		}
		n *= d
	}
	return n, nil
}

// Shape returns the tensor's dimensions; it must not be modified.
func (v *TensorValue[T]) Shape() []int64 {
	if v == nil {
		return nil
	}
	return v.shape
}

// ElementType returns the type of the elements.
func (v *TensorValue[T]) ElementType() ElementType { return ElementTypeOf[T]() }

// Data returns the tensor's elements, flattened in row-major order. For rank
// 1 or more it is the memory shared with ONNX Runtime; for a rank-0 tensor
// it is a one-element copy (use SetItem to change it). It is nil once the
// value is closed.
func (v *TensorValue[T]) Data() []T {
	switch {
	case v == nil:
		return nil
	case v.dense != nil:
		return v.dense.GetData()
	case v.scalar != nil:
		return []T{v.scalar.GetData()}
	}
	return nil
}

// Item returns the single element of a one-element tensor (a scalar, or any
// shape of size 1). It panics if the tensor does not hold exactly one
// element or is closed.
func (v *TensorValue[T]) Item() T {
	if v != nil && v.scalar != nil {
		return v.scalar.GetData()
	}
	d := v.Data()
	if len(d) != 1 {
		panic(fmt.Sprintf("ort: Item of a tensor with %d elements", len(d)))
	}
	return d[0]
}

// SetItem sets the single element of a one-element tensor.
func (v *TensorValue[T]) SetItem(x T) error {
	switch {
	case v == nil || (v.dense == nil && v.scalar == nil):
		return errors.New("ort: SetItem on a closed tensor")
	case v.scalar != nil:
		// onnxruntime_go's Scalar cannot change its value in place: make a
		// new one. The TensorValue stays the same for callers.
		s, err := ortgo.NewScalar(x)
		if err != nil {
			return fmt.Errorf("ort: set scalar: %w", notInitialized(err))
		}
		old := v.scalar
		v.scalar = s
		if err := old.Destroy(); err != nil {
			return fmt.Errorf("ort: release old scalar: %w", err)
		}
		return nil
	}
	d := v.dense.GetData()
	if len(d) != 1 {
		return fmt.Errorf("ort: SetItem on a tensor with %d elements", len(d))
	}
	d[0] = x
	return nil
}

// Close releases the ONNX Runtime side of the value; the Go slice given to
// NewValue stays valid. Closing twice is allowed.
func (v *TensorValue[T]) Close() error {
	if v == nil {
		return nil
	}
	var err error
	if v.dense != nil {
		err = v.dense.Destroy()
		v.dense = nil
	}
	if v.scalar != nil {
		err = errors.Join(err, v.scalar.Destroy())
		v.scalar = nil
	}
	if err != nil {
		return fmt.Errorf("ort: close tensor: %w", err)
	}
	return nil
}

func (v *TensorValue[T]) ortValue() ortgo.Value {
	switch {
	case v == nil:
		return nil
	case v.dense != nil:
		return v.dense
	case v.scalar != nil:
		return v.scalar
	}
	return nil
}

// Tensor is a plain Go tensor, for the convenience of [Session.RunTensors]
// and of tests.
type Tensor struct {
	// Shape holds the dimensions; empty for a scalar.
	Shape []int64
	// Data holds the elements in row-major order: a []float32, []float64,
	// []int8, []uint8, []int16, []uint16, []int32, []uint32, []int64,
	// []uint64 or []bool.
	Data any
}

// ElementType returns the type of t's elements, Undefined for an
// unsupported Data.
func (t *Tensor) ElementType() ElementType {
	switch t.Data.(type) {
	case []float32:
		return Float32
	case []float64:
		return Float64
	case []int8:
		return Int8
	case []uint8:
		return Uint8
	case []int16:
		return Int16
	case []uint16:
		return Uint16
	case []int32:
		return Int32
	case []uint32:
		return Uint32
	case []int64:
		return Int64
	case []uint64:
		return Uint64
	case []bool:
		return Bool
	}
	return Undefined
}

// ValueOf returns a Value that shares t's data (see [NewValue]).
func ValueOf(t *Tensor) (Value, error) {
	switch d := t.Data.(type) {
	case []float32:
		return NewValue(t.Shape, d)
	case []float64:
		return NewValue(t.Shape, d)
	case []int8:
		return NewValue(t.Shape, d)
	case []uint8:
		return NewValue(t.Shape, d)
	case []int16:
		return NewValue(t.Shape, d)
	case []uint16:
		return NewValue(t.Shape, d)
	case []int32:
		return NewValue(t.Shape, d)
	case []uint32:
		return NewValue(t.Shape, d)
	case []int64:
		return NewValue(t.Shape, d)
	case []uint64:
		return NewValue(t.Shape, d)
	case []bool:
		return NewValue(t.Shape, d)
	}
	return nil, fmt.Errorf("ort: unsupported tensor data type %T", t.Data)
}

// TensorOf returns a Tensor holding a copy of v's shape and data.
func TensorOf(v Value) (*Tensor, error) { return toTensor(v, true) }

// toTensor converts v to a Tensor, sharing v's data unless clone is set.
func toTensor(v Value, clone bool) (*Tensor, error) {
	switch v := v.(type) {
	case *TensorValue[float32]:
		return tensorOf(v, clone)
	case *TensorValue[float64]:
		return tensorOf(v, clone)
	case *TensorValue[int8]:
		return tensorOf(v, clone)
	case *TensorValue[uint8]:
		return tensorOf(v, clone)
	case *TensorValue[int16]:
		return tensorOf(v, clone)
	case *TensorValue[uint16]:
		return tensorOf(v, clone)
	case *TensorValue[int32]:
		return tensorOf(v, clone)
	case *TensorValue[uint32]:
		return tensorOf(v, clone)
	case *TensorValue[int64]:
		return tensorOf(v, clone)
	case *TensorValue[uint64]:
		return tensorOf(v, clone)
	case *TensorValue[bool]:
		return tensorOf(v, clone)
	}
	return nil, fmt.Errorf("ort: cannot convert %T to a Tensor", v)
}

func tensorOf[T Element](v *TensorValue[T], clone bool) (*Tensor, error) {
	if v.ortValue() == nil {
		return nil, errors.New("ort: tensor is closed")
	}
	data := v.Data()
	if clone {
		data = append([]T{}, data...)
	}
	return &Tensor{Shape: append([]int64{}, v.shape...), Data: data}, nil
}

// wrapOutput turns a value that onnxruntime_go allocated for a session output
// into a Value. On failure it destroys ov.
func wrapOutput(ov ortgo.Value) (Value, error) {
	switch t := ov.(type) {
	case *ortgo.Tensor[float32]:
		return wrapDense(t), nil
	case *ortgo.Tensor[float64]:
		return wrapDense(t), nil
	case *ortgo.Tensor[int8]:
		return wrapDense(t), nil
	case *ortgo.Tensor[uint8]:
		return wrapDense(t), nil
	case *ortgo.Tensor[int16]:
		return wrapDense(t), nil
	case *ortgo.Tensor[uint16]:
		return wrapDense(t), nil
	case *ortgo.Tensor[int32]:
		return wrapDense(t), nil
	case *ortgo.Tensor[uint32]:
		return wrapDense(t), nil
	case *ortgo.Tensor[int64]:
		return wrapDense(t), nil
	case *ortgo.Tensor[uint64]:
		return wrapDense(t), nil
	case *ortgo.Tensor[bool]:
		return wrapDense(t), nil
	case nil:
		return nil, errors.New("ONNX Runtime returned no value")
	}
	_ = ov.Destroy()
	return nil, fmt.Errorf("unsupported output value %T", ov)
}

func wrapDense[T Element](t *ortgo.Tensor[T]) *TensorValue[T] {
	return &TensorValue[T]{shape: t.GetShape(), dense: t}
}

// newEmptyOfType returns a zero-filled value of a runtime element type.
func newEmptyOfType(et ElementType, shape []int64) (Value, error) {
	switch et {
	case Float32:
		return NewEmptyValue[float32](shape)
	case Float64:
		return NewEmptyValue[float64](shape)
	case Int8:
		return NewEmptyValue[int8](shape)
	case Uint8:
		return NewEmptyValue[uint8](shape)
	case Int16:
		return NewEmptyValue[int16](shape)
	case Uint16:
		return NewEmptyValue[uint16](shape)
	case Int32:
		return NewEmptyValue[int32](shape)
	case Uint32:
		return NewEmptyValue[uint32](shape)
	case Int64:
		return NewEmptyValue[int64](shape)
	case Uint64:
		return NewEmptyValue[uint64](shape)
	case Bool:
		return NewEmptyValue[bool](shape)
	}
	return nil, fmt.Errorf("ort: element type %s is not supported", et)
}
