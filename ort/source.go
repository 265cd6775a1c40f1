package ort

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/robust-go/robust/onnxgraph"
)

// Source is a model ready to open sessions on ([Env.Open]). A small model
// is handed to ONNX Runtime as its serialized bytes. A model whose
// serialization exceeds [ExternalAbove] is written to a temporary folder
// with its weights as external data, and ONNX Runtime reads it from there:
// it has to be for one over protobuf's 2 GiB limit (ViT-H/14 or
// RegNetY-128GF, 2.5 GB of weights: ONNX Runtime refuses such bytes, "model
// data size exceeds maximum supported size"), and it saves memory for any
// large one, since ONNX Runtime then maps the weights from the file instead
// of parsing a copy of the whole model, and Go holds no serialized copy.
// Close removes the folder; sessions already opened keep working. A process
// killed before it could (the kernel's out-of-memory killer, a second
// Ctrl-C) leaves its folder behind, gigabytes for such a model; the next
// external Source removes the folders of processes that no longer run.
type Source struct {
	data      []byte
	dir, path string
	closed    bool
}

// ExternalAbove is the serialized size of a model above which a [Source]
// reads it from a temporary file with external data rather than from
// bytes. Measured on RegNetY-32GF (565 MB of weights), opening one session
// took the process from 0.6 GB (the model loaded) to a peak of 2.1 GB from
// bytes and 1.2 GB from the file, and held 1.0 GB and 0.6 GB afterwards.
const ExternalAbove = 256 << 20

// NewSource prepares m for [Env.Open]. The model may be changed afterwards:
// the Source holds its own serialization.
func NewSource(m *onnxgraph.Model) (*Source, error) { return newSource(m, ExternalAbove) }

func newSource(m *onnxgraph.Model, limit int) (*Source, error) {
	if onnxgraph.EncodedSize(m) <= limit {
		data, err := onnxgraph.Encode(m)
		if err != nil {
			return nil, fmt.Errorf("ort: %w", err)
		}
		return &Source{data: data}, nil
	}
	removeStale(os.TempDir())
	dir, err := os.MkdirTemp("", tempPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return nil, fmt.Errorf("ort: external model: %w", err)
	}
	path := filepath.Join(dir, "model.onnx")
	opts := onnxgraph.SaveOptions{ExternalData: "model.onnx.data", ExternalThreshold: 1024}
	if err := onnxgraph.SaveWith(path, m, opts); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("ort: external model: %w", err)
	}
	return &Source{dir: dir, path: path}, nil
}

// tempPrefix begins the name of an external Source's temporary folder,
// followed by the process id and "-".
const tempPrefix = "robust-model-"

// removeStale removes the temporary model folders under root whose process
// has ended. Errors are ignored: a folder that cannot be removed (another
// user's) is left as it was.
func removeStale(root string) {
	dirs, _ := filepath.Glob(filepath.Join(root, tempPrefix+"*-*"))
	for _, dir := range dirs {
		id, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(dir), tempPrefix), "-")
		pid, err := strconv.Atoi(id)
		if err != nil || pid <= 0 || pid == os.Getpid() || running(pid) {
			continue
		}
		os.RemoveAll(dir)
	}
}

// running reports whether process pid may still run: only a process the
// system says has finished is taken as gone (signal 0 checks without
// signalling; where signals are not supported, every process counts as
// running and nothing is removed).
func running(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	err = p.Signal(syscall.Signal(0))
	p.Release()
	return !errors.Is(err, os.ErrProcessDone)
}

// External reports whether the model is read from a file with external
// data rather than from bytes.
func (s *Source) External() bool { return s.path != "" }

// Close releases the serialized model, or removes the temporary folder of
// an external Source. Closing twice is allowed.
func (s *Source) Close() error {
	s.data, s.closed = nil, true
	if s.dir == "" {
		return nil
	}
	err := os.RemoveAll(s.dir)
	s.dir = ""
	if err != nil {
		return fmt.Errorf("ort: remove temporary model: %w", err)
	}
	return nil
}

// Open is [Env.NewSessionWith] for a [Source].
func (e *Env) Open(src *Source, inputNames, outputNames []string, opts SessionOptions) (*Session, error) {
	if src.closed {
		return nil, fmt.Errorf("ort: open a closed model source")
	}
	if !src.External() {
		return e.NewSessionWith(src.data, inputNames, outputNames, opts)
	}
	info, err := InspectModelFile(src.path)
	if err != nil {
		return nil, err
	}
	return e.open(info, inputNames, outputNames, "", &opts, func(in, out []string, so *ortgo.SessionOptions) (*ortgo.DynamicAdvancedSession, error) {
		return ortgo.NewDynamicAdvancedSession(src.path, in, out, so)
	})
}
