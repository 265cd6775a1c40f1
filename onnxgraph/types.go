package onnxgraph

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/robust-go/robust/internal/onnxpb"
)

// DataType is an ONNX tensor element type (TensorProto.DataType).
type DataType int32

// ONNX tensor element types.
const (
	Undefined  DataType = 0
	Float      DataType = 1
	Uint8      DataType = 2
	Int8       DataType = 3
	Uint16     DataType = 4
	Int16      DataType = 5
	Int32      DataType = 6
	Int64      DataType = 7
	String     DataType = 8
	Bool       DataType = 9
	Float16    DataType = 10
	Double     DataType = 11
	Uint32     DataType = 12
	Uint64     DataType = 13
	Complex64  DataType = 14
	Complex128 DataType = 15
	BFloat16   DataType = 16
)

// String returns the lower-case ONNX name of the type ("float", "int64", ...).
func (d DataType) String() string {
	if name, ok := onnxpb.TensorProto_DataType_name[int32(d)]; ok {
		return strings.ToLower(name)
	}
	return "datatype(" + strconv.Itoa(int(d)) + ")"
}

// Size is the size in bytes of one element, or 0 for strings and unknown types.
func (d DataType) Size() int {
	switch d {
	case Uint8, Int8, Bool:
		return 1
	case Uint16, Int16, Float16, BFloat16:
		return 2
	case Float, Int32, Uint32:
		return 4
	case Double, Int64, Uint64, Complex64:
		return 8
	case Complex128:
		return 16
	}
	return 0
}

// IsFloat reports whether d is a floating-point type.
func (d DataType) IsFloat() bool {
	return d == Float || d == Double || d == Float16 || d == BFloat16
}

// Dim is one dimension of a tensor shape: a known size (Param == "" and
// Value >= 0), a symbolic size (Param != "", e.g. "N"), or unknown
// (Param == "" and Value < 0).
type Dim struct {
	Value      int64
	Param      string
	Denotation string
}

// D returns a known dimension.
func D(v int64) Dim { return Dim{Value: v} }

// Sym returns a symbolic dimension such as the batch dimension "N".
func Sym(name string) Dim { return Dim{Value: -1, Param: name} }

// Unknown returns a dimension of unknown size.
func Unknown() Dim { return Dim{Value: -1} }

// Known reports whether the dimension has a concrete size.
func (d Dim) Known() bool { return d.Param == "" && d.Value >= 0 }

func (d Dim) String() string {
	switch {
	case d.Param != "":
		return d.Param
	case d.Value < 0:
		return "?"
	}
	return strconv.FormatInt(d.Value, 10)
}

// Shape is a tensor shape. A nil Shape in a TensorType means the rank is
// unknown; an empty non-nil Shape is a scalar.
type Shape []Dim

// Dims builds a shape of known dimensions.
func Dims(vs ...int64) Shape {
	s := make(Shape, len(vs))
	for i, v := range vs {
		s[i] = D(v)
	}
	return s
}

// Known reports whether every dimension has a concrete size.
func (s Shape) Known() bool {
	for _, d := range s {
		if !d.Known() {
			return false
		}
	}
	return s != nil
}

// Ints returns the dimensions as integers, with -1 for symbolic or unknown ones.
func (s Shape) Ints() []int64 {
	out := make([]int64, len(s))
	for i, d := range s {
		out[i] = d.Value
		if !d.Known() {
			out[i] = -1
		}
	}
	return out
}

// Size is the number of elements, or -1 when a dimension is not known.
func (s Shape) Size() int64 {
	n := int64(1)
	for _, d := range s {
		if !d.Known() {
			return -1
		}
		n *= d.Value
	}
	return n
}

// Equal reports whether two shapes are the same dimension by dimension
// (symbolic dimensions compare by name).
func (s Shape) Equal(o Shape) bool {
	if (s == nil) != (o == nil) || len(s) != len(o) {
		return false
	}
	for i := range s {
		if s[i].Value != o[i].Value || s[i].Param != o[i].Param {
			return false
		}
	}
	return true
}

func (s Shape) String() string {
	if s == nil {
		return "[?rank]"
	}
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = d.String()
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// TensorType is the type of a tensor value: element type and (possibly
// partial) shape.
type TensorType struct {
	Elem  DataType
	Shape Shape
}

func (t TensorType) String() string { return fmt.Sprintf("%s%s", t.Elem, t.Shape) }

// ValueInfo describes a named value: a graph input or output, or an
// intermediate value annotated with its type.
type ValueInfo struct {
	Name      string
	DocString string
	// Type is the tensor type; nil when the value is not a tensor (see Other)
	// or carries no type.
	Type *TensorType
	// Other holds a non-tensor type (sequence, map, optional, sparse tensor)
	// unchanged, and the type's denotation.
	Other *onnxpb.TypeProto
}

// NewValueInfo returns a tensor value description.
func NewValueInfo(name string, elem DataType, shape Shape) *ValueInfo {
	return &ValueInfo{Name: name, Type: &TensorType{Elem: elem, Shape: shape}}
}
