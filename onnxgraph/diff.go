package onnxgraph

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
)

// Difference is what Diff found between two models.
type Difference struct {
	// Structure lists differences other than initializer values: opsets,
	// inputs, outputs, nodes, attributes, initializer names/types/shapes.
	Structure []string
	// Values lists the initializers whose values differ, in graph order.
	Values []ValueChange
	// Metadata lists metadata keys added, removed or changed.
	Metadata []string
	// Unchanged counts initializers with identical values.
	Unchanged int
}

// ValueChange describes an initializer whose values changed.
type ValueChange struct {
	Name    string
	Count   int64   // elements
	Changed int64   // elements that differ
	MaxAbs  float64 // largest absolute difference (floating-point tensors)
}

// OnlyValuesChanged reports whether the two models have the same structure
// (the metadata may differ).
func (d *Difference) OnlyValuesChanged() bool { return len(d.Structure) == 0 }

// Diff compares model a with model b.
func Diff(a, b *Model) *Difference {
	d := &Difference{}
	add := func(format string, args ...any) { d.Structure = append(d.Structure, fmt.Sprintf(format, args...)) }
	if a.IRVersion != b.IRVersion {
		add("IR version %d → %d", a.IRVersion, b.IRVersion)
	}
	if !slices.Equal(a.Opsets, b.Opsets) {
		add("opsets %s → %s", opsetsText(a.Opsets), opsetsText(b.Opsets))
	}
	diffValueInfos(add, "input", a.Graph.Inputs, b.Graph.Inputs)
	diffValueInfos(add, "output", a.Graph.Outputs, b.Graph.Outputs)
	if len(a.Graph.Nodes) != len(b.Graph.Nodes) {
		add("%d nodes → %d nodes", len(a.Graph.Nodes), len(b.Graph.Nodes))
	} else {
		for i, na := range a.Graph.Nodes {
			nb := b.Graph.Nodes[i]
			switch {
			case na.OpType != nb.OpType || na.Domain != nb.Domain:
				add("node %d: %v → %v", i, na, nb)
			case !slices.Equal(na.Inputs, nb.Inputs) || !slices.Equal(na.Outputs, nb.Outputs):
				add("node %d (%v): inputs/outputs %v→%v changed to %v→%v", i, na, na.Inputs, na.Outputs, nb.Inputs, nb.Outputs)
			case !reflect.DeepEqual(na.Attrs, nb.Attrs):
				add("node %d (%v): attributes changed", i, na)
			}
		}
	}
	bInit := map[string]*Tensor{}
	for _, t := range b.Graph.Initializers {
		bInit[t.Name] = t
	}
	for _, ta := range a.Graph.Initializers {
		tb := bInit[ta.Name]
		delete(bInit, ta.Name)
		switch {
		case tb == nil:
			add("initializer %q removed", ta.Name)
		case ta.DataType != tb.DataType || !slices.Equal(ta.Dims, tb.Dims):
			add("initializer %q: %s%v → %s%v", ta.Name, ta.DataType, ta.Dims, tb.DataType, tb.Dims)
		case bytes.Equal(ta.Raw, tb.Raw) && reflect.DeepEqual(ta.Strings, tb.Strings):
			d.Unchanged++
		default:
			d.Values = append(d.Values, compareValues(ta, tb))
		}
	}
	for _, tb := range b.Graph.Initializers {
		if bInit[tb.Name] != nil {
			add("initializer %q added", tb.Name)
		}
	}
	am := map[string]string{}
	for _, e := range a.Metadata {
		am[e.Key] = e.Value
	}
	for _, e := range b.Metadata {
		old, ok := am[e.Key]
		switch {
		case !ok:
			d.Metadata = append(d.Metadata, fmt.Sprintf("+ %s = %s", e.Key, e.Value))
		case old != e.Value:
			d.Metadata = append(d.Metadata, fmt.Sprintf("~ %s = %s (was %s)", e.Key, e.Value, old))
		}
		delete(am, e.Key)
	}
	for _, e := range a.Metadata {
		if _, ok := am[e.Key]; ok {
			d.Metadata = append(d.Metadata, fmt.Sprintf("- %s", e.Key))
		}
	}
	return d
}

func diffValueInfos(add func(string, ...any), kind string, a, b []*ValueInfo) {
	if len(a) != len(b) {
		add("%d %ss → %d", len(a), kind, len(b))
		return
	}
	for i := range a {
		if a[i].Name != b[i].Name || !reflect.DeepEqual(a[i].Type, b[i].Type) {
			add("%s %d: %s %v → %s %v", kind, i, a[i].Name, a[i].Type, b[i].Name, b[i].Type)
		}
	}
}

func compareValues(a, b *Tensor) ValueChange {
	c := ValueChange{Name: a.Name, Count: a.NumElements()}
	fa, errA := a.Float64s()
	fb, errB := b.Float64s()
	if errA != nil || errB != nil || len(fa) != len(fb) {
		c.Changed = c.Count
		c.MaxAbs = math.NaN()
		return c
	}
	for i := range fa {
		if fa[i] != fb[i] {
			c.Changed++
			c.MaxAbs = max(c.MaxAbs, math.Abs(fa[i]-fb[i]))
		}
	}
	return c
}

// opsetsText writes opset imports as "ai.onnx 17, ai.onnx.ml 3".
func opsetsText(ops []OpsetID) string {
	parts := make([]string, len(ops))
	for i, o := range ops {
		d := o.Domain
		if d == "" {
			d = "ai.onnx"
		}
		parts[i] = fmt.Sprintf("%s %d", d, o.Version)
	}
	return strings.Join(parts, ", ")
}
