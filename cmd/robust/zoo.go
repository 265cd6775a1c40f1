package main

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/zoo"
)

// ZooCmd groups the model-zoo commands.
type ZooCmd struct {
	List   ZooListCmd   `cmd:"" help:"List the built-in architectures with their input shape, classes and parameter count."`
	Export ZooExportCmd `cmd:"" help:"Write a freshly initialised zoo model as ONNX (input [N,C,H,W] in [0,1], normalisation inside, logits out)."`
}

// ZooListCmd lists the zoo.
type ZooListCmd struct {
	JSON bool `help:"Print the list as JSON."`
}

// Run prints the zoo.
func (c *ZooListCmd) Run(g *Globals) error {
	models := zoo.List()
	if c.JSON {
		type entry struct {
			Name        string    `json:"name"`
			Description string    `json:"description"`
			InputShape  [3]int64  `json:"input_shape"`
			Classes     int       `json:"classes"`
			Mean        []float32 `json:"mean"`
			Std         []float32 `json:"std"`
			Parameters  int64     `json:"parameters"`
		}
		doc := struct {
			Schema string  `json:"schema"`
			Models []entry `json:"models"`
		}{Schema: zooSchema}
		for _, m := range models {
			doc.Models = append(doc.Models, entry{m.Name, m.Description, m.InputShape, m.Classes, m.Mean, m.Std, m.Params})
		}
		return writeJSON(g.stdout, doc)
	}
	w := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tINPUT\tCLASSES\tPARAMETERS\tDESCRIPTION")
	for _, m := range models {
		s := m.InputShape
		fmt.Fprintf(w, "%s\t%d×%d×%d\t%d\t%s\t%s\n", m.Name, s[0], s[1], s[2], m.Classes, thousands(m.Params), m.Description)
	}
	return w.Flush()
}

// ZooExportCmd exports a zoo model.
type ZooExportCmd struct {
	Name    string `arg:"" help:"Zoo model name (robust zoo list)."`
	Output  string `short:"o" required:"" type:"path" placeholder:"FILE.onnx" help:"Output file."`
	Seed    uint64 `default:"0" help:"Seed of the initial weights (the same seed gives a byte-identical file)."`
	Classes int    `default:"0" help:"Number of logits (0: the model's default)."`
	Shape   string `placeholder:"C,H,W" help:"Per-sample input shape (default: the model's)."`
}

// Run builds and writes the model.
func (c *ZooExportCmd) Run(g *Globals) error {
	opts := zoo.Options{Seed: c.Seed, Classes: c.Classes}
	if c.Shape != "" {
		parts := strings.Split(c.Shape, ",")
		if len(parts) != 3 {
			return usageError{fmt.Errorf("--shape %q: want C,H,W", c.Shape)}
		}
		for i, p := range parts {
			v, err := strconv.ParseInt(strings.TrimSpace(p), 10, 64)
			if err != nil || v < 1 {
				return usageError{fmt.Errorf("--shape %q: %q is not a positive integer", c.Shape, p)}
			}
			opts.InputShape[i] = v
		}
	}
	m, err := zoo.Build(c.Name, opts)
	if err != nil {
		return usageError{err}
	}
	if err := onnxgraph.Save(c.Output, m); err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "wrote %s: %s, %s parameters\n", c.Output, m.Graph.Inputs[0].Type, thousands(zoo.ParamCount(m)))
	return nil
}
