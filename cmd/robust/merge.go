package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/robust-go/robust/evaluate"
)

// MergeCmd merges the reports of a sharded evaluation.
type MergeCmd struct {
	Parts []string `arg:"" type:"existingfile" placeholder:"PART.json" help:"The shards' JSON reports (robust eval --shard I/N --json PART.json), every shard once, in any order."`

	JSON        string `name:"json" type:"path" placeholder:"FILE" help:"Write the merged report as JSON (schema robust.eval/v2)."`
	Markdown    string `type:"path" placeholder:"FILE" help:"Write the merged report as Markdown; appended to when FILE is $GITHUB_STEP_SUMMARY, replaced otherwise."`
	JUnit       string `name:"junit" type:"path" placeholder:"FILE" help:"Write the gates as JUnit XML, one test case per gate named robust.gate.METRIC@EPS."`
	FailUnder   string `name:"fail-under" placeholder:"GATES" help:"Exit 1 unless every gate holds on the merged report, as robust eval --fail-under."`
	Policy      string `type:"existingfile" placeholder:"FILE.toml" help:"Read gates from a TOML policy file ([gates] table)."`
	AllowRandom bool   `name:"allow-random" help:"Let gates pass on a deterministic suite's numbers for a model the sanity checks find non-deterministic, as robust eval --allow-random."`
}

// Run reads the shard reports, merges them into the report of one
// evaluation, writes it and checks the gates: the exit codes are those of
// robust eval, and parts that do not belong together are refused (exit 2).
func (c *MergeCmd) Run(g *Globals) error {
	gates, err := readGates(c.FailUnder, c.Policy)
	if err != nil {
		return usageError{err}
	}
	if err := checkOutputs(c.outputs(nil)); err != nil {
		return usageError{err}
	}
	var parts []*evaluate.Report
	for _, path := range c.Parts {
		r, err := readReport(path)
		if err != nil {
			return usageError{err}
		}
		parts = append(parts, r)
	}
	report, err := evaluate.Merge(parts)
	if err != nil {
		return usageError{err}
	}
	if len(gates) > 0 {
		if err := report.CheckGates(gates); err != nil {
			return usageError{err}
		}
	}
	if err := report.WriteText(g.stdout); err != nil {
		return err
	}
	if err := writeOutputs(c.outputs(report)); err != nil {
		return err
	}
	return gateVerdict(report, len(gates) > 0, c.AllowRandom)
}

// outputs are the report files asked for, writing r.
func (c *MergeCmd) outputs(r *evaluate.Report) []output {
	var json, md, junit func(io.Writer) error
	if r != nil {
		json, md, junit = r.WriteJSON, r.WriteMarkdown, r.WriteJUnit
	}
	return []output{{"--json", c.JSON, json}, {"--markdown", c.Markdown, md}, {"--junit", c.JUnit, junit}}
}

// readReport reads a JSON evaluation report of the current schema.
func readReport(path string) (*evaluate.Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r evaluate.Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: not a robust eval JSON report: %w", path, err)
	}
	if r.Schema != evaluate.Schema {
		return nil, fmt.Errorf("%s: schema %q, want %q (a report of robust eval --json of this version)", path, r.Schema, evaluate.Schema)
	}
	return &r, nil
}
