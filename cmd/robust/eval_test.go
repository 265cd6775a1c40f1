package main

import (
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/robust-go/robust/internal/testenv"

	"github.com/robust-go/robust/dataset"
	"github.com/robust-go/robust/onnxgraph"
)

// The tiny fixture of package evaluate: a linear 4-class classifier of
// 1×4×4 images and 32 samples.
var (
	tinyModel = filepath.Join("..", "..", "evaluate", "testdata", "tiny.onnx")
	tinyData  = filepath.Join("..", "..", "evaluate", "testdata", "tiny.npz")
)

// evalArgs are the flags of a quick evaluation of the tiny fixture.
func evalArgs(extra ...string) []string {
	return append([]string{"eval", tinyModel, "--data", tinyData, "--n", "0", "--eps", "0.05",
		"--suite", "fgsm,pgd", "--steps", "5", "--no-progress"}, extra...)
}

// TestEvalGates checks the exit codes of the CI gate and the files
// written.
func TestEvalGates(t *testing.T) {
	testenv.ORT(t)
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.toml")
	os.WriteFile(policy, []byte("[gates]\nclean = \"60%\"\n"), 0o644)
	badPolicy := filepath.Join(dir, "bad.toml")
	os.WriteFile(badPolicy, []byte("[gates]\nclean = \"lots\"\n"), 0o644)
	cases := []struct {
		name     string
		args     []string
		code     int
		inStdout string
		inStderr string
	}{
		{"no gate", nil, exitOK, "clean accuracy 62.5%", ""},
		{"gates met", []string{"--fail-under", "pgd=30%,clean=60%"}, exitOK, "PASS pgd 31.2% ≥ 30.0% at ε=0.05", ""},
		{"gate missed", []string{"--fail-under", "pgd=40%,clean=60%"}, exitGate, "FAIL pgd", "robust: gate missed: pgd 31.2% < 40.0% at ε=0.05\n"},
		{"two missed", []string{"--fail-under", "pgd=40%,clean=99%"}, exitGate, "", "robust: 2 gates missed"},
		{"policy met", []string{"--policy", policy}, exitOK, "PASS clean", ""},
		{"policy and flag", []string{"--policy", policy, "--fail-under", "robust=50%"}, exitGate, "", "gate missed: robust"},
		{"bad policy", []string{"--policy", badPolicy}, exitUsage, "", "line 2"},
		{"unknown metric", []string{"--fail-under", "square=10%"}, exitUsage, "", "unknown metric \"square\""},
		{"bad gate", []string{"--fail-under", "pgd>40%"}, exitUsage, "", "METRIC=THRESHOLD"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := robust(t, evalArgs(c.args...)...)
			if code != c.code || !strings.Contains(out, c.inStdout) || !strings.Contains(errOut, c.inStderr) {
				t.Fatalf("exit %d (want %d)\nstdout:\n%s\nstderr:\n%s", code, c.code, out, errOut)
			}
			if c.code == exitGate && strings.Count(errOut, "\n") != 1 {
				t.Errorf("gate failure should be one line, got %q", errOut)
			}
		})
	}
}

// TestEvalFiles checks the JSON schema, Markdown, JUnit and curve files.
func TestEvalFiles(t *testing.T) {
	testenv.ORT(t)
	dir := t.TempDir()
	path := func(name string) string { return filepath.Join(dir, name) }
	code, out, errOut := robust(t, "eval", tinyModel, "--data", tinyData, "--n", "0", "--eps", "0.02,1/20,0.1",
		"--suite", "fgsm,pgd,square", "--queries", "50", "--steps", "5",
		"--json", path("r.json"), "--markdown", path("r.md"), "--junit", path("r.xml"), "--curve", path("c.png"),
		"--fail-under", "clean=60%,pgd@0.1=50%")
	if code != exitGate {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	var report map[string]any
	data, err := os.ReadFile(path("r.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &report); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"schema", "model", "data", "samples", "norm", "suite", "mode", "seed", "clean", "points", "sanity", "flags", "gates", "seconds", "images_per_second"} {
		if _, ok := report[key]; !ok {
			t.Errorf("JSON report lacks %q", key)
		}
	}
	if report["schema"] != "robust.eval/v1" {
		t.Errorf("schema %v", report["schema"])
	}
	points := report["points"].([]any)
	if len(points) != 3 {
		t.Fatalf("%d points", len(points))
	}
	attack := points[0].(map[string]any)["attacks"].([]any)[1].(map[string]any)
	for _, key := range []string{"name", "label", "attacked", "broken", "robust", "queries", "rejected", "seconds", "images_per_second"} {
		if _, ok := attack[key]; !ok {
			t.Errorf("JSON attack lacks %q", key)
		}
	}
	for _, key := range []string{"correct", "total", "accuracy", "ci95_low", "ci95_high"} {
		if _, ok := attack["robust"].(map[string]any)[key]; !ok {
			t.Errorf("JSON accuracy lacks %q", key)
		}
	}
	md, _ := os.ReadFile(path("r.md"))
	for _, want := range []string{"## Robustness:", "### ε = 1/20", "| pgd |", "❌ pgd", "✅ clean"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
	junit, _ := os.ReadFile(path("r.xml"))
	if !strings.Contains(string(junit), `tests="2" failures="1"`) || !strings.Contains(string(junit), "<failure") {
		t.Errorf("JUnit:\n%s", junit)
	}
	f, err := os.Open(path("c.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Errorf("curve: %v", err)
	}
}

// TestEvalBadInput checks that bad models, data and flags exit 2 with a
// clear message.
func TestEvalBadInput(t *testing.T) {
	testenv.ORT(t)
	dir := t.TempDir()
	write := func(name string, m *onnxgraph.Model) string {
		p := filepath.Join(dir, name)
		if err := onnxgraph.Save(p, m); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sym := onnxgraph.Sym("N")
	linear := func(shape onnxgraph.Shape, d int64) *onnxgraph.Model {
		b := onnxgraph.NewBuilder("m")
		x := b.Input("input", onnxgraph.Float, shape)
		w := b.Initializer(onnxgraph.NewFloatTensor("w", []int64{4, d}, make([]float32, 4*d)))
		b.Output(b.Gemm(b.Flatten(x, 1), w, "", onnxgraph.GemmOpts{TransB: true}), onnxgraph.Float, onnxgraph.Shape{sym, onnxgraph.D(4)})
		return b.Model()
	}
	rank2 := write("rank2.onnx", linear(onnxgraph.Shape{sym, onnxgraph.D(16)}, 16))
	rgb := write("rgb.onnx", linear(onnxgraph.Shape{sym, onnxgraph.D(3), onnxgraph.D(4), onnxgraph.D(4)}, 48))
	npz := func(name string, n int, labels []int64, classes int64) string {
		p := filepath.Join(dir, name)
		err := dataset.WriteNPZ(p, map[string]dataset.Array{
			"x":           {Shape: []int{n, 1, 4, 4}, Data: make([]float32, n*16)},
			"y":           {Shape: []int{n}, Data: labels},
			"num_classes": {Shape: []int{}, Data: []int64{classes}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	tenClasses := npz("ten.npz", 2, []int64{0, 9}, 10)
	empty := npz("empty.npz", 0, []int64{}, 4)
	garbage := filepath.Join(dir, "garbage.onnx")
	os.WriteFile(garbage, []byte("not a model"), 0o644)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"rank", []string{"eval", rank2, "--data", tinyData}, "rank 2"},
		{"channels", []string{"eval", rgb, "--data", tinyData}, "does not fit the data's 1×4×4"},
		{"labels", []string{"eval", tinyModel, "--data", tenClasses}, "label 9 of sample 1 is outside the model's 4 logits"},
		{"eps range", []string{"eval", tinyModel, "--data", tinyData, "--eps", "1.5"}, "out of range (0, 1]"},
		{"eps l2 range", []string{"eval", tinyModel, "--data", tinyData, "--eps", "5", "--norm", "l2"}, "out of range (0, 4]"},
		{"eps syntax", []string{"eval", tinyModel, "--data", tinyData, "--eps", "4//255"}, "--eps"},
		{"eps empty", []string{"eval", tinyModel, "--data", tinyData, "--eps", ""}, "empty ε"},
		{"empty data", []string{"eval", tinyModel, "--data", empty}, "empty"},
		{"missing data", []string{"eval", tinyModel, "--data", "cifar10:" + dir}, "cifar"},
		{"unknown data", []string{"eval", tinyModel, "--data", "frob"}, "unknown dataset spec"},
		{"garbage model", []string{"eval", garbage, "--data", tinyData}, "garbage.onnx"},
		{"missing model", []string{"eval", filepath.Join(dir, "none.onnx")}, "none.onnx"},
		{"suite", []string{"eval", tinyModel, "--data", tinyData, "--suite", "pgd,magic"}, "unknown suite or attack \"magic\""},
		{"norm", []string{"eval", tinyModel, "--data", tinyData, "--norm", "l3"}, "--norm"},
		{"range", []string{"eval", tinyModel, "--data", tinyData, "--range", "0,2"}, "--range"},
		{"mean", []string{"eval", tinyModel, "--data", tinyData, "--mean", "0.5,0.5"}, "2 mean values for 1 channels"},
		{"steps", []string{"eval", tinyModel, "--data", tinyData, "--steps=-3"}, "negative"},
		{"attack nothing", []string{"attack", tinyModel, "--data", tinyData}, "nothing to write"},
		{"attack two eps", []string{"attack", tinyModel, "--data", tinyData, "--eps", "0.1,0.2", "--out", filepath.Join(dir, "a.npz")}, "one budget"},
		{"attack name", []string{"attack", tinyModel, "--data", tinyData, "--attack", "pgd,fgsm", "--out", filepath.Join(dir, "a.npz")}, "one attack"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := robust(t, c.args...)
			if code != exitUsage || !strings.Contains(errOut, c.want) {
				t.Fatalf("exit %d, want 2 with %q\nstdout:\n%s\nstderr:\n%s", code, c.want, out, errOut)
			}
		})
	}
}

// TestAttackCommand writes adversarial examples and a grid and reads the
// examples back as a data set.
func TestAttackCommand(t *testing.T) {
	testenv.ORT(t)
	dir := t.TempDir()
	out, grid := filepath.Join(dir, "adv.npz"), filepath.Join(dir, "grid.png")
	code, stdout, errOut := robust(t, "attack", tinyModel, "--data", tinyData, "--n", "0", "--eps", "1/10",
		"--attack", "pgd", "--steps", "5", "--out", out, "--grid", grid, "--grid-n", "6")
	if code != exitOK || !strings.Contains(stdout, "robust accuracy") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, errOut)
	}
	arrays, err := dataset.ReadNPZ(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"x", "y", "x_clean", "pred_clean", "pred_adv", "success", "num_classes"} {
		if _, ok := arrays[k]; !ok {
			t.Errorf("adv.npz lacks %q", k)
		}
	}
	adv, clean := arrays["x"].Data.([]float32), arrays["x_clean"].Data.([]float32)
	for i := range adv {
		if d := adv[i] - clean[i]; d > 0.1+1e-6 || d < -0.1-1e-6 || adv[i] < 0 || adv[i] > 1 {
			t.Fatalf("value %d: adversarial %v, clean %v outside the budget", i, adv[i], clean[i])
		}
	}
	d, err := dataset.Open(out, "test", dataset.Options{})
	if err != nil || d.Len() != 32 {
		t.Fatalf("reading adv.npz back: %v", err)
	}
	f, err := os.Open(grid)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Fatal(err)
	}
	// Evaluating the adversarial examples with the progress bar on.
	code, stdout, errOut = robust(t, "eval", tinyModel, "--data", out, "--n", "0", "--suite", "fgsm")
	if code != exitOK || !strings.Contains(stdout, "clean accuracy") {
		t.Fatalf("eval on adv.npz: exit %d\n%s\n%s", code, stdout, errOut)
	}
}
