package evaluate

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/robust-go/robust/attacks"
)

// ErrMismatch is wrapped by the errors of [Merge] for reports that do not
// belong together.
var ErrMismatch = errors.New("the reports do not belong together")

// Merge merges the reports of the shards of one evaluation (Config.Shard)
// into the report one process would have written: counts, accuracies and
// their intervals, norms, the sanity measurements and flags are computed
// from the shards' per-sample records by the functions [Run] uses.
// Timings add up. The merged report carries the records if the shards were
// asked for them (Config.Records) and no gates (check them on the result).
//
// Merge refuses, with an error wrapping [ErrMismatch], reports that do not
// belong together: not shard reports, partial ones, or ones that differ in
// model, data, sample selection, norm, ε, suite and its settings, mode,
// seed, sanity checks, number of shards, files left out of the data
// (Report.Skipped) or robust and ONNX Runtime versions, and shards that
// overlap or are missing.
func Merge(parts []*Report) (*Report, error) {
	if len(parts) == 0 {
		return nil, fmt.Errorf("evaluate: merge: %w: no reports", ErrMismatch)
	}
	for _, p := range parts {
		switch {
		case p.Shard == nil:
			return nil, fmt.Errorf("evaluate: merge: %w: a report of %s is not a shard's (it has no shard block)", ErrMismatch, p.Model)
		case p.Partial:
			return nil, fmt.Errorf("evaluate: merge: %w: shard %d/%d is partial (its evaluation was interrupted)", ErrMismatch, p.Shard.Index, p.Shard.Count)
		case p.MinEps != nil:
			return nil, fmt.Errorf("evaluate: merge: %w: shard %d/%d has a minimal-ε search, which cannot be merged", ErrMismatch, p.Shard.Index, p.Shard.Count)
		}
	}
	first := parts[0]
	want := signature(first)
	for _, p := range parts[1:] {
		got := signature(p)
		for k, w := range want {
			if got[k].value != w.value {
				return nil, fmt.Errorf("evaluate: merge: %w: shard %d/%d and shard %d/%d differ in %s (%s vs %s)", ErrMismatch,
					first.Shard.Index, first.Shard.Count, p.Shard.Index, p.Shard.Count, w.name, w.value, got[k].value)
			}
		}
	}
	sorted := slices.Clone(parts)
	slices.SortStableFunc(sorted, func(a, b *Report) int { return a.Shard.Index - b.Shard.Index })
	count, total := first.Shard.Count, first.Shard.Total
	var missing []string
	next := 0
	for _, p := range sorted {
		s := p.Shard
		if s.Index < next {
			return nil, fmt.Errorf("evaluate: merge: %w: shard %d/%d is given twice (the shards overlap)", ErrMismatch, s.Index, count)
		}
		for ; next < s.Index; next++ {
			missing = append(missing, Shard{next, count}.String())
		}
		next = s.Index + 1
	}
	for ; next < count; next++ {
		missing = append(missing, Shard{next, count}.String())
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("evaluate: merge: %w: shard(s) %s missing", ErrMismatch, strings.Join(missing, ", "))
	}
	var recs []SampleRecord
	for _, p := range sorted {
		s := p.Shard
		lo, hi := Shard{s.Index, s.Count}.Range(total)
		if s.First != lo || s.End != hi || len(p.Records) != hi-lo || p.Samples != hi-lo {
			return nil, fmt.Errorf("evaluate: merge: %w: shard %d/%d should cover samples [%d, %d) of %d, it covers [%d, %d) with %d records",
				ErrMismatch, s.Index, s.Count, lo, hi, total, s.First, s.End, len(p.Records))
		}
		for k, r := range p.Records {
			if r.Index != lo+k || len(r.Points) != len(first.Budgets) {
				return nil, fmt.Errorf("evaluate: merge: %w: shard %d/%d: record %d is of sample %d, not %d, or lacks points", ErrMismatch, s.Index, s.Count, k, r.Index, lo+k)
			}
		}
		recs = append(recs, p.Records...)
	}
	return mergeRecords(first, sorted, recs)
}

// mergeRecords builds the merged report from the records of every sample.
func mergeRecords(first *Report, parts []*Report, recs []SampleRecord) (*Report, error) {
	m := &Report{Schema: Schema, Model: first.Model, Data: first.Data, Samples: len(recs), Norm: first.Norm,
		Suite: first.Suite, Mode: first.Mode, Seed: first.Seed, Budgets: slices.Clone(first.Budgets),
		RandomSuite: first.RandomSuite, Flags: slices.Clone(first.Shard.PriorFlags)}
	m.setSkipped(first.Skipped) // the same in every shard (see signature)
	if first.Reproduction != nil {
		r := *first.Reproduction
		r.Command = nil
		m.Reproduction = &r
	}
	correct := 0
	for i := range recs {
		if recs[i].correct() {
			correct++
		}
	}
	m.Clean = NewAccuracy(correct, len(recs))
	if first.Sanity != nil {
		norm, err := attacks.ParseNorm(first.Norm)
		if err != nil {
			return nil, fmt.Errorf("evaluate: merge: %w", err)
		}
		var base Sanity
		for _, p := range parts {
			if p.Sanity.Samples > 0 {
				base = *p.Sanity
				break
			}
		}
		if m.Sanity, err = aggregateSanity(base, recs); err != nil {
			return nil, fmt.Errorf("evaluate: merge: %w: %w", ErrMismatch, err)
		}
		for _, f := range sanityFlags(m.Sanity, len(recs), m.RandomSuite, norm) {
			m.Flags = addFlag(m.Flags, f)
		}
	}
	for pi, tpl := range first.Points {
		p := aggregatePoint(tpl, recs, pi, m.Mode == "independent")
		for _, part := range parts {
			p.Seconds += part.Points[pi].Seconds
			for ai := range p.Attacks {
				p.Attacks[ai].Seconds += part.Points[pi].Attacks[ai].Seconds
			}
		}
		for ai := range p.Attacks {
			if a := &p.Attacks[ai]; a.Seconds > 0 {
				a.ImagesPerSecond = float64(a.Attacked) / a.Seconds
			}
		}
		m.Points = append(m.Points, p)
	}
	skipped, after := afterFlags(m, m.Sanity != nil)
	m.Flags = append(append(m.Flags, skipped...), after...)
	for _, p := range parts {
		m.Seconds += p.Seconds
	}
	if m.Seconds > 0 {
		m.ImagesPerSecond = float64(m.Samples*len(m.Budgets)) / m.Seconds
	}
	if first.Shard.Records {
		m.Records = recs
	}
	return m, nil
}

// field is one thing shard reports must agree on.
type field struct{ name, value string }

// signature lists what the shards of one evaluation share.
func signature(r *Report) []field {
	js := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			return err.Error()
		}
		return string(b)
	}
	var points []string
	for _, p := range r.Points {
		var names []string
		for _, a := range p.Attacks {
			names = append(names, a.Name+"/"+a.Skipped)
		}
		points = append(points, p.EpsText+":"+strings.Join(names, ","))
	}
	rp := r.Reproduction
	if rp == nil {
		rp = &Reproduction{}
	}
	model := r.Model // the path may differ between machines; the hash may not
	if rp.ModelSHA256 != "" {
		model = ""
	}
	f := []field{
		{"schema", r.Schema},
		{"model", model},
		{"data", r.Data},
		{"norm", r.Norm},
		{"suite", r.Suite},
		{"mode", r.Mode},
		{"ε", strings.Join(r.Budgets, ",")},
		{"seed", fmt.Sprint(r.Seed)},
		{"sanity checks", fmt.Sprint(r.Sanity != nil)},
		{"number of shards", fmt.Sprint(r.Shard.Count)},
		{"samples selected", fmt.Sprint(r.Shard.Total)},
		{"per-sample records asked for", fmt.Sprint(r.Shard.Records)},
		{"findings before the run", js(r.Shard.PriorFlags)},
		{"attacks run", strings.Join(points, "; ")},
		// Every shard reads the whole split and numbers the samples
		// after leaving out the unreadable files: shards that left out
		// different files numbered different samples.
		{"files left out of the data (--skip-bad)", js(r.Skipped)},
	}
	return append(f,
		field{"robust version", rp.Robust},
		field{"ONNX Runtime version", rp.ORT},
		field{"model SHA-256", rp.ModelSHA256},
		field{"data specification", rp.Data + " (" + rp.Split + ")"},
		field{"sample selection", rp.Selection},
		field{"suite settings", js(rp.Attacks)},
	)
}
