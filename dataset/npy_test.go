package dataset

import (
	"archive/zip"
	"bytes"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestNPYRoundTrip(t *testing.T) {
	for _, a := range []Array{
		{Shape: []int{2, 3}, Data: []float32{0, 0.5, 1, -2, float32(math.Inf(1)), 3.25}},
		{Shape: []int{4}, Data: []float64{1, 2, 3, 4}},
		{Shape: []int{2, 1, 2}, Data: []int64{-1, 1 << 40, 7, 0}},
		{Shape: []int{3}, Data: []int32{-5, 6, 7}},
		{Shape: []int{1}, Data: []int16{-300}},
		{Shape: []int{2}, Data: []int8{-1, 1}},
		{Shape: []int{2, 2}, Data: []uint8{0, 255, 1, 2}},
		{Shape: []int{1}, Data: []uint16{65535}},
		{Shape: []int{1}, Data: []uint32{1 << 31}},
		{Shape: []int{1}, Data: []uint64{1 << 63}},
		{Shape: []int{3}, Data: []bool{true, false, true}},
		{Shape: []int{}, Data: []int64{42}},               // 0-d
		{Shape: []int{0, 5}, Data: []float32{}},           // empty
		{Shape: []int{3000}, Data: make([]float64, 3000)}, // several chunks? (no: one) still fine
	} {
		var b bytes.Buffer
		if err := EncodeNPY(&b, a); err != nil {
			t.Fatalf("%v: %v", a.Shape, err)
		}
		if b.Len()%64 != a.Size()*itemSize(t, a)%64 {
			// Header is padded so data starts 64-byte aligned.
			t.Errorf("%T %v: header not 64-aligned (file %d bytes)", a.Data, a.Shape, b.Len())
		}
		got, err := DecodeNPY(bytes.NewReader(b.Bytes()), int64(b.Len()))
		if err != nil {
			t.Fatalf("%T %v: %v", a.Data, a.Shape, err)
		}
		if !reflect.DeepEqual(got, a) {
			t.Errorf("round trip: got %+v, want %+v", got, a)
		}
	}
}

func itemSize(t *testing.T, a Array) int {
	dt, _, ok := dataDtype(a.Data)
	if !ok {
		t.Fatalf("bad type %T", a.Data)
	}
	return dt.size
}

// TestNPYGolden checks the exact bytes numpy.save writes for a small array.
func TestNPYGolden(t *testing.T) {
	var b bytes.Buffer
	if err := EncodeNPY(&b, Array{Shape: []int{2}, Data: []int64{1, 2}}); err != nil {
		t.Fatal(err)
	}
	dict := "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }"
	want := "\x93NUMPY\x01\x00v\x00" + dict + strings.Repeat(" ", 128-10-len(dict)-1) + "\n" +
		"\x01\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00"
	if b.String() != want {
		t.Errorf("got\n%q\nwant\n%q", b.String(), want)
	}
}

// TestNumPyFixtures reads files written by NumPy (testdata/gen_fixtures.py).
func TestNumPyFixtures(t *testing.T) {
	// x[n,h,w,c] = (n*60 + h*12 + w*3 + c) % 256 for 3×4×5×3; y = 2, 0, 1.
	want := &Dataset{C: 3, H: 4, W: 5, NumClasses: 3, Y: []int64{2, 0, 1}}
	for n := range 3 {
		for c := range 3 {
			for h := range 4 {
				for w := range 5 {
					want.X = append(want.X, float32(byte(n*60+h*12+w*3+c))/255)
				}
			}
		}
	}
	check := func(name string, d *Dataset, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d.C != want.C || d.H != want.H || d.W != want.W || d.NumClasses != 3 || !reflect.DeepEqual(d.Y, want.Y) {
			t.Fatalf("%s: got %v labels %v", name, d, d.Y)
		}
		for i := range want.X {
			if math.Abs(float64(d.X[i]-want.X[i])) > 1e-7 {
				t.Fatalf("%s: X[%d] = %v, want %v", name, i, d.X[i], want.X[i])
			}
		}
	}
	d, err := LoadNPZ("testdata/numpy_nhwc_u8.npz", "")
	check("savez uint8 NHWC", d, err)
	if d.Name != "numpy_nhwc_u8" {
		t.Errorf("name %q", d.Name)
	}
	d, err = LoadNPZ("testdata/numpy_nchw_f64_compressed.npz", "test")
	check("savez_compressed float64 NCHW", d, err)
	d, err = LoadNPYPair("testdata/numpy_x_f32.npy", "testdata/numpy_y_u8.npy", 0)
	check("npy pair", d, err)

	be, err := ReadNPY("testdata/numpy_big_endian_f4.npy")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(be, Array{Shape: []int{2, 2}, Data: []float32{0.25, 0.5, 0.75, 1}}) {
		t.Errorf("big-endian: %+v", be)
	}
	all, err := ReadNPZ("testdata/numpy_nhwc_u8.npz")
	if err != nil || len(all) != 2 || !reflect.DeepEqual(all["x"].Shape, []int{3, 4, 5, 3}) {
		t.Errorf("ReadNPZ: %v %v", all["x"].Shape, err)
	}
}

func TestParseNPYHeader(t *testing.T) {
	for _, tc := range []struct {
		hdr   string
		shape []int
		typ   string
		big   bool
		err   string
	}{
		{"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }   \n", []int{3, 4}, "float32", false, ""},
		{`{"descr": "|u1", "shape": (), "fortran_order": False}`, []int{}, "uint8", false, ""},
		{"{'descr': '<f8', 'fortran_order': False, 'shape': (2L,), }", []int{2}, "float64", false, ""}, // Python 2
		{"{'descr': '>i4', 'fortran_order': False, 'shape': (1,)}", []int{1}, "int32", true, ""},
		{"{'descr': '<f4', 'fortran_order': True, 'shape': (3, 4), }", nil, "", false, "Fortran"},
		{"{'descr': '<U5', 'fortran_order': False, 'shape': (3,), }", nil, "", false, "unsupported dtype"},
		{"{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }", nil, "", false, "unsupported dtype"},
		{"{'descr': '|O', 'fortran_order': False, 'shape': (3,), }", nil, "", false, "unsupported dtype"},
		{"{'descr': '<f4', 'shape': (3,), }", nil, "", false, "lacks"},
		{"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 'a'), }", nil, "", false, "non-integer"},
		{"{'descr': '<f4'", nil, "", false, "missing ','"},
		{"[1, 2]", nil, "", false, "unexpected"},
	} {
		typ, shape, big, err := parseNPYHeader(tc.hdr)
		if tc.err != "" {
			// An internal error: DecodeNPY adds the package name.
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: got %v, want %v mentioning %q", tc.hdr, err, ErrFormat, tc.err)
			}
			continue
		}
		if err != nil || typ.String() != tc.typ || !reflect.DeepEqual(shape, tc.shape) || big != tc.big {
			t.Errorf("%q: got %v %v %v %v", tc.hdr, typ, shape, big, err)
		}
	}
}

func TestDecodeNPYErrors(t *testing.T) {
	var b bytes.Buffer
	if err := EncodeNPY(&b, Array{Shape: []int{4}, Data: []float32{1, 2, 3, 4}}); err != nil {
		t.Fatal(err)
	}
	good := b.Bytes()
	for _, tc := range []struct {
		name   string
		data   []byte
		size   int64
		target error
		sub    string
	}{
		{"truncated data", good[:len(good)-3], int64(len(good) - 3), ErrTruncated, "needs 16 data bytes, file has 13"},
		{"truncated data, size unknown", good[:len(good)-3], 0, ErrTruncated, "data ends after 13 of 16 bytes"},
		{"trailing data", append(append([]byte(nil), good...), 0), int64(len(good) + 1), ErrSizeMismatch, "1 bytes follow"},
		{"truncated header", good[:30], 30, ErrTruncated, "header"},
		{"truncated preamble", good[:5], 5, ErrTruncated, "preamble"},
		{"not npy", []byte("PK\x03\x04 this is a zip"), 20, ErrFormat, "not an .npy file"},
		{"bad version", append([]byte("\x93NUMPY\x09\x00"), good[8:]...), int64(len(good)), ErrFormat, "version 9.0"},
	} {
		_, err := DecodeNPY(bytes.NewReader(tc.data), tc.size)
		t.Run(tc.name, func(t *testing.T) { wantErr(t, err, tc.target, tc.sub) })
	}
}

func TestFromArrays(t *testing.T) {
	// NHWC uint8 → NCHW.
	x := Array{Shape: []int{1, 2, 2, 3}, Data: []uint8{
		0, 10, 20, 1, 11, 21,
		2, 12, 22, 3, 13, 23,
	}}
	d, err := FromArrays(x, Array{Shape: []int{1, 1}, Data: []int32{4}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var want []float32
	for _, v := range []byte{0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23} {
		want = append(want, float32(v)/255)
	}
	if d.C != 3 || d.H != 2 || d.W != 2 || !reflect.DeepEqual(d.X, want) || d.NumClasses != 5 || d.Y[0] != 4 {
		t.Errorf("NHWC: got %v X=%v", d, d.X)
	}
	// (N,H,W) float64 and explicit class count.
	d, err = FromArrays(Array{Shape: []int{2, 1, 2}, Data: []float64{0, 0.25, 0.5, 1}}, Array{Shape: []int{2}, Data: []uint8{0, 1}}, 10)
	if err != nil || d.C != 1 || d.NumClasses != 10 || !reflect.DeepEqual(d.X, []float32{0, 0.25, 0.5, 1}) {
		t.Errorf("NHW: %v %v", d, err)
	}

	y2 := Array{Shape: []int{2}, Data: []int64{0, 1}}
	for _, tc := range []struct {
		name   string
		x, y   Array
		nc     int
		target error
		sub    string
	}{
		{"value above 1", Array{Shape: []int{2, 1, 1, 1}, Data: []float32{0.5, 1.5}}, y2, 0, ErrValueRange, "value 1.5 at sample 1"},
		{"NaN", Array{Shape: []int{2, 1, 1}, Data: []float64{math.NaN(), 0}}, y2, 0, ErrValueRange, "NaN"},
		{"negative", Array{Shape: []int{2, 1, 1}, Data: []float32{0, -0.1}}, y2, 0, ErrValueRange, "-0.1"},
		{"2-D images", Array{Shape: []int{2, 4}, Data: make([]float32, 8)}, y2, 0, ErrShape, "(N,H,W)"},
		{"no channel axis", Array{Shape: []int{2, 8, 8, 8}, Data: make([]float32, 1024)}, y2, 0, ErrShape, "no channel axis"},
		{"int images", Array{Shape: []int{2, 1, 1}, Data: []int32{0, 1}}, y2, 0, ErrFormat, "int32"},
		{"float labels", Array{Shape: []int{2, 1, 1}, Data: []uint8{0, 1}}, Array{Shape: []int{2}, Data: []float32{0, 1}}, 0, ErrFormat, "labels of type float32"},
		{"negative label", Array{Shape: []int{2, 1, 1}, Data: []uint8{0, 1}}, Array{Shape: []int{2}, Data: []int8{0, -1}}, 0, ErrLabelRange, "label -1"},
		{"label ≥ classes", Array{Shape: []int{2, 1, 1}, Data: []uint8{0, 1}}, y2, 1, ErrLabelRange, "label 1 of sample 1"},
		{"count mismatch", Array{Shape: []int{3, 1, 1}, Data: []uint8{0, 1, 2}}, y2, 0, ErrCountMismatch, "3 images but y has 2"},
		{"2-D labels", Array{Shape: []int{2, 1, 1}, Data: []uint8{0, 1}}, Array{Shape: []int{2, 2}, Data: []int64{0, 1, 0, 1}}, 0, ErrShape, "(N,1)"},
		{"empty", Array{Shape: []int{0, 1, 1}, Data: []uint8{}}, Array{Shape: []int{0}, Data: []int64{}}, 0, ErrEmpty, ""},
		{"zero-size images", Array{Shape: []int{2, 1, 0, 1}, Data: []uint8{}}, y2, 0, ErrShape, "empty image dimension"},
		{"shape/data mismatch", Array{Shape: []int{2, 1, 2}, Data: []uint8{0, 1}}, y2, 0, ErrShape, "2 elements for shape [2 1 2]"},
	} {
		_, err := FromArrays(tc.x, tc.y, tc.nc)
		t.Run(tc.name, func(t *testing.T) { wantErr(t, err, tc.target, tc.sub) })
	}
}

func TestNPZDataset(t *testing.T) {
	dir := t.TempDir()
	src := indexDataset(6, 3, 2, 2)
	src.NumClasses = 20 // more classes than labels present
	p := filepath.Join(dir, "adv.npz")
	if err := src.SaveNPZ(p); err != nil {
		t.Fatal(err)
	}
	d, err := LoadNPZ(p, "test")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(d.X, src.X) || !reflect.DeepEqual(d.Y, src.Y) || d.NumClasses != 20 || d.C != 3 || d.Name != "adv" {
		t.Errorf("SaveNPZ/LoadNPZ round trip: %v", d)
	}
	// Writing is deterministic.
	p2 := filepath.Join(dir, "adv2.npz")
	if err := src.SaveNPZ(p2); err != nil {
		t.Fatal(err)
	}
	b1, _ := os.ReadFile(p)
	b2, _ := os.ReadFile(p2)
	if !bytes.Equal(b1, b2) {
		t.Error("SaveNPZ output differs between runs")
	}
	// No temporary files left behind.
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("directory holds %d entries", len(ents))
	}

	// Keras-style split keys.
	k := filepath.Join(dir, "keras.npz")
	if err := WriteNPZ(k, map[string]Array{
		"x_train": {Shape: []int{2, 2, 2}, Data: []uint8{0, 1, 2, 3, 4, 5, 6, 7}},
		"y_train": {Shape: []int{2}, Data: []uint8{1, 0}},
		"x_test":  {Shape: []int{1, 2, 2}, Data: []uint8{255, 255, 255, 255}},
		"y_test":  {Shape: []int{1}, Data: []uint8{3}},
	}); err != nil {
		t.Fatal(err)
	}
	tr, err := LoadNPZ(k, "train")
	if err != nil || tr.Len() != 2 || tr.Partition != "train" || tr.NumClasses != 2 {
		t.Errorf("train: %v %v", tr, err)
	}
	te, err := LoadNPZ(k, "test")
	if err != nil || te.Len() != 1 || te.X[0] != 1 || te.Y[0] != 3 {
		t.Errorf("test: %v %v", te, err)
	}
	_, err = LoadNPZ(k, "")
	wantErr(t, err, ErrFormat, k, "want keys x and y", "x_test, x_train, y_test, y_train")
}

func TestNPZErrors(t *testing.T) {
	dir := t.TempDir()
	notZip := writeFile(t, filepath.Join(dir, "not.npz"), []byte("definitely not a zip archive"))
	_, err := LoadNPZ(notZip, "")
	wantErr(t, err, ErrFormat, notZip, "not a zip")

	good := filepath.Join(dir, "good.npz")
	if err := indexDataset(4, 1, 3, 3).SaveNPZ(good); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(good)
	cut := writeFile(t, filepath.Join(dir, "cut.npz"), b[:len(b)/2])
	_, err = LoadNPZ(cut, "")
	wantErr(t, err, ErrFormat, cut)

	// An entry whose .npy is truncated inside an intact archive.
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	for _, e := range []struct {
		name string
		a    Array
	}{{"x.npy", Array{Shape: []int{2, 2, 2}, Data: make([]float32, 8)}}, {"y.npy", Array{Shape: []int{2}, Data: []int64{0, 1}}}} {
		var nb bytes.Buffer
		if err := EncodeNPY(&nb, e.a); err != nil {
			t.Fatal(err)
		}
		w, _ := zw.Create(e.name)
		data := nb.Bytes()
		if e.name == "x.npy" {
			data = data[:len(data)-4]
		}
		w.Write(data)
	}
	zw.Close()
	trunc := writeFile(t, filepath.Join(dir, "trunc.npz"), zb.Bytes())
	_, err = LoadNPZ(trunc, "")
	wantErr(t, err, ErrTruncated, trunc, `array "x"`)

	_, err = LoadNPZ(filepath.Join(dir, "absent.npz"), "")
	wantErr(t, err, fs.ErrNotExist, "absent.npz")
	_, err = LoadNPYPair(filepath.Join(dir, "x.npy"), filepath.Join(dir, "y.npy"), 0)
	wantErr(t, err, fs.ErrNotExist, "x.npy")

	err = WriteNPZ(filepath.Join(dir, "bad.npz"), map[string]Array{"x": {Shape: []int{3}, Data: []float32{1}}})
	wantErr(t, err, ErrShape, "bad.npz", `"x"`)
	err = WriteNPZ(filepath.Join(dir, "bad.npz"), map[string]Array{"x": {Shape: []int{1}, Data: []string{"a"}}})
	wantErr(t, err, ErrFormat, "[]string")
	if _, err := os.Stat(filepath.Join(dir, "bad.npz")); err == nil {
		t.Error("failed write left a file")
	}
}
