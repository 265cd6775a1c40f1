package ort

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/robust-go/robust/onnxgraph"
)

// A model over the inline limit (lowered here from 2 GiB) is opened from a
// temporary file with external data and computes what the bytes session
// does; the file goes with Close, the session stays usable.
func TestSourceExternal(t *testing.T) {
	env := testEnv(t)
	b := onnxgraph.NewBuilder("wide")
	x := b.Input("x", onnxgraph.Float, onnxgraph.Shape{onnxgraph.Sym("N"), onnxgraph.D(300)})
	w := seq(300*4, -1, 1.0/600)
	y := b.Relu(b.Gemm(x, b.ConstFloat([]int64{300, 4}, w...), "", onnxgraph.GemmOpts{}))
	b.Output(y, onnxgraph.Float, onnxgraph.Shape{onnxgraph.Sym("N"), onnxgraph.D(4)})
	m := b.Model()
	in := &Tensor{Shape: []int64{2, 300}, Data: seq(600, 0.5, 0.01)}

	var outs [][]float32
	for _, limit := range []int{onnxgraph.MaxInlineSize, 0} {
		src, err := newSource(m, limit)
		if err != nil {
			t.Fatal(err)
		}
		if src.External() != (limit == 0) {
			t.Fatalf("limit %d: external = %v", limit, src.External())
		}
		s, err := env.Open(src, nil, nil, SessionOptions{})
		if err != nil {
			t.Fatal(err)
		}
		dir := src.dir
		if err := src.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(dir); dir != "" && !os.IsNotExist(err) {
			t.Fatalf("temporary model folder %s left after Close: %v", dir, err)
		}
		got, err := s.RunTensors(in)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, got[0].Data.([]float32))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := env.Open(src, nil, nil, SessionOptions{}); err == nil {
			t.Fatal("opened a closed source")
		}
	}
	if !equal(outs[0], outs[1]) || len(outs[0]) != 8 {
		t.Fatalf("bytes session %v, external-data session %v", outs[0], outs[1])
	}
}

// The temporary model folders of processes that have ended are removed by
// the next external Source; those of running processes, and other names,
// are not.
func TestRemoveStale(t *testing.T) {
	ended := exec.Command(os.Args[0], "-test.run=^$")
	if err := ended.Run(); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	dir := func(name string) string {
		path := filepath.Join(root, name)
		if err := os.MkdirAll(path, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(path, "model.onnx.data"), []byte{1}, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	keep := map[string]bool{
		dir(fmt.Sprintf("robust-model-%d-123", ended.Process.Pid)): false,
		dir(fmt.Sprintf("robust-model-%d-456", os.Getpid())):       true,
		dir(fmt.Sprintf("robust-model-%d-789", os.Getppid())):      true,
		dir("robust-model-1234567"):                                true, // no process id
		dir("robust-model-x-1"):                                    true,
		dir(fmt.Sprintf("other-%d-1", ended.Process.Pid)):          true,
	}
	removeStale(root)
	for path, want := range keep {
		_, err := os.Stat(path)
		if got := err == nil; got != want {
			t.Errorf("%s: kept = %v, want %v (%v)", filepath.Base(path), got, want, err)
		}
	}
}
