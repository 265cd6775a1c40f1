package dataset

import (
	"reflect"
	"slices"
	"testing"
)

func TestSubsetSelectSlice(t *testing.T) {
	d := indexDataset(10, 2, 2, 2)
	s := d.Subset(4)
	if s.Len() != 4 || s.Name != d.Name || s.NumClasses != 10 || len(s.X) != 4*8 {
		t.Fatalf("Subset(4): %v", s)
	}
	if &s.X[0] != &d.X[0] {
		t.Error("Subset copies")
	}
	s.Y = append(s.Y, 99) // must not clobber d
	if d.Y[4] != 4 {
		t.Error("appending to a subset overwrote the dataset")
	}
	if d.Subset(100).Len() != 10 || d.Subset(-1).Len() != 0 {
		t.Error("Subset does not clamp")
	}

	sel, err := d.Select([]int{7, 2, 7})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sel.Y, []int64{7, 2, 7}) || !slices.Equal(sel.Image(1), d.Image(2)) {
		t.Errorf("Select: %v", sel.Y)
	}
	sel.X[0] = 0.123
	if d.Image(7)[0] == 0.123 {
		t.Error("Select shares storage")
	}
	if _, err := d.Select([]int{10}); err == nil {
		t.Error("Select(10) accepted")
	}

	b := d.Slice(3, 6)
	if b.Len() != 3 || !reflect.DeepEqual([]int(b.X.Shape()), []int{3, 2, 2, 2}) || b.Y[0] != 3 || &b.Data[0] != &d.Image(3)[0] {
		t.Errorf("Slice: %v %v", b.X.Shape(), b.Y)
	}
	if e := d.Slice(2, 2); e.X != nil || e.Len() != 0 {
		t.Error("empty Slice")
	}
}

func TestSplit(t *testing.T) {
	d := indexDataset(50, 1, 1, 1)
	tr, val, err := d.Split(12, 5)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Len() != 38 || val.Len() != 12 {
		t.Fatalf("sizes %d/%d", tr.Len(), val.Len())
	}
	if !slices.IsSorted(tr.Y) || !slices.IsSorted(val.Y) {
		t.Error("split parts are not in dataset order")
	}
	all := slices.Concat(tr.Y, val.Y)
	slices.Sort(all)
	for i, l := range all {
		if l != int64(i) {
			t.Fatalf("split parts are not a partition: %v", all)
		}
	}
	for i, l := range val.Y { // pixels travel with labels
		if val.Image(i)[0] != d.Image(int(l))[0] {
			t.Fatal("pixels and labels separated")
		}
	}
	tr2, val2, _ := d.Split(12, 5)
	if !slices.Equal(val.Y, val2.Y) || !slices.Equal(tr.Y, tr2.Y) {
		t.Error("Split is not deterministic")
	}
	_, val3, _ := d.Split(12, 6)
	if slices.Equal(val.Y, val3.Y) {
		t.Error("Split ignores the seed")
	}
	if _, v, err := d.Split(0, 1); err != nil || v.Len() != 0 {
		t.Errorf("Split(0): %v %v", v, err)
	}
	for _, n := range []int{-1, 50} {
		if _, _, err := d.Split(n, 1); err == nil {
			t.Errorf("Split(%d) accepted", n)
		}
	}
}

func TestValidate(t *testing.T) {
	good := func() *Dataset { return indexDataset(3, 1, 2, 2) }
	if err := good().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(d *Dataset)
		target error
	}{
		{"zero channels", func(d *Dataset) { d.C = 0 }, ErrShape},
		{"short X", func(d *Dataset) { d.X = d.X[:5] }, ErrSizeMismatch},
		{"label too big", func(d *Dataset) { d.Y[1] = 3 }, ErrLabelRange},
		{"negative label", func(d *Dataset) { d.Y[1] = -1 }, ErrLabelRange},
		{"no classes", func(d *Dataset) { d.NumClasses = 0 }, ErrLabelRange},
		{"class names", func(d *Dataset) { d.Classes = []string{"a"} }, ErrCountMismatch},
		{"pixel > 1", func(d *Dataset) { d.X[5] = 1.01 }, ErrValueRange},
	} {
		d := good()
		tc.mutate(d)
		t.Run(tc.name, func(t *testing.T) { wantErr(t, d.Validate(), tc.target) })
	}
	if s := good().String(); s != "index: 3×1×2×2, 3 classes" {
		t.Errorf("String() = %q", s)
	}
}
