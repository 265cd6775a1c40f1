package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/robust-go/robust/internal/testenv"
	"github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/zoo"
)

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// checkConvention checks one JSON document of the tool: a top-level schema
// of the form robust.NAME/vN and snake_case keys throughout, except inside
// maps keyed by data (metadata, opsets).
func checkConvention(t *testing.T, what string, data []byte) {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, data)
	}
	if s, _ := doc["schema"].(string); !regexp.MustCompile(`^robust\.[a-z.]+/v[0-9]+$`).MatchString(s) {
		t.Errorf("%s: schema %q", what, doc["schema"])
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if !snakeCase.MatchString(k) {
					t.Errorf("%s: key %q at %s is not snake_case", what, k, path)
				}
				if k == "metadata" || k == "opsets" {
					continue
				}
				walk(path+"."+k, e)
			}
		case []any:
			for _, e := range x {
				walk(path+"[]", e)
			}
		}
	}
	walk("", doc)
}

// TestJSONConvention checks every JSON the tool writes: the eval report,
// info, info --diff, zoo list and each line of a training log.
func TestJSONConvention(t *testing.T) {
	testenv.ORT(t)
	dir := t.TempDir()
	outputs := map[string][]string{
		"info":      {"info", "--json", torchFixture},
		"info diff": {"info", "--json", "--diff", torchFixture, "../../harden/testdata/torch_normalized_input.onnx"},
		"zoo list":  {"zoo", "list", "--json"},
	}
	for what, args := range outputs {
		code, out, errOut := robust(t, args...)
		if code != exitOK {
			t.Fatalf("%s: exit %d %s", what, code, errOut)
		}
		checkConvention(t, what, []byte(out))
	}
	js := filepath.Join(dir, "r.json")
	if code, out, errOut := robust(t, evalArgs("--json", js, "--fail-under", "pgd=10%")...); code != exitOK {
		t.Fatalf("eval: exit %d\n%s%s", code, out, errOut)
	}
	data, _ := os.ReadFile(js)
	checkConvention(t, "eval", data)

	run := filepath.Join(dir, "run")
	if code, out, errOut := robust(t, "--threads", "2", "train", "--data", writeSynthetic(t, 64), "--out", run, "--replays", "1",
		"--epochs", "1", "--batch", "32", "--eval-n", "16", "--eval-steps", "1", "--augment", "crop:2,flip", "--no-progress"); code != exitOK {
		t.Fatalf("train: exit %d\n%s%s", code, out, errOut)
	}
	log, _ := os.ReadFile(filepath.Join(run, runLog))
	lines := strings.Split(strings.TrimSpace(string(log)), "\n")
	for _, l := range lines {
		checkConvention(t, "log.jsonl", []byte(l))
	}
	if !strings.Contains(lines[0], `"augment":{"pad":2,"flip":true}`) {
		t.Errorf("start event: %s", lines[0])
	}
}

// TestInfoTyped checks info --json's typed fields and info --diff --json.
func TestInfoTyped(t *testing.T) {
	code, out, _ := robust(t, "info", "--json", torchFixture)
	var info modelInfo
	if err := json.Unmarshal([]byte(out), &info); code != exitOK || err != nil {
		t.Fatalf("exit %d, %v", code, err)
	}
	if !info.Trainable || info.ParameterTensors != 10 || info.NotTrainable != "" || info.Buffers == 0 {
		t.Errorf("trainable %v, %d parameter tensors, buffers %d, %q", info.Trainable, info.ParameterTensors, info.Buffers, info.NotTrainable)
	}

	m, err := onnxgraph.Load(torchFixture)
	if err != nil {
		t.Fatal(err)
	}
	m.Opsets[0].Version++
	other := filepath.Join(t.TempDir(), "other.onnx")
	if err := onnxgraph.Save(other, m); err != nil {
		t.Fatal(err)
	}
	code, out, _ = robust(t, "info", "--diff", torchFixture, other, "--json")
	var d diffInfo
	if err := json.Unmarshal([]byte(out), &d); code != exitOK || err != nil {
		t.Fatalf("exit %d, %v\n%s", code, err, out)
	}
	want := "opsets ai.onnx " + itoa(m.Opsets[0].Version-1) + " → ai.onnx " + itoa(m.Opsets[0].Version)
	if d.OnlyValues || len(d.Structure) != 1 || d.Structure[0] != want || !strings.HasSuffix(d.Base, "torch_resnetish.onnx") {
		t.Errorf("diff %+v, want structure %q", d, want)
	}
	code, out, _ = robust(t, "info", "--diff", torchFixture, other)
	if code != exitOK || !strings.Contains(out, want) {
		t.Errorf("text diff lacks %q:\n%s", want, out)
	}
}

func itoa(v int64) string { b, _ := json.Marshal(v); return string(b) }

// TestParameterCountsAgree checks that info counts a zoo model's
// parameters as zoo list does, running statistics counted as buffers.
func TestParameterCountsAgree(t *testing.T) {
	for _, z := range zoo.List() {
		if z.Params > 5_000_000 && testing.Short() {
			continue
		}
		m, err := zoo.Build(z.Name, zoo.Options{})
		if err != nil {
			t.Fatal(err)
		}
		info := describe(z.Name, m)
		if info.Parameters != z.Params {
			t.Errorf("%s: info counts %d parameters, zoo list %d", z.Name, info.Parameters, z.Params)
		}
	}
}
