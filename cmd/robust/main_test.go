package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/robust-go/robust/internal/testenv"
)

// robust runs the CLI in-process and returns its exit code and output.
func robust(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestInfoOnPytorchConverted(t *testing.T) {
	dir := "/usr/share/libonnx-testdata/data/pytorch-converted"
	testenv.Data(t, dir)
	models, _ := filepath.Glob(filepath.Join(dir, "*", "model.onnx"))
	testenv.DataCases(t, dir, len(models), 80)
	for _, m := range models {
		code, out, errOut := robust(t, "info", m)
		if code != 0 || !strings.Contains(out, "inputs:") || !strings.Contains(out, "operators:") {
			t.Errorf("%s: exit %d\n%s%s", m, code, out, errOut)
		}
		code, out, _ = robust(t, "info", "--json", m)
		var info modelInfo
		if err := json.Unmarshal([]byte(out), &info); code != 0 || err != nil || info.Nodes == 0 {
			t.Errorf("%s --json: exit %d, %v", m, code, err)
		}
	}
	t.Logf("robust info ran on %d models", len(models))
}

func TestInfoBadInput(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.onnx")
	os.WriteFile(garbage, []byte("definitely not protobuf \xff\xff"), 0o644)
	empty := filepath.Join(dir, "empty.onnx")
	os.WriteFile(empty, nil, 0o644)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"info", garbage}, "not an ONNX model"},
		{[]string{"info", empty}, "empty"},
		{[]string{"info", filepath.Join(dir, "missing.onnx")}, "missing.onnx"},
		{[]string{"info"}, "expected"},
		{[]string{"frobnicate"}, "unexpected argument"},
		{[]string{"--device", "tpu", "version"}, ""},
	}
	for _, tt := range tests {
		code, out, errOut := robust(t, tt.args...)
		if tt.want == "" { // version reports the runtime problem but succeeds
			if code != 0 || !strings.Contains(out, "device") {
				t.Errorf("%v: exit %d, %q", tt.args, code, out+errOut)
			}
			continue
		}
		if code != exitUsage || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 mentioning %q", tt.args, code, errOut, tt.want)
		}
	}
}

func TestHelpTeaches(t *testing.T) {
	code, out, _ := robust(t, "--help")
	if code != 0 || !strings.Contains(out, "info") || !strings.Contains(out, "--ort-lib") {
		t.Fatalf("--help: exit %d\n%s", code, out)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := robust(t, "version")
	if code != 0 || !strings.HasPrefix(out, "robust ") {
		t.Fatalf("version: exit %d %q", code, out)
	}
}

func TestInfoDiff(t *testing.T) {
	a := "../../harden/testdata/torch_resnetish.onnx"
	code, out, errOut := robust(t, "info", "--diff", a, a)
	if code != 0 || !strings.Contains(out, "structure: identical") || !strings.Contains(out, "0 changed") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = robust(t, "info", "--diff", a, "../../harden/testdata/torch_normalized_input.onnx")
	if code != 0 || !strings.Contains(out, "differences") {
		t.Fatalf("exit %d\n%s", code, out)
	}
}
