package evaluate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/robust-go/robust/attacks"
	"github.com/robust-go/robust/dataset"
)

// shardConfig is a configuration whose attacks draw random numbers (PGD's
// random start, Square's windows), with a reproduction block.
func shardConfig(t *testing.T, independent bool) Config {
	t.Helper()
	eps, err := ParseEps("0.05,1/10")
	if err != nil {
		t.Fatal(err)
	}
	suite, err := Suite("fgsm,pgd,apgd-ce,square", SuiteOptions{Steps: 5, Queries: 40})
	if err != nil {
		t.Fatal(err)
	}
	return Config{Eps: eps, Norm: attacks.Linf, Attacks: suite, SuiteName: "shard", Seed: 7, Independent: independent,
		Model: "tiny.onnx", Data: "tiny/test", Records: true,
		Flags:        []Flag{info("prepared", "a finding before the run")},
		Reproduction: &Reproduction{ModelSHA256: "00ff", Data: "tiny.npz", Split: "test", Selection: "first 32 of 32"}}
}

func runReport(t *testing.T, m attacks.Model, d *dataset.Dataset, cfg Config) *Report {
	t.Helper()
	r, err := Run(context.Background(), m, d, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.ZeroTimings()
	return r
}

func reportJSON(t *testing.T, r *Report) string {
	t.Helper()
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestBatchIndependence checks that every sample's outcome, and so the
// whole report, is the same whatever the batch size, and that the seed
// does reach the attacks.
func TestBatchIndependence(t *testing.T) {
	m, d := tinyModel(t)
	for _, independent := range []bool{false, true} {
		cfg := shardConfig(t, independent)
		var want string
		for _, bs := range []int{1, 5, 32} {
			cfg.BatchSize = bs
			got := reportJSON(t, runReport(t, m, d, cfg))
			if want == "" {
				want = got
				continue
			}
			if got != want {
				t.Fatalf("independent=%v: batch size %d gives another report than batch size 1:\n%s\nwant\n%s", independent, bs, got, want)
			}
		}
		cfg.Seed++
		if reportJSON(t, runReport(t, m, d, cfg)) == want {
			t.Errorf("independent=%v: seeds 7 and 8 give the same margins: the seed does not reach the attacks", independent)
		}
	}
}

// shardReports evaluates the tiny fixture as count shards.
func shardReports(t *testing.T, m attacks.Model, d *dataset.Dataset, cfg Config, count int) []*Report {
	t.Helper()
	var parts []*Report
	for i := range count {
		c := cfg
		c.Shard = &Shard{Index: i, Count: count}
		parts = append(parts, runReport(t, m, d, c))
	}
	return parts
}

// TestShardMerge checks that an evaluation in 3 shards (batch size 7)
// merged is the evaluation in one process (batch size 10): every count,
// accuracy, interval, norm, sanity measurement, flag, per-sample record
// and gate decision.
func TestShardMerge(t *testing.T) {
	m, tiny := tinyModel(t)
	// As if two files of the folder had been left out (--skip-bad): every
	// shard report and the merged one must list them as the whole run does.
	skipped := []dataset.BadFile{{Path: "data/c1/broken.jpg", Err: "load data/c1/broken.jpg: truncated file"},
		{Path: "data/c3/bomb.png", Err: "image too large"}}
	d := *tiny
	d.Skipped = skipped
	gates, err := ParseGates("clean=50%,pgd=10%,robust@1/10=90%,square@1/10=5%")
	if err != nil {
		t.Fatal(err)
	}
	for _, independent := range []bool{false, true} {
		cfg := shardConfig(t, independent)
		cfg.BatchSize = 10
		whole := runReport(t, m, &d, cfg)
		cfg.BatchSize = 7
		parts := shardReports(t, m, &d, cfg, 3)
		// The parts go through JSON, as between machines, in any order.
		var decoded []*Report
		for _, i := range []int{2, 0, 1} {
			var r Report
			if err := json.Unmarshal([]byte(reportJSON(t, parts[i])), &r); err != nil {
				t.Fatal(err)
			}
			decoded = append(decoded, &r)
		}
		merged, err := Merge(decoded)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []*Report{whole, merged} {
			if err := r.CheckGates(gates); err != nil {
				t.Fatal(err)
			}
		}
		checkRecords(t, whole)
		if len(merged.Records) != 32 || merged.Sanity == nil || len(merged.Flags) < 1 {
			t.Fatalf("merged report lacks records, sanity or flags: %d records, %d flags", len(merged.Records), len(merged.Flags))
		}
		for _, r := range append([]*Report{whole, merged}, parts...) {
			if r.SkippedCount != 2 || !slices.Equal(r.Skipped, skipped) {
				t.Fatalf("skipped files: %d %+v, want %+v", r.SkippedCount, r.Skipped, skipped)
			}
		}
		if got, want := reportJSON(t, merged), reportJSON(t, whole); got != want {
			t.Errorf("independent=%v: merged report differs from the whole one:\n%s\nwant\n%s", independent, got, want)
		}
		if merged.GateFailure() != whole.GateFailure() || whole.GateFailure() == "" {
			t.Errorf("gate decisions: merged %q, whole %q", merged.GateFailure(), whole.GateFailure())
		}
		var b1, b2 bytes.Buffer
		merged.WriteMarkdown(&b1)
		whole.WriteMarkdown(&b2)
		if b1.String() != b2.String() {
			t.Errorf("Markdown differs:\n%s\nwant\n%s", b1.String(), b2.String())
		}
		if !strings.Contains(b1.String(), "2 unreadable file(s) were left out") || !strings.Contains(b1.String(), "`data/c3/bomb.png`: image too large") {
			t.Errorf("the Markdown report does not list the skipped files:\n%s", b1.String())
		}
	}
}

// TestMergeMismatch checks that Merge refuses reports that do not belong
// together, naming what differs.
func TestMergeMismatch(t *testing.T) {
	m, d := tinyModel(t)
	cfg := shardConfig(t, false)
	cfg.NoSanity = true
	good := shardReports(t, m, d, cfg, 3)
	clone := func() []*Report {
		var out []*Report
		for _, p := range good {
			var r Report
			if err := json.Unmarshal([]byte(reportJSON(t, p)), &r); err != nil {
				t.Fatal(err)
			}
			out = append(out, &r)
		}
		return out
	}
	if _, err := Merge(clone()); err != nil {
		t.Fatalf("good parts: %v", err)
	}
	cases := []struct {
		name   string
		change func([]*Report) []*Report
		says   string
	}{
		{"robust version", func(p []*Report) []*Report { p[1].Reproduction.Robust = "v0.9.0"; return p }, "robust version"},
		{"model hash", func(p []*Report) []*Report { p[1].Reproduction.ModelSHA256 = "11aa"; return p }, "model SHA-256"},
		{"data", func(p []*Report) []*Report { p[1].Reproduction.Data = "other.npz"; return p }, "data specification"},
		{"split", func(p []*Report) []*Report { p[2].Data = "tiny/train"; return p }, "data"},
		{"selection", func(p []*Report) []*Report { p[1].Reproduction.Selection = "first 30 of 32"; return p }, "sample selection"},
		{"suite", func(p []*Report) []*Report { p[1].Suite = "other"; return p }, "suite"},
		{"suite settings", func(p []*Report) []*Report {
			p[1].Reproduction.Attacks[1].Settings = json.RawMessage(`{"steps":6}`)
			return p
		}, "suite settings"},
		{"ε", func(p []*Report) []*Report { p[1].Budgets = []string{"0.05", "0.2"}; return p }, "ε"},
		{"norm", func(p []*Report) []*Report { p[1].Norm = "l2"; return p }, "norm"},
		{"seed", func(p []*Report) []*Report { p[2].Seed = 8; return p }, "seed"},
		{"mode", func(p []*Report) []*Report { p[2].Mode = "independent"; return p }, "mode"},
		{"shard count", func(p []*Report) []*Report { p[2].Shard.Count = 4; return p }, "number of shards"},
		{"skipped files", func(p []*Report) []*Report {
			p[1].Skipped, p[1].SkippedCount = []dataset.BadFile{{Path: "c1/x.jpg", Err: "truncated"}}, 1
			return p
		}, "files left out of the data"},
		{"overlap", func(p []*Report) []*Report { return append(p, p[1]) }, "given twice"},
		{"missing", func(p []*Report) []*Report { return p[:2] }, "2/3 missing"},
		{"wrong range", func(p []*Report) []*Report { p[1].Shard.First++; return p }, "should cover"},
		{"not a shard", func(p []*Report) []*Report { p[0].Shard = nil; return p }, "not a shard"},
		{"partial", func(p []*Report) []*Report { p[0].Partial = true; return p }, "partial"},
		{"none", func(p []*Report) []*Report { return nil }, "no reports"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Merge(c.change(clone()))
			if !errors.Is(err, ErrMismatch) || !bytes.Contains([]byte(err.Error()), []byte(c.says)) {
				t.Fatalf("got %v, want ErrMismatch saying %q", err, c.says)
			}
		})
	}
}

// TestParseShard checks the I/N syntax and the slices' cover.
func TestParseShard(t *testing.T) {
	for _, c := range []struct {
		in string
		ok bool
	}{{"0/1", true}, {"2/3", true}, {"3/3", false}, {"-1/3", false}, {"1/0", false}, {"1", false}, {"a/3", false}} {
		_, err := ParseShard(c.in)
		if (err == nil) != c.ok {
			t.Errorf("ParseShard(%q): %v", c.in, err)
		}
	}
	for _, n := range []int{1, 7, 32, 100} {
		for count := 1; count <= 5; count++ {
			next := 0
			for i := range count {
				lo, hi := Shard{i, count}.Range(n)
				if lo != next || hi < lo {
					t.Fatalf("n=%d count=%d shard %d: [%d,%d) after %d", n, count, i, lo, hi, next)
				}
				next = hi
			}
			if next != n {
				t.Fatalf("n=%d count=%d: shards end at %d", n, count, next)
			}
		}
	}
}

// checkRecords checks the per-sample records against the report: a sample
// is broken at an ε when it was wrong or an attack broke it, by the first
// such attack, with a margin ≤ 0, and robust ones keep a margin ≥ 0; the
// records' counts are the report's.
func checkRecords(t *testing.T, r *Report) {
	t.Helper()
	for pi, p := range r.Points {
		robust := 0
		for _, rec := range r.Records {
			sp := rec.Points[pi]
			by := ""
			if !rec.correct() {
				by = "clean"
			}
			for _, a := range sp.Attacks {
				if a.Broken && by == "" {
					by = a.Name
				}
			}
			if sp.Broken != (by != "") || sp.By != by || sp.Eps != p.EpsText {
				t.Fatalf("sample %d at ε %s: broken %v by %q, want by %q", rec.Index, p.EpsText, sp.Broken, sp.By, by)
			}
			if sp.Broken && sp.Margin > 0 || !sp.Broken && sp.Margin < 0 {
				t.Errorf("sample %d at ε %s: broken %v with margin %g", rec.Index, p.EpsText, sp.Broken, sp.Margin)
			}
			if !sp.Broken {
				robust++
			}
		}
		if robust != p.Robust.Correct {
			t.Errorf("ε %s: %d robust records, report says %d", p.EpsText, robust, p.Robust.Correct)
		}
	}
}
