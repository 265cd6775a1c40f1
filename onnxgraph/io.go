package onnxgraph

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/robust-go/robust/internal/liberr"
	"github.com/robust-go/robust/internal/onnxpb"
	"google.golang.org/protobuf/proto"
)

// ErrNotONNX is wrapped by decoding errors for input that is not an ONNX model.
var ErrNotONNX = errors.New("onnxgraph: not an ONNX model")

// Load reads an ONNX model file. Tensors stored as external data are read
// from files next to the model.
func Load(path string) (_ *Model, err error) {
	defer prefixErr(&err)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	m, err := Decode(data, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return m, nil
}

// Decode parses serialized ModelProto bytes. dir is the folder that external
// data locations are relative to; "" forbids external data.
func Decode(data []byte, dir string) (_ *Model, err error) {
	defer prefixErr(&err)
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty input", ErrNotONNX)
	}
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(data, &mp); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotONNX, err)
	}
	if mp.IrVersion == nil || mp.GetGraph() == nil {
		return nil, fmt.Errorf("%w: no ir_version or no graph (truncated or not a model file?)", ErrNotONNX)
	}
	if err := resolveExternalData(mp.GetGraph(), dir); err != nil {
		return nil, err
	}
	return FromProto(&mp)
}

// Encode serialises the model deterministically, with all tensor data inline.
func Encode(m *Model) (_ []byte, err error) {
	defer prefixErr(&err)
	return proto.MarshalOptions{Deterministic: true}.Marshal(m.Proto())
}

// MaxInlineSize is the largest serialized model that ONNX tools read
// (ONNX Runtime, onnx.load): a protobuf message is limited to 2 GiB. Save
// writes the weights of larger models as external data, and ort opens such
// graphs from a file (ort.NewSource).
const MaxInlineSize = math.MaxInt32

// EncodedSize returns the size in bytes of the model serialized with all
// tensor data inline, as Encode would write it.
func EncodedSize(m *Model) int { return proto.Size(m.Proto()) }

// SaveOptions control how Save writes a model.
type SaveOptions struct {
	// ExternalData, when not empty, is the file name (relative to the model's
	// folder) that initializers of at least ExternalThreshold bytes are written
	// to, as ONNX external data.
	ExternalData      string
	ExternalThreshold int
}

// Save writes the model to path atomically (through a temporary file in the
// same folder), with all data inline, or, for a model over MaxInlineSize, with
// its initializers of 1 KiB or more in the file path + ".data" next to it (as
// torch.onnx.export does), since no tool would read it otherwise.
func Save(path string, m *Model) error { return saveLimited(path, m, MaxInlineSize) }

func saveLimited(path string, m *Model, limit int) error {
	opts := SaveOptions{}
	if EncodedSize(m) > limit {
		opts = SaveOptions{ExternalData: filepath.Base(path) + ".data", ExternalThreshold: 1024}
	}
	return SaveWith(path, m, opts)
}

// SaveWith writes the model to path atomically, optionally moving large
// initializers to an external data file, which is written first, streamed
// (each tensor 64-byte aligned), so that a model of several gigabytes is
// not copied in memory.
func SaveWith(path string, m *Model, opts SaveOptions) (err error) {
	defer prefixErr(&err)
	mp := m.Proto()
	if opts.ExternalData != "" {
		if err := checkLocation(opts.ExternalData); err != nil {
			return fmt.Errorf("save %s: %w", path, err)
		}
		err := writeAtomic(filepath.Join(filepath.Dir(path), opts.ExternalData), func(w io.Writer) error {
			var off int
			var pad [64]byte
			for _, t := range mp.GetGraph().GetInitializer() {
				if len(t.RawData) < opts.ExternalThreshold || len(t.RawData) == 0 {
					continue
				}
				if n := (64 - off%64) % 64; n > 0 {
					if _, err := w.Write(pad[:n]); err != nil {
						return err
					}
					off += n
				}
				if _, err := w.Write(t.RawData); err != nil {
					return err
				}
				// The proto's tensors share their bytes with m: only the
				// proto's fields change.
				t.DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
				t.ExternalData = []*onnxpb.StringStringEntryProto{
					{Key: proto.String("location"), Value: proto.String(opts.ExternalData)},
					{Key: proto.String("offset"), Value: proto.String(strconv.Itoa(off))},
					{Key: proto.String("length"), Value: proto.String(strconv.Itoa(len(t.RawData)))},
				}
				off += len(t.RawData)
				t.RawData = nil
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("save %s: %w", path, err)
		}
	}
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(mp)
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err := WriteFileAtomic(path, data); err != nil {
		return err // it names the path
	}
	return nil
}

// WriteFileAtomic writes data to a temporary file next to path, syncs it and
// renames it over path, so readers never see a partial file. The file is
// readable by everyone (mode 0644), like a file os.WriteFile creates.
func WriteFileAtomic(path string, data []byte) (err error) {
	defer prefixErr(&err)
	return writeAtomic(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteAtomic is [WriteFileAtomic] for contents that write streams into
// the file (buffered), so that a file of gigabytes needs no copy of itself
// in memory. An error from write leaves path as it was.
func WriteAtomic(path string, write func(io.Writer) error) (err error) {
	defer prefixErr(&err)
	return writeAtomic(path, write)
}

// writeAtomic is WriteAtomic without the package prefix.
func writeAtomic(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, liberr.Bare(err))
	}
	tmp := f.Name()
	merr := f.Chmod(0o644)
	bw := bufio.NewWriterSize(f, 1<<20)
	werr := write(bw)
	if werr == nil {
		werr = bw.Flush()
	}
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(merr, werr, serr, cerr); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, liberr.Bare(err))
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, liberr.Bare(err))
	}
	return nil
}

func checkLocation(loc string) error {
	clean := filepath.Clean(loc)
	if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return fmt.Errorf("external data location %q must be a relative path inside the model's folder", loc)
	}
	return nil
}

// resolveExternalData reads external tensor data into raw_data for every
// tensor of the graph (initializers, tensor attributes, subgraphs).
func resolveExternalData(gp *onnxpb.GraphProto, dir string) error {
	cache := map[string][]byte{}
	var visitGraph func(*onnxpb.GraphProto) error
	visitTensor := func(t *onnxpb.TensorProto) error {
		if t.GetDataLocation() != onnxpb.TensorProto_EXTERNAL {
			return nil
		}
		if err := loadExternal(t, dir, cache); err != nil {
			return fmt.Errorf("tensor %q: %w", t.GetName(), err)
		}
		return nil
	}
	visitGraph = func(g *onnxpb.GraphProto) error {
		for _, t := range g.GetInitializer() {
			if err := visitTensor(t); err != nil {
				return err
			}
		}
		for _, n := range g.GetNode() {
			for _, a := range n.GetAttribute() {
				if a.T != nil {
					if err := visitTensor(a.T); err != nil {
						return err
					}
				}
				for _, t := range a.GetTensors() {
					if err := visitTensor(t); err != nil {
						return err
					}
				}
				if a.G != nil {
					if err := visitGraph(a.G); err != nil {
						return err
					}
				}
				for _, sg := range a.GetGraphs() {
					if err := visitGraph(sg); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	return visitGraph(gp)
}

func loadExternal(t *onnxpb.TensorProto, dir string, cache map[string][]byte) error {
	var loc string
	offset, length := int64(0), int64(-1)
	for _, e := range t.GetExternalData() {
		var err error
		switch e.GetKey() {
		case "location":
			loc = e.GetValue()
		case "offset":
			offset, err = strconv.ParseInt(e.GetValue(), 10, 64)
		case "length":
			length, err = strconv.ParseInt(e.GetValue(), 10, 64)
		}
		if err != nil {
			return fmt.Errorf("external data %s: %w", e.GetKey(), err)
		}
	}
	if loc == "" {
		return fmt.Errorf("external data without a location")
	}
	if dir == "" {
		return fmt.Errorf("external data %q, but the model was not read from a file", loc)
	}
	if err := checkLocation(loc); err != nil {
		return err
	}
	data, ok := cache[loc]
	if !ok {
		var err error
		data, err = os.ReadFile(filepath.Join(dir, loc))
		if err != nil {
			return fmt.Errorf("external data: %w", err)
		}
		cache[loc] = data
	}
	if length < 0 {
		length = int64(len(data)) - offset
	}
	if offset < 0 || length < 0 || offset+length > int64(len(data)) {
		return fmt.Errorf("external data %s: range [%d, %d) outside the file's %d bytes", loc, offset, offset+length, len(data))
	}
	t.RawData = data[offset : offset+length]
	t.DataLocation = nil
	t.ExternalData = nil
	return nil
}
