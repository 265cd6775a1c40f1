package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/robust-go/robust/evaluate"
	"github.com/robust-go/robust/internal/testenv"
	"github.com/robust-go/robust/onnxgraph"
)

// shardArgs are the flags of an evaluation of the tiny fixture whose
// attacks draw random numbers.
func shardArgs(extra ...string) []string {
	return append([]string{"eval", tinyModel, "--data", tinyData, "--n", "0", "--eps", "0.05,1/10",
		"--suite", "fgsm,pgd,square", "--steps", "5", "--queries", "40", "--seed", "3", "--no-progress", "--samples"}, extra...)
}

// loadReport reads a JSON report with its timings and command line
// cleared, for comparison.
func loadReport(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r evaluate.Report
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	r.ZeroTimings()
	r.Reproduction.Command = nil
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestShardedEvalMerge evaluates the tiny fixture once whole and once as 3
// shards (given by --shard, by a Kubernetes Indexed Job's
// JOB_COMPLETION_INDEX and by a Slurm array numbered from 1) with another
// batch size, merges the shards and checks that every count, accuracy,
// per-sample record and gate decision is the whole run's, exit code
// included; then that parts which do not belong together exit 2.
func TestShardedEvalMerge(t *testing.T) {
	testenv.ORT(t)
	dir := t.TempDir()
	path := func(name string) string { return filepath.Join(dir, name) }
	gates := []string{"--fail-under", "clean=60%,pgd=20%,robust@1/10=90%"}
	code, out, errOut := robust(t, shardArgs(append(gates, "--json", path("whole.json"))...)...)
	if code != exitGate {
		t.Fatalf("whole: exit %d\n%s\n%s", code, out, errOut)
	}
	shard := func(name string, env map[string]string, extra ...string) {
		t.Helper()
		for k, v := range env {
			t.Setenv(k, v)
		}
		code, out, errOut := robust(t, shardArgs(append(extra, "--batch", "7", "--json", path(name))...)...)
		for k := range env {
			os.Unsetenv(k)
		}
		if code != exitOK {
			t.Fatalf("%s: exit %d\n%s\n%s", name, code, out, errOut)
		}
	}
	shard("part-0.json", nil, "--shard", "0/3")
	shard("part-1.json", map[string]string{"JOB_COMPLETION_INDEX": "1"}, "--shards", "3")
	shard("part-2.json", map[string]string{"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "3"}, "--shards", "3")
	shard("seed-1.json", nil, "--shard", "1/3", "--seed", "4")

	code, out, errOut = robust(t, append([]string{"merge", path("part-2.json"), path("part-0.json"), path("part-1.json"),
		"--json", path("all.json"), "--markdown", path("all.md"), "--junit", path("all.xml")}, gates...)...)
	if code != exitGate || !strings.Contains(errOut, "gate missed: robust") {
		t.Fatalf("merge: exit %d (want %d)\n%s\n%s", code, exitGate, out, errOut)
	}
	whole, all := loadReport(t, path("whole.json")), loadReport(t, path("all.json"))
	if whole != all {
		t.Fatalf("merged report differs from the whole one:\n%s\nwant\n%s", all, whole)
	}
	if !strings.Contains(whole, `"records"`) || !strings.Contains(whole, `"broken_by": "fgsm"`) {
		t.Errorf("the reports lack per-sample records:\n%s", whole)
	}

	os.WriteFile(path("junk.json"), []byte("{not json"), 0o644)
	for _, c := range []struct {
		name  string
		parts []string
		says  string
	}{
		{"seed", []string{"part-0.json", "seed-1.json", "part-2.json"}, "differ in seed (3 vs 4)"},
		{"overlap", []string{"part-0.json", "part-1.json", "part-1.json", "part-2.json"}, "given twice"},
		{"missing", []string{"part-0.json", "part-2.json"}, "1/3 missing"},
		{"not a shard", []string{"whole.json", "part-1.json"}, "not a shard"},
		{"not a report", []string{"junk.json"}, "not a robust eval JSON report"},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"merge", "--json", path("bad.json")}
			for _, p := range c.parts {
				args = append(args, path(p))
			}
			code, out, errOut := robust(t, args...)
			if code != exitUsage || !strings.Contains(errOut, c.says) {
				t.Fatalf("exit %d (want %d), stderr should say %q:\n%s\n%s", code, exitUsage, c.says, out, errOut)
			}
		})
	}
}

// TestShardFlags checks the usage errors of --shard and --shards.
func TestShardFlags(t *testing.T) {
	testenv.ORT(t)
	json := filepath.Join(t.TempDir(), "r.json")
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		says string
	}{
		{"index too large", nil, []string{"--shard", "3/3", "--json", json}, "want index I in [0, N)"},
		{"syntax", nil, []string{"--shard", "1", "--json", json}, "want I/N"},
		{"both", nil, []string{"--shard", "0/3", "--shards", "3", "--json", json}, "give one"},
		{"no environment", nil, []string{"--shards", "3", "--json", json}, "neither JOB_COMPLETION_INDEX nor SLURM_ARRAY_TASK_ID"},
		{"slurm count", map[string]string{"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "4"}, []string{"--shards", "3", "--json", json}, "has 4 tasks"},
		{"index from environment too large", map[string]string{"JOB_COMPLETION_INDEX": "3"}, []string{"--shards", "3", "--json", json}, "want index I in [0, N)"},
		{"no json", nil, []string{"--shard", "0/3"}, "--json FILE"},
		{"min-eps", nil, []string{"--shard", "0/3", "--min-eps", "--json", json}, "--min-eps cannot be sharded"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, k := range []string{"JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_COUNT"} {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			code, out, errOut := robust(t, shardArgs(c.args...)...)
			if code != exitUsage || !strings.Contains(errOut, c.says) {
				t.Fatalf("exit %d (want %d), stderr should say %q:\n%s\n%s", code, exitUsage, c.says, out, errOut)
			}
		})
	}
}

// TestShardedEvalSkipBad evaluates an image folder holding an unreadable
// file with --skip-bad, whole and as 3 shards: the whole report, every
// shard's and the merged one count and list the file (JSON and Markdown),
// and the merge still equals the whole run.
func TestShardedEvalSkipBad(t *testing.T) {
	testenv.ORT(t)
	data, bad := writeImageFolder(t, 6)
	dir := t.TempDir()
	path := func(name string) string { return filepath.Join(dir, name) }
	model := path("pool-linear.onnx")
	if err := onnxgraph.Save(model, poolLinear(16, 4, 3)); err != nil {
		t.Fatal(err)
	}
	args := func(extra ...string) []string {
		return append([]string{"--threads", "2", "eval", model, "--data", "imagefolder:" + data, "--split", "train",
			"--resize", "18", "--crop", "16", "--skip-bad", "--n", "0", "--eps", "4/255", "--suite", "fgsm,pgd",
			"--steps", "3", "--seed", "5", "--no-progress"}, extra...)
	}
	code, stdout, stderr := robust(t, args("--json", path("whole.json"), "--markdown", path("whole.md"))...)
	if code != exitOK {
		t.Fatalf("whole: exit %d\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "1 unreadable file(s) were left out of the data") {
		t.Errorf("the text report does not mention the skipped file:\n%s", stdout)
	}
	parts := []string{"merge", "--json", path("all.json"), "--markdown", path("all.md")}
	for i := range 3 {
		name := path("part-" + strconv.Itoa(i) + ".json")
		code, stdout, stderr := robust(t, args("--shard", strconv.Itoa(i)+"/3", "--batch", "4", "--json", name)...)
		if code != exitOK {
			t.Fatalf("shard %d: exit %d\n%s%s", i, code, stdout, stderr)
		}
		parts = append(parts, name)
	}
	if code, stdout, stderr := robust(t, parts...); code != exitOK {
		t.Fatalf("merge: exit %d\n%s%s", code, stdout, stderr)
	}
	whole, all := loadReport(t, path("whole.json")), loadReport(t, path("all.json"))
	if whole != all {
		t.Fatalf("merged report differs from the whole one:\n%s\nwant\n%s", all, whole)
	}
	for _, name := range append(parts[5:], path("whole.json"), path("all.json")) {
		var r struct {
			Samples int `json:"samples"`
			Count   int `json:"skipped_count"`
			Files   []struct {
				Path  string `json:"path"`
				Error string `json:"error"`
			} `json:"skipped_files"`
		}
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		if r.Count != 1 || len(r.Files) != 1 || r.Files[0].Path != bad || !strings.Contains(r.Files[0].Error, "truncated") {
			t.Errorf("%s: skipped_count %d, skipped_files %+v; want %s listed with its error", filepath.Base(name), r.Count, r.Files, bad)
		}
	}
	for _, name := range []string{"whole.md", "all.md"} {
		b, err := os.ReadFile(path(name))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "1 unreadable file(s) were left out") || !strings.Contains(string(b), "`"+bad+"`") {
			t.Errorf("%s does not list the skipped file:\n%s", name, b)
		}
	}
}
