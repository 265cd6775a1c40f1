package ort

import (
	"fmt"
	"os"
	"path/filepath"

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
// Close removes the folder; sessions already opened keep working.
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
	dir, err := os.MkdirTemp("", "robust-model-")
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
