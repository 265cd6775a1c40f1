package ort

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/robust-go/robust/internal/onnxpb"
)

func newAddSession(t testing.TB, env *Env) *Session {
	t.Helper()
	s, err := env.NewSession(addModel(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func seq(n int, start, step float32) []float32 {
	d := make([]float32, n)
	for i := range d {
		d[i] = start + float32(i)*step
	}
	return d
}

func closeAll(t testing.TB, vs ...Value) {
	t.Helper()
	for _, v := range vs {
		if err := v.Close(); err != nil {
			t.Error(err)
		}
	}
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRunTensorsBatchSizes(t *testing.T) {
	s := newAddSession(t, testEnv(t))
	for _, batch := range []int{1, 5} {
		n := batch * 4
		x, y := seq(n, 0, 1), seq(n, 100, 2)
		shape := []int64{int64(batch), 4}
		out, err := s.RunTensors(&Tensor{Shape: shape, Data: x}, &Tensor{Shape: shape, Data: y})
		if err != nil {
			t.Fatalf("batch %d: %v", batch, err)
		}
		z, sum, w := out[0], out[1], out[2]
		wantZ, wantW := make([]float32, n), make([]float32, n)
		var wantSum float32
		for i := range x {
			wantZ[i], wantW[i] = x[i]+y[i], x[i]*y[i]
			wantSum += wantZ[i]
		}
		if !equal(z.Shape, shape) || !equal(z.Data.([]float32), wantZ) {
			t.Errorf("batch %d: z = %v %v, want %v %v", batch, z.Shape, z.Data, shape, wantZ)
		}
		if len(sum.Shape) != 0 || sum.Data.([]float32)[0] != wantSum {
			t.Errorf("batch %d: s = %v %v, want scalar %v", batch, sum.Shape, sum.Data, wantSum)
		}
		if !equal(w.Shape, shape) || !equal(w.Data.([]float32), wantW) {
			t.Errorf("batch %d: w = %v %v, want %v %v", batch, w.Shape, w.Data, shape, wantW)
		}
	}
}

func TestRunPreallocatedOutputsReused(t *testing.T) {
	s := newAddSession(t, testEnv(t))
	shape := []int64{2, 4}
	xd, yd := make([]float32, 8), seq(8, 1, 1)
	x, err := NewValue(shape, xd)
	if err != nil {
		t.Fatal(err)
	}
	y, err := NewValue(shape, yd)
	if err != nil {
		t.Fatal(err)
	}
	z, err := NewEmptyValue[float32](shape)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := NewEmptyValue[float32](nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewEmptyValue[float32](shape)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(t, x, y, z, sum, w)
	zData := z.Data()
	ins, outs := []Value{x, y}, []Value{z, sum, w}
	for step := range 3 {
		for i := range xd {
			xd[i] = float32(step*10 + i) // refill the input in place
		}
		if err := s.Run(ins, outs); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if outs[0] != z || outs[1] != sum || outs[2] != w {
			t.Fatalf("step %d: Run replaced pre-allocated outputs", step)
		}
		var wantSum float32
		for i := range xd {
			if want := xd[i] + yd[i]; zData[i] != want {
				t.Errorf("step %d: z[%d] = %v, want %v", step, i, zData[i], want)
			}
			if want := xd[i] * yd[i]; w.Data()[i] != want {
				t.Errorf("step %d: w[%d] = %v, want %v", step, i, w.Data()[i], want)
			}
			wantSum += xd[i] + yd[i]
		}
		if got := sum.Item(); got != wantSum {
			t.Errorf("step %d: s = %v, want %v", step, got, wantSum)
		}
	}
}

func TestRunAllocatesNilOutputs(t *testing.T) {
	s := newAddSession(t, testEnv(t))
	x, _ := NewValue([]int64{3, 4}, seq(12, 0, 1))
	y, _ := NewValue([]int64{3, 4}, seq(12, 0, 0))
	defer closeAll(t, x, y)
	sum, _ := NewEmptyValue[float32](nil)
	defer closeAll(t, sum)
	outs := []Value{nil, sum, nil}
	if err := s.Run([]Value{x, y}, outs); err != nil {
		t.Fatal(err)
	}
	defer closeAll(t, outs[0], outs[2])
	z, ok := outs[0].(*TensorValue[float32])
	if !ok {
		t.Fatalf("z is %T, want *TensorValue[float32]", outs[0])
	}
	if !equal(z.Shape(), []int64{3, 4}) || !equal(z.Data(), seq(12, 0, 1)) {
		t.Errorf("z = %v %v", z.Shape(), z.Data())
	}
	if sum.Item() != 66 {
		t.Errorf("s = %v, want 66", sum.Item())
	}
	if w := outs[2].(*TensorValue[float32]); !equal(w.Data(), make([]float32, 12)) {
		t.Errorf("w = %v, want zeros", w.Data())
	}

	// The declared scalar is allocated too.
	outs = []Value{nil, nil, nil}
	if err := s.Run([]Value{x, y}, outs); err != nil {
		t.Fatal(err)
	}
	defer closeAll(t, outs...)
	if s := outs[1].(*TensorValue[float32]); len(s.Shape()) != 0 || s.Item() != 66 {
		t.Errorf("allocated s = %v %v, want scalar 66", s.Shape(), s.Item())
	}
}

func TestRunErrors(t *testing.T) {
	s := newAddSession(t, testEnv(t))
	good, _ := NewValue([]int64{5, 4}, seq(20, 0, 1))
	wrongDim, _ := NewValue([]int64{5, 3}, seq(15, 0, 1))
	wrongRank, _ := NewValue([]int64{20}, seq(20, 0, 1))
	wrongBatch, _ := NewValue([]int64{4, 4}, seq(16, 0, 1))
	wrongType, _ := NewValue([]int64{5, 4}, make([]float64, 20))
	closed, _ := NewValue([]int64{5, 4}, seq(20, 0, 1))
	wrongOut, _ := NewEmptyValue[float32]([]int64{3, 4})
	defer closeAll(t, good, wrongDim, wrongRank, wrongBatch, wrongType, wrongOut)
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	var nilTensor *TensorValue[float32]

	for _, tc := range []struct {
		name    string
		inputs  []Value
		outputs []Value
		want    []string
	}{
		{"wrong dimension", []Value{wrongDim, good}, nil, []string{`input "x"`, "[5 3]", "wants float32[batch,4]"}},
		{"wrong rank", []Value{good, wrongRank}, nil, []string{`input "y"`, "[20]"}},
		{"wrong element type", []Value{good, wrongType}, nil, []string{`input "y"`, "float64", "float32"}},
		{"too few inputs", []Value{good}, nil, []string{"got 1 inputs", "takes 2", "x, y"}},
		{"too many inputs", []Value{good, good, good}, nil, []string{"got 3 inputs"}},
		{"too few outputs", []Value{good, good}, []Value{nil}, []string{"got 1 outputs", "z, s, w"}},
		{"nil input", []Value{good, nil}, nil, []string{`input "y" is nil`}},
		{"typed nil input", []Value{nilTensor, good}, nil, []string{`input "x" is closed`}},
		{"closed input", []Value{good, closed}, nil, []string{`input "y" is closed`}},
		{"wrong output type", []Value{good, good}, []Value{nil, wrongType, nil}, []string{`output "s"`, "float64"}},
		// Caught by ONNX Runtime, not by the declared shapes.
		{"batch mismatch", []Value{good, wrongBatch}, nil, []string{"x: float32[5 4]", "y: float32[4 4]"}},
		{"output shape mismatch", []Value{good, good}, []Value{wrongOut, nil, nil}, []string{"x: float32[5 4]", "pre-allocated outputs z: float32[3 4]"}},
	} {
		outs := tc.outputs
		if outs == nil {
			outs = make([]Value, 3)
		}
		err := s.Run(tc.inputs, outs)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			closeAll(t, outs...)
			continue
		}
		t.Logf("%s: %v", tc.name, err)
		for _, want := range tc.want {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error does not mention %q: %v", tc.name, want, err)
			}
		}
		for i, v := range outs {
			if tc.outputs == nil && v != nil {
				t.Errorf("%s: output %d allocated despite the error", tc.name, i)
			}
		}
	}

	// The session still works after the errors.
	if _, err := s.RunTensors(&Tensor{Shape: []int64{1, 4}, Data: seq(4, 0, 1)}, &Tensor{Shape: []int64{1, 4}, Data: seq(4, 0, 1)}); err != nil {
		t.Errorf("after errors: %v", err)
	}
	if _, err := s.RunTensors(&Tensor{Shape: []int64{1, 4}, Data: seq(4, 0, 1)}); err == nil {
		t.Error("RunTensors with one input: no error")
	}
	if _, err := s.RunTensors(&Tensor{Shape: []int64{1, 4}, Data: seq(3, 0, 1)}, &Tensor{Shape: []int64{1, 4}, Data: seq(4, 0, 1)}); err == nil || !strings.Contains(err.Error(), `"x"`) {
		t.Errorf("RunTensors with short data: %v", err)
	}
	if _, err := s.RunTensors(&Tensor{Shape: []int64{1, 4}, Data: []string{"a"}}, &Tensor{Shape: []int64{1, 4}, Data: seq(4, 0, 1)}); err == nil {
		t.Error("RunTensors with string data: no error")
	}
}

func TestNewSessionErrors(t *testing.T) {
	env := testEnv(t)
	model := addModel(t)
	unknownOp := marshalModel(t, &onnxpb.GraphProto{
		Name:   proto.String("bad"),
		Node:   []*onnxpb.NodeProto{node("NoSuchOp", []string{"x"}, []string{"y"})},
		Input:  []*onnxpb.ValueInfoProto{valueInfo("x", tensorType(onnxpb.TensorProto_FLOAT, []dim{1}))},
		Output: []*onnxpb.ValueInfoProto{valueInfo("y", tensorType(onnxpb.TensorProto_FLOAT, []dim{1}))},
	})
	for _, tc := range []struct {
		name          string
		model         []byte
		inputs, outpu []string
		want          string
	}{
		{"garbage", []byte("\x08\x07garbage\xff\xff\xff"), nil, nil, "not a valid ONNX model"},
		{"empty", nil, nil, nil, "not a valid ONNX model"},
		{"unknown op", unknownOp, nil, nil, "NoSuchOp"},
		{"unknown input", model, []string{"x", "q"}, nil, `no input "q" (its inputs: x, y)`},
		{"unknown output", model, nil, []string{"nope"}, `no output "nope" (its outputs: z, s, w)`},
		{"duplicate input", model, []string{"x", "x"}, nil, `input "x" named twice`},
		{"no outputs", model, nil, []string{}, "no output names"},
	} {
		s, err := env.NewSession(tc.model, tc.inputs, tc.outpu)
		if err == nil {
			_ = s.Close()
			t.Errorf("%s: no error", tc.name)
			continue
		}
		t.Logf("%s: %v", tc.name, err)
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error does not mention %q: %v", tc.name, tc.want, err)
		}
	}
}

func TestSessionSubsetAndOrder(t *testing.T) {
	env := testEnv(t)
	s, err := env.NewSession(addModel(t), []string{"y", "x"}, []string{"w"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := names(s.Inputs()); !equal(got, []string{"y", "x"}) {
		t.Errorf("inputs %v", got)
	}
	out, err := s.RunTensors(&Tensor{Shape: []int64{1, 4}, Data: []float32{1, 2, 3, 4}}, &Tensor{Shape: []int64{1, 4}, Data: []float32{2, 2, 2, 2}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || !equal(out[0].Data.([]float32), []float32{2, 4, 6, 8}) {
		t.Errorf("w = %v", out[0].Data)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.RunTensors(&Tensor{Shape: []int64{1, 4}, Data: seq(4, 0, 1)}, &Tensor{Shape: []int64{1, 4}, Data: seq(4, 0, 1)}); err == nil {
		t.Error("Run on a closed session: no error")
	}
}

func TestOverridableInitializer(t *testing.T) {
	env := testEnv(t)
	s, err := env.NewSession(biasModel(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.RunTensors(&Tensor{Shape: []int64{2, 3}, Data: []float32{0, 0, 0, 1, 1, 1}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []float32{1, 2, 3, 2, 3, 4}; !equal(out[0].Data.([]float32), want) {
		t.Errorf("y = %v, want %v", out[0].Data, want)
	}
}

func TestNewSessionFromFile(t *testing.T) {
	env := testEnv(t)
	path := filepath.Join(t.TempDir(), "add.onnx")
	if err := os.WriteFile(path, addModel(t), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := env.NewSessionFromFile(path, []string{"x", "y"}, []string{"z"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.RunTensors(&Tensor{Shape: []int64{1, 4}, Data: []float32{1, 2, 3, 4}}, &Tensor{Shape: []int64{1, 4}, Data: []float32{1, 1, 1, 1}})
	if err != nil {
		t.Fatal(err)
	}
	if !equal(out[0].Data.([]float32), []float32{2, 3, 4, 5}) {
		t.Errorf("z = %v", out[0].Data)
	}
	if _, err := env.NewSessionFromFile(filepath.Join(t.TempDir(), "missing.onnx"), nil, nil); err == nil {
		t.Error("missing file: no error")
	}
}

func TestInitAgain(t *testing.T) {
	env := testEnv(t)
	again, err := Init(Options{LibraryPath: env.Library(), Threads: 2, LogLevel: LogError})
	if err != nil {
		t.Fatalf("Init with the same library: %v", err)
	}
	if again.Threads() != 2 || again.Library() != env.Library() || again.Version() == "" {
		t.Errorf("env: threads %d library %s version %q", again.Threads(), again.Library(), again.Version())
	}
	newAddSession(t, again) // usable

	dir := t.TempDir()
	link := filepath.Join(dir, "link.so")
	if err := os.Symlink(env.Library(), link); err != nil {
		t.Fatal(err)
	}
	if _, err := Init(Options{LibraryPath: link}); err != nil {
		t.Errorf("Init with a symlink to the same library: %v", err)
	}

	other := filepath.Join(dir, "libonnxruntime.so")
	copyFile(t, env.Library(), other)
	_, err = Init(Options{LibraryPath: other})
	if err == nil || !strings.Contains(err.Error(), "already loaded") {
		t.Errorf("Init with another library: %v", err)
	}
	missing := filepath.Join(dir, "missing.so")
	if _, err := Init(Options{LibraryPath: missing}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("Init with a missing library: %v", err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestInitBadOptions(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{Device: "cuda:x"}, `bad device "cuda:x"`},
		{Options{Device: "tpu"}, `unknown device "tpu"`},
		{Options{Threads: -1}, "negative thread count"},
		{Options{LogLevel: 42}, "invalid log level"},
	} {
		if _, err := Init(tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Init(%+v) = %v, want an error containing %q", tc.opts, err, tc.want)
		}
	}
}

func TestCUDAOnCPUOnlyLibrary(t *testing.T) {
	testEnv(t)
	env, err := Init(Options{Device: "cuda"})
	if err == nil {
		t.Skipf("the library %s has a working CUDA provider", env.Library())
	}
	if !errors.Is(err, ErrCUDAUnavailable) {
		t.Errorf("error does not wrap ErrCUDAUnavailable: %v", err)
	}
	for _, want := range []string{"cuda:0", "CPU-only", "GPU build", "libonnxruntime_providers_cuda.so", "Options.LibraryPath"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
	t.Log(err)
}

func TestValues(t *testing.T) {
	testEnv(t)
	if _, err := NewValue([]int64{2, 3}, make([]float32, 5)); err == nil || !strings.Contains(err.Error(), "got 5 elements, want 6") {
		t.Errorf("short data: %v", err)
	}
	if _, err := NewValue([]int64{2, -3}, make([]float32, 6)); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("negative dimension: %v", err)
	}
	if _, err := NewEmptyValue[int64]([]int64{1 << 40, 1 << 40}); err == nil {
		t.Error("huge shape: no error")
	}

	v, err := NewValue([]int64{2, 2}, []int32{1, 2, 3, 4})
	if err != nil {
		t.Fatal(err)
	}
	if v.ElementType() != Int32 || !equal(v.Shape(), []int64{2, 2}) {
		t.Errorf("value: %s %v", v.ElementType(), v.Shape())
	}
	tt, err := TensorOf(v)
	if err != nil || tt.ElementType() != Int32 || !equal(tt.Data.([]int32), []int32{1, 2, 3, 4}) {
		t.Errorf("TensorOf: %+v, %v", tt, err)
	}
	if err := v.SetItem(7); err == nil {
		t.Error("SetItem on 4 elements: no error")
	}
	closeAll(t, v, v)
	if v.Data() != nil {
		t.Error("Data after Close is not nil")
	}
	if _, err := TensorOf(v); err == nil {
		t.Error("TensorOf a closed value: no error")
	}

	sc, err := NewValue(nil, []float64{2.5})
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(t, sc)
	if sc.Item() != 2.5 || len(sc.Shape()) != 0 {
		t.Errorf("scalar: %v %v", sc.Item(), sc.Shape())
	}
	if err := sc.SetItem(-1); err != nil || sc.Item() != -1 {
		t.Errorf("SetItem: %v, item %v", err, sc.Item())
	}

	empty, err := NewEmptyValue[bool]([]int64{0, 3})
	if err != nil {
		t.Fatalf("zero-size tensor: %v", err)
	}
	closeAll(t, empty)

	for et := Undefined; et <= BFloat16; et++ {
		if strings.HasPrefix(et.String(), "ElementType(") {
			t.Errorf("element type %d has no name", et)
		}
	}
	if ElementTypeOf[uint8]() != Uint8 || ElementTypeOf[bool]() != Bool || ElementTypeOf[float64]() != Float64 {
		t.Error("ElementTypeOf")
	}
}

// BenchmarkRunPreallocated measures the training-loop path: the same
// pre-allocated inputs and outputs at every run.
func BenchmarkRunPreallocated(b *testing.B) {
	env := testEnv(b)
	s := newAddSession(b, env)
	shape := []int64{128, 4}
	x, _ := NewValue(shape, seq(512, 0, 1))
	y, _ := NewValue(shape, seq(512, 0, 1))
	z, _ := NewEmptyValue[float32](shape)
	sum, _ := NewEmptyValue[float32](nil)
	w, _ := NewEmptyValue[float32](shape)
	defer closeAll(b, x, y, z, sum, w)
	ins, outs := []Value{x, y}, []Value{z, sum, w}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Run(ins, outs); err != nil {
			b.Fatal(err)
		}
	}
}
