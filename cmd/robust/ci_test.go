package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/robust-go/robust/evaluate"
	"github.com/robust-go/robust/internal/testenv"
)

// robustCLI runs the CLI in-process like robust, and also returns the
// command tree, whose counters tests read.
func robustCLI(t *testing.T, configure func(*CLI), args ...string) (int, string, string, *CLI) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cli := newCLI(&stdout, &stderr)
	if configure != nil {
		configure(cli)
	}
	code := cli.execute(args)
	return code, stdout.String(), stderr.String(), cli
}

// TestEvalValidatesBeforeRunning checks that gates, suites and output
// paths that cannot work are usage errors found before any model session
// is created (so in well under a second, whatever the evaluation's size).
func TestEvalValidatesBeforeRunning(t *testing.T) {
	dir := t.TempDir()
	readmePolicy := filepath.Join(dir, "robust.toml")
	os.WriteFile(readmePolicy, []byte("[gates]\nclean = \"80%\"\n\"robust@8/255\" = \"30%\"\n"), 0o644)
	typo := filepath.Join(dir, "typo.toml")
	os.WriteFile(typo, []byte("[gates]\nclean = \"80%\"\n[gatess]\npgd = \"40%\"\n"), 0o644)
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"square under l1", []string{"--suite", "square", "--norm", "l1", "--eps", "0.5", "--fail-under", "square=50%"},
			[]string{"--suite square with --norm l1", "square: supports the L∞ and L2 norms only"}},
		{"autoattack-lite under l1", []string{"--suite", "autoattack-lite", "--norm", "l1", "--eps", "0.5"},
			[]string{"square: supports the L∞ and L2 norms only"}},
		{"eps not evaluated", []string{"--eps", "0.1", "--fail-under", "pgd@0.3=40%"},
			[]string{"gate \"pgd@0.3=40%\"", "ε 0.3 is not evaluated (the evaluation's ε: 0.1)"}},
		{"README policy", []string{"--eps", "0.1", "--policy", readmePolicy},
			[]string{readmePolicy + ":3: gate \"robust@8/255=30%\"", "ε 8/255 is not evaluated"}},
		{"policy typo", []string{"--policy", typo}, []string{"--policy", "line 3: unknown key \"gatess\""}},
		{"unknown metric", []string{"--fail-under", "square=10%"},
			[]string{"unknown metric \"square\" (this evaluation measures clean, robust, fgsm, pgd)"}},
		{"bare number", []string{"--fail-under", "pgd=40"}, []string{"write 40% for a percentage"}},
		{"json folder missing", []string{"--json", filepath.Join(dir, "none", "r.json"), "--markdown", filepath.Join(dir, "ok.md")},
			[]string{"--json: cannot write", "folder " + filepath.Join(dir, "none") + " does not exist"}},
		{"json is a folder", []string{"--json", dir}, []string{"--json: cannot write " + dir + ": it is a folder"}},
		{"negative batch", []string{"--batch=-1"}, []string{"--batch -1: want at least 1"}},
		{"eps out of range", []string{"--eps", "1.5"}, []string{"--eps: ε 1.5 is out of range (0, 1] for the L∞ norm\n"}},
		{"eps fraction out of range", []string{"--eps", "3/2"}, []string{"--eps: ε 3/2 = 1.5 is out of range"}},
		{"negative n", []string{"--n=-5"}, []string{"--n -5: want 0 (all) or more"}},
		{"negative sessions", []string{"--sessions=-2", "--threads=-1"},
			[]string{"--sessions -2: want 0 (chosen for the device) or more", "--threads -1: want 0 (one per core) or more"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"eval", tinyModel, "--data", tinyData, "--suite", "fgsm,pgd", "--no-progress"}, c.args...)
			code, out, errOut, cli := robustCLI(t, nil, args...)
			if code != exitUsage {
				t.Fatalf("exit %d, want 2\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
			}
			for _, w := range c.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			if cli.sessions != 0 {
				t.Errorf("%d model sessions created before the usage error", cli.sessions)
			}
			if _, err := os.Stat(filepath.Join(dir, "ok.md")); err == nil {
				t.Errorf("a report was written although the run was refused")
			}
		})
	}
}

// TestAttackValidatesBeforeRunning checks that attack refuses unwritable
// outputs before attacking and never reports a file it did not write.
func TestAttackValidatesBeforeRunning(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"out folder missing", []string{"--out", "/nonexistent/a.npz", "--grid", filepath.Join(dir, "g.png")}, "--out: cannot write /nonexistent/a.npz"},
		{"grid folder missing", []string{"--grid", "/nonexistent/g.png"}, "--grid: cannot write /nonexistent/g.png"},
		{"two attacks", []string{"--attack", "fgsm,pgd", "--out", filepath.Join(dir, "a.npz")}, "robust attack runs one attack"},
		{"a suite", []string{"--attack", "default", "--out", filepath.Join(dir, "a.npz")}, "is a suite of 3 attacks"},
		{"square under l1", []string{"--attack", "square", "--norm", "l1", "--eps", "0.5", "--out", filepath.Join(dir, "a.npz")}, "square: supports the L∞ and L2 norms only"},
		{"zero grid", []string{"--grid-n", "0", "--grid", filepath.Join(dir, "g.png")}, "--grid-n and --cols must be at least 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"attack", tinyModel, "--data", tinyData}, c.args...)
			code, out, errOut, cli := robustCLI(t, nil, args...)
			if code != exitUsage || !strings.Contains(errOut, c.want) {
				t.Fatalf("exit %d, want 2 with %q\nstdout:\n%s\nstderr:\n%s", code, c.want, out, errOut)
			}
			if strings.Contains(out, "wrote") || strings.Contains(out, "drew") || cli.sessions != 0 {
				t.Errorf("sessions %d, stdout:\n%s", cli.sessions, out)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("files left behind: %v", entries)
			}
		})
	}
}

// junitNames returns the test case names of a JUnit file.
func junitNames(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Suites []struct {
			Cases []struct {
				Name    string    `xml:"name,attr"`
				Failure *struct{} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range doc.Suites {
		for _, c := range s.Cases {
			names = append(names, c.Name)
		}
	}
	return names
}

// TestJUnitNamesStable checks that two runs with different results give
// the same JUnit test names, which name the gate and not its values.
func TestJUnitNamesStable(t *testing.T) {
	testenv.ORT(t)
	dir := t.TempDir()
	var names [][]string
	var outs []string
	for i, n := range []string{"16", "32"} {
		junit := filepath.Join(dir, "r"+n+".xml")
		code, out, errOut := robust(t, "eval", tinyModel, "--data", tinyData, "--n", n, "--eps", "0.05,0.1",
			"--suite", "fgsm,pgd", "--steps", "5", "--no-progress", "--seed", n,
			"--junit", junit, "--fail-under", "clean=60%,pgd@0.1=20%,robust@0.05=30%")
		if code != exitOK && code != exitGate {
			t.Fatalf("run %d: exit %d\n%s%s", i, code, out, errOut)
		}
		names = append(names, junitNames(t, junit))
		outs = append(outs, out)
	}
	want := []string{"robust.gate.clean", "robust.gate.pgd@0.1", "robust.gate.robust@0.05"}
	if !slices.Equal(names[0], want) || !slices.Equal(names[1], want) {
		t.Errorf("JUnit names %v and %v, want %v", names[0], names[1], want)
	}
	if outs[0] == outs[1] {
		t.Errorf("the two runs measured the same; the test needs different results")
	}
}

// TestEvalStepSummaryAppends checks that --markdown appends to
// $GITHUB_STEP_SUMMARY and replaces any other file.
func TestEvalStepSummaryAppends(t *testing.T) {
	testenv.ORT(t)
	dir := t.TempDir()
	summary, other := filepath.Join(dir, "summary.md"), filepath.Join(dir, "other.md")
	for _, p := range []string{summary, other} {
		os.WriteFile(p, []byte("# earlier step\n"), 0o644)
	}
	t.Setenv("GITHUB_STEP_SUMMARY", summary)
	for _, md := range []string{summary, other} {
		if code, out, errOut := robust(t, evalArgs("--markdown", md)...); code != exitOK {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
	}
	got, _ := os.ReadFile(summary)
	if !strings.HasPrefix(string(got), "# earlier step\n") || !strings.Contains(string(got), "## Robustness:") {
		t.Errorf("$GITHUB_STEP_SUMMARY was not appended to:\n%s", got)
	}
	got, _ = os.ReadFile(other)
	if strings.Contains(string(got), "earlier step") || !strings.Contains(string(got), "## Robustness:") {
		t.Errorf("%s was not replaced:\n%s", other, got)
	}
}

// TestEvalInterrupted interrupts an evaluation of two ε during the second
// and checks the exit code, the partial reports and the gates.
func TestEvalInterrupted(t *testing.T) {
	testenv.ORT(t)
	dir := t.TempDir()
	js, md, junit := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.md"), filepath.Join(dir, "r.xml")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	configure := func(c *CLI) {
		c.ctx = ctx
		c.onEvalProgress = func(p evaluate.Progress) {
			if strings.Contains(p.Name, "ε=0.1") {
				cancel() // as Ctrl-C would
			}
		}
	}
	code, out, errOut, _ := robustCLI(t, configure, "eval", tinyModel, "--data", tinyData, "--n", "0", "--eps", "0.05,0.1",
		"--suite", "fgsm,pgd", "--steps", "5", "--no-progress", "--no-sanity",
		"--json", js, "--markdown", md, "--junit", junit, "--fail-under", "pgd@0.05=10%,pgd@0.1=10%")
	if code != exitInterrupted {
		t.Fatalf("exit %d, want 130\n%s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "eval interrupted") || !strings.Contains(out, "PARTIAL") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", out, errOut)
	}
	var r evaluate.Report
	data, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	if !r.Partial || len(r.Points) != 1 || r.Points[0].EpsText != "0.05" || len(r.Gates) != 2 {
		t.Fatalf("partial %v, %d points, %d gates", r.Partial, len(r.Points), len(r.Gates))
	}
	if g := r.Gates[0]; !g.Passed || !g.Measured {
		t.Errorf("gate on the completed ε: %+v", g)
	}
	if g := r.Gates[1]; g.Passed || g.Measured || !strings.Contains(g.Reason, "interrupted") {
		t.Errorf("gate on the interrupted ε: %+v", g)
	}
	mdText, _ := os.ReadFile(md)
	if !strings.Contains(string(mdText), "Partial report") {
		t.Errorf("Markdown not marked partial:\n%s", mdText)
	}
	if names := junitNames(t, junit); !slices.Equal(names, []string{"robust.gate.pgd@0.05", "robust.gate.pgd@0.1"}) {
		t.Errorf("JUnit names %v", names)
	}
}

// TestEvalInterruptedBeforeAttacks interrupts an evaluation during the
// sanity checks, after the clean pass: the report holds the clean
// accuracy, marked partial, and attack gates fail as not measured.
func TestEvalInterruptedBeforeAttacks(t *testing.T) {
	testenv.ORT(t)
	js := filepath.Join(t.TempDir(), "r.json")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	configure := func(c *CLI) {
		c.ctx = ctx
		c.onEvalProgress = func(p evaluate.Progress) {
			if p.Stage > 0 {
				cancel()
			}
		}
	}
	code, out, errOut, _ := robustCLI(t, configure, "eval", tinyModel, "--data", tinyData, "--n", "0", "--eps", "0.05",
		"--suite", "fgsm", "--no-progress", "--json", js, "--fail-under", "clean=60%,fgsm=10%")
	if code != exitInterrupted {
		t.Fatalf("exit %d, want 130\n%s%s", code, out, errOut)
	}
	var r evaluate.Report
	data, _ := os.ReadFile(js)
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	if !r.Partial || len(r.Points) != 0 || r.Clean.Total != 32 || len(r.Gates) != 2 {
		t.Fatalf("partial %v, %d points, clean %+v, %d gates", r.Partial, len(r.Points), r.Clean, len(r.Gates))
	}
	if g := r.Gates[0]; !g.Passed || !g.Measured {
		t.Errorf("clean gate: %+v", g)
	}
	if g := r.Gates[1]; g.Passed || g.Measured || g.Name != "fgsm@0.05" {
		t.Errorf("fgsm gate: %+v", g)
	}
}

// TestInterruptedAtOnce checks Ctrl-C before anything was measured: eval
// and attack exit 130, say so, and write nothing.
func TestInterruptedAtOnce(t *testing.T) {
	testenv.ORT(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"eval", tinyModel, "--data", tinyData, "--no-progress", "--json", filepath.Join(dir, "r.json")}, "no report written"},
		{[]string{"attack", tinyModel, "--data", tinyData, "--out", filepath.Join(dir, "a.npz")}, "attack interrupted; nothing written"},
	} {
		code, out, errOut, _ := robustCLI(t, func(c *CLI) { c.ctx = ctx }, c.args...)
		if code != exitInterrupted || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d, want 130 with %q\n%s%s", c.args[0], code, c.want, out, errOut)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("interrupted commands wrote %v", entries)
	}
}
