package ort

import (
	"fmt"
	"os"
	"path/filepath"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/robust-go/robust/onnxgraph"
)

// Source is a model ready to open sessions on ([Env.Open]). A model whose
// serialization fits protobuf's 2 GiB limit ([onnxgraph.MaxInlineSize]) is
// handed to ONNX Runtime as bytes. A larger one (the gradient graph of
// ViT-H/14 or RegNetY-128GF, 2.5 GB of weights) is refused in that form
// ("model data size exceeds maximum supported size"), so it is written to a
// temporary folder with its weights as external data and ONNX Runtime reads
// it from there. Close removes the folder; sessions already opened keep
// working.
type Source struct {
	data      []byte
	dir, path string
	closed    bool
}

// NewSource prepares m for [Env.Open]. The model may be changed afterwards:
// the Source holds its own serialization.
func NewSource(m *onnxgraph.Model) (*Source, error) { return newSource(m, onnxgraph.MaxInlineSize) }

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
		return nil, fmt.Errorf("ort: model over 2 GiB: %w", err)
	}
	path := filepath.Join(dir, "model.onnx")
	opts := onnxgraph.SaveOptions{ExternalData: "model.onnx.data", ExternalThreshold: 1024}
	if err := onnxgraph.SaveWith(path, m, opts); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("ort: model over 2 GiB: %w", err)
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
