package conformance

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/robust-go/robust/internal/testenv"

	onnx "github.com/owulveryck/onnx-go"
	"gorgonia.org/tensor"

	"github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/ort"
)

const nodeTests = "/usr/share/libonnx-testdata/data/node"

// mustPass are node tests of robust's CNN operator set: each must run and
// match its expected outputs.
var mustPass = []string{
	"test_conv_with_strides_padding", "test_conv_with_strides_no_padding", "test_conv_with_strides_and_asymmetric_padding",
	"test_basic_conv_with_padding", "test_basic_conv_without_padding", "test_convtranspose", "test_convtranspose_pads",
	"test_convtranspose_1d", "test_convtranspose_3d", "test_gemm_default_no_bias", "test_gemm_transposeA",
	"test_gemm_transposeB", "test_gemm_alpha", "test_gemm_beta", "test_matmul_2d", "test_matmul_3d", "test_matmul_4d",
	"test_add", "test_add_bcast", "test_sub", "test_sub_bcast", "test_mul", "test_mul_bcast", "test_div", "test_div_bcast",
	"test_relu", "test_leakyrelu", "test_leakyrelu_default", "test_sigmoid", "test_tanh", "test_batchnorm_epsilon",
	"test_batchnorm_example", "test_maxpool_2d_default", "test_maxpool_2d_pads", "test_maxpool_2d_strides",
	"test_maxpool_2d_ceil", "test_maxpool_2d_dilations", "test_maxpool_with_argmax_2d_precomputed_strides",
	"test_averagepool_2d_default", "test_averagepool_2d_pads", "test_averagepool_2d_pads_count_include_pad",
	"test_averagepool_2d_strides", "test_globalaveragepool", "test_flatten_axis0", "test_flatten_axis1",
	"test_flatten_default_axis", "test_reshape_reordered_all_dims", "test_reshape_negative_dim",
	"test_transpose_default", "test_transpose_all_permutations_0", "test_concat_2d_axis_0", "test_concat_3d_axis_1",
	"test_softmax_axis_1", "test_softmax_example", "test_logsoftmax_axis_1", "test_logsoftmax_example_1",
	"test_identity", "test_dropout_default", "test_clip", "test_clip_default_min", "test_constantofshape_float_ones",
	"test_shape", "test_gather_0", "test_unsqueeze_axis_0", "test_squeeze", "test_slice", "test_slice_neg",
	"test_split_equal_parts_1d", "test_reduce_mean_default_axes_keepdims_example", "test_reduce_sum_keepdims_example",
	"test_constant_pad", "test_exp", "test_log", "test_neg", "test_sqrt", "test_where_example", "test_equal",
	"test_greater", "test_cast_FLOAT_to_DOUBLE", "test_expand_dim_changed", "test_range_float_type_positive_delta",
	"test_scatter_elements_with_reduction_sum", "test_sce_mean", "test_sce_none",
}

// TestNodeModels runs every ONNX node test through ONNX Runtime and compares
// its outputs with the expected ones. Models ORT cannot load (ops outside
// this ORT build, non-tensor types) are counted, not failed; robust's own
// operator set (mustPass) must load and match.
func TestNodeModels(t *testing.T) {
	testenv.Data(t, nodeTests)
	env := testenv.ORT(t)
	dirs, err := filepath.Glob(filepath.Join(nodeTests, "test_*"))
	if err != nil {
		t.Fatal(err)
	}
	var passed, unsupported int
	var mismatches []string
	for _, dir := range dirs {
		name := filepath.Base(dir)
		err := runNodeTest(env, dir)
		switch {
		case err == nil:
			passed++
		case isUnsupported(err):
			unsupported++
			if slices.Contains(mustPass, name) {
				t.Errorf("%s: %v", name, err)
			}
		default:
			mismatches = append(mismatches, fmt.Sprintf("%s: %v", name, err))
			if slices.Contains(mustPass, name) {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
	for _, m := range mismatches {
		t.Logf("mismatch outside robust's op set: %s", m)
	}
	t.Logf("%d node tests: %d matched, %d not loadable by this ORT build or with non-tensor data, %d mismatched", len(dirs), passed, unsupported, len(mismatches))
	if passed < 50 {
		t.Errorf("only %d node tests matched; want at least 50", passed)
	}
	// A handful of mismatches come from test data generated for other ONNX
	// versions than the runtime's; a large number means a broken harness.
	if len(mismatches) > len(dirs)/20 {
		t.Errorf("%d of %d node tests mismatched", len(mismatches), len(dirs))
	}
}

// unsupportedError marks a test robust's harness cannot run at all.
type unsupportedError struct{ err error }

func (e unsupportedError) Error() string { return "unsupported: " + e.err.Error() }

func isUnsupported(err error) bool { _, ok := err.(unsupportedError); return ok }

func runNodeTest(env *ort.Env, dir string) error {
	modelBytes, err := os.ReadFile(filepath.Join(dir, "model.onnx"))
	if err != nil {
		return err
	}
	m, err := onnxgraph.Decode(modelBytes, dir)
	if err != nil {
		return unsupportedError{err}
	}
	var inNames, outNames []string
	for _, in := range m.Graph.RealInputs() {
		inNames = append(inNames, in.Name)
	}
	for _, o := range m.Graph.Outputs {
		outNames = append(outNames, o.Name)
	}
	if name := filepath.Base(dir); strings.Contains(name, "bernoulli") || strings.Contains(name, "training_dropout") {
		// Random operators: ORT's random stream is not the one the expected
		// outputs were drawn from.
		return unsupportedError{fmt.Errorf("random operator")}
	}
	set := filepath.Join(dir, "test_data_set_0")
	inputs := make([]*ort.Tensor, len(inNames))
	for i := range inNames {
		if inputs[i], err = readTensor(filepath.Join(set, fmt.Sprintf("input_%d.pb", i))); err != nil {
			return unsupportedError{err}
		}
	}
	want := make([]*ort.Tensor, len(outNames))
	for i := range outNames {
		if want[i], err = readTensor(filepath.Join(set, fmt.Sprintf("output_%d.pb", i))); err != nil {
			return unsupportedError{err}
		}
	}
	sess, err := env.NewSession(modelBytes, inNames, outNames)
	if err != nil {
		return unsupportedError{err}
	}
	defer sess.Close()
	got, err := sess.RunTensors(inputs...)
	if err != nil {
		return err
	}
	for i := range want {
		if err := compare(got[i], want[i]); err != nil {
			return fmt.Errorf("output %q: %w", outNames[i], err)
		}
	}
	return nil
}

// readTensor decodes a serialized TensorProto. onnx-go decodes it into a
// gorgonia tensor for the types it knows; robust's own decoder covers the
// rest (bool, int8, uint8, float16 ...).
func readTensor(path string) (*ort.Tensor, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if out := decodeWithOnnxGo(data); out != nil {
		return out, nil
	}
	return decodeTensor(data)
}

// decodeWithOnnxGo returns nil when onnx-go cannot decode the tensor. Its
// decoder panics on some valid tensors (bool data, for one), so the call is
// guarded.
func decodeWithOnnxGo(data []byte) (out *ort.Tensor) {
	defer func() {
		if recover() != nil {
			out = nil
		}
	}()
	t, err := onnx.NewTensor(data)
	if err != nil {
		return nil
	}
	if dense, ok := t.(*tensor.Dense); ok {
		return fromGorgonia(dense)
	}
	return nil
}

func fromGorgonia(d *tensor.Dense) *ort.Tensor {
	shape := make([]int64, 0, len(d.Shape()))
	for _, s := range d.Shape() {
		shape = append(shape, int64(s))
	}
	if d.IsScalar() {
		shape = []int64{}
	}
	switch v := d.Data().(type) {
	case []float32:
		return &ort.Tensor{Shape: shape, Data: slices.Clone(v)}
	case []float64:
		return &ort.Tensor{Shape: shape, Data: slices.Clone(v)}
	case []int64:
		return &ort.Tensor{Shape: shape, Data: slices.Clone(v)}
	case []int32:
		return &ort.Tensor{Shape: shape, Data: slices.Clone(v)}
	case float32:
		return &ort.Tensor{Shape: shape, Data: []float32{v}}
	case float64:
		return &ort.Tensor{Shape: shape, Data: []float64{v}}
	case int64:
		return &ort.Tensor{Shape: shape, Data: []int64{v}}
	}
	return nil
}

func compare(got, want *ort.Tensor) error {
	if !slices.Equal(got.Shape, want.Shape) && !(len(got.Shape) <= 1 && len(want.Shape) <= 1 && numel(got.Shape) == numel(want.Shape)) {
		return fmt.Errorf("shape %v, want %v", got.Shape, want.Shape)
	}
	g, w := asFloat64(got.Data), asFloat64(want.Data)
	if g == nil || w == nil {
		return unsupportedError{fmt.Errorf("cannot compare %T with %T", got.Data, want.Data)}
	}
	if len(g) != len(w) {
		return fmt.Errorf("%d elements, want %d", len(g), len(w))
	}
	for i := range g {
		if math.IsNaN(w[i]) && math.IsNaN(g[i]) {
			continue
		}
		if diff := math.Abs(g[i] - w[i]); diff > 1e-3+1e-3*math.Abs(w[i]) {
			return fmt.Errorf("element %d is %g, want %g", i, g[i], w[i])
		}
	}
	return nil
}

func numel(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

func asFloat64(data any) []float64 {
	switch v := data.(type) {
	case []float32:
		return convert(v)
	case []float64:
		return v
	case []int64:
		return convert(v)
	case []int32:
		return convert(v)
	case []int16:
		return convert(v)
	case []int8:
		return convert(v)
	case []uint8:
		return convert(v)
	case []uint16:
		return convert(v)
	case []uint32:
		return convert(v)
	case []uint64:
		return convert(v)
	case []bool:
		out := make([]float64, len(v))
		for i, b := range v {
			if b {
				out[i] = 1
			}
		}
		return out
	}
	return nil
}

func convert[T float32 | int64 | int32 | int16 | int8 | uint8 | uint16 | uint32 | uint64](v []T) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}
