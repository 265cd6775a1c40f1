package onnxgraph

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Validate checks the model's structure: an opset import for every node's
// domain, known operators in the default domain, every node input defined
// (by a graph input, an initializer or an earlier node), each value produced
// once, and no cycles. Errors name the offending node. Validate does not
// reorder nodes; see TopoSort.
func (m *Model) Validate() (err error) {
	defer prefixErr(&err)
	if m.Graph == nil {
		return fmt.Errorf("model has no graph")
	}
	if m.IRVersion < 3 {
		return fmt.Errorf("IR version %d is too old (robust reads IR 3 and later)", m.IRVersion)
	}
	if m.Opset("") == 0 {
		return fmt.Errorf("model imports no opset for the default ONNX domain")
	}
	imported := map[string]bool{}
	for _, o := range m.Opsets {
		imported[normDomain(o.Domain)] = true
	}
	return m.Graph.validate(imported, nil)
}

func normDomain(d string) string {
	if d == "ai.onnx" {
		return ""
	}
	return d
}

func (g *Graph) validate(imported map[string]bool, outer map[string]bool) error {
	defined := map[string]bool{}
	for k := range outer {
		defined[k] = true
	}
	for _, in := range g.Inputs {
		if in.Name == "" {
			return fmt.Errorf("graph %q has an input without a name", g.Name)
		}
		defined[in.Name] = true
	}
	for _, t := range g.Initializers {
		if t.Name == "" {
			return fmt.Errorf("graph %q has an initializer without a name", g.Name)
		}
		defined[t.Name] = true
	}
	producer := map[string]*Node{}
	for _, n := range g.Nodes {
		d := normDomain(n.Domain)
		if !imported[d] {
			return fmt.Errorf("%v: domain %q is not imported by the model (unknown opset)", n, n.Domain)
		}
		if d == "" && !IsStandardOp(n.OpType) {
			return fmt.Errorf("%v: unknown operator %q in the default ONNX domain", n, n.OpType)
		}
		for _, o := range n.Outputs {
			if o == "" {
				continue
			}
			if p, dup := producer[o]; dup {
				return fmt.Errorf("%v: value %q is already produced by %v", n, o, p)
			}
			if defined[o] && !outer[o] {
				return fmt.Errorf("%v: output %q is also a graph input or initializer", n, o)
			}
			producer[o] = n
		}
	}
	if _, err := g.topoOrder(defined, producer); err != nil {
		return err
	}
	for _, o := range g.Outputs {
		if !defined[o.Name] && producer[o.Name] == nil {
			return fmt.Errorf("graph %q: output %q is not produced by any node", g.Name, o.Name)
		}
	}
	// Subgraphs see every value of this graph.
	for _, n := range g.Nodes {
		for _, a := range n.Attrs {
			subs := a.Graphs
			if a.Graph != nil {
				subs = append(subs, a.Graph)
			}
			for _, sg := range subs {
				scope := map[string]bool{}
				for k := range defined {
					scope[k] = true
				}
				for k := range producer {
					scope[k] = true
				}
				if err := sg.validate(imported, scope); err != nil {
					return fmt.Errorf("%v: attribute %q: %w", n, a.Name, err)
				}
			}
		}
	}
	return nil
}

// ErrCycle is wrapped by errors about cyclic graphs.
var ErrCycle = errors.New("onnxgraph: graph has a cycle")

// topoOrder returns the nodes in an order where every node comes after the
// producers of its inputs. It reports an undefined input or a cycle, naming
// a node involved.
func (g *Graph) topoOrder(defined map[string]bool, producer map[string]*Node) ([]*Node, error) {
	index := make(map[*Node]int, len(g.Nodes))
	for i, n := range g.Nodes {
		index[n] = i
	}
	pending := make([]int, len(g.Nodes))
	users := make(map[*Node][]*Node)
	for i, n := range g.Nodes {
		seen := map[*Node]bool{}
		for _, in := range n.Inputs {
			if in == "" {
				continue
			}
			p := producer[in]
			if p == nil {
				if !defined[in] {
					return nil, fmt.Errorf("%v: input %q is not a graph input, an initializer or the output of any node", n, in)
				}
				continue
			}
			if !seen[p] {
				seen[p] = true
				pending[i]++
				users[p] = append(users[p], n)
			}
		}
		// Outer-scope references inside subgraphs also depend on producers here.
		for _, name := range n.subgraphReads() {
			if p := producer[name]; p != nil && p != n && !seen[p] {
				seen[p] = true
				pending[i]++
				users[p] = append(users[p], n)
			}
		}
	}
	order := make([]*Node, 0, len(g.Nodes))
	var ready []int
	for i := range g.Nodes {
		if pending[i] == 0 {
			ready = append(ready, i)
		}
	}
	for len(ready) > 0 {
		// Keep the original order among ready nodes (stable sort).
		slices.Sort(ready)
		i := ready[0]
		ready = ready[1:]
		n := g.Nodes[i]
		order = append(order, n)
		for _, u := range users[n] {
			j := index[u]
			pending[j]--
			if pending[j] == 0 {
				ready = append(ready, j)
			}
		}
	}
	if len(order) != len(g.Nodes) {
		var stuck []string
		for i, n := range g.Nodes {
			if pending[i] > 0 {
				stuck = append(stuck, n.String())
				if len(stuck) == 3 {
					break
				}
			}
		}
		return nil, fmt.Errorf("%w through %s", ErrCycle, strings.Join(stuck, ", "))
	}
	return order, nil
}

// subgraphReads lists the names that a node's subgraphs read from the
// enclosing scope.
func (n *Node) subgraphReads() []string {
	var out []string
	for _, a := range n.Attrs {
		subs := a.Graphs
		if a.Graph != nil {
			subs = append(subs, a.Graph)
		}
		for _, sg := range subs {
			local := map[string]bool{}
			for _, in := range sg.Inputs {
				local[in.Name] = true
			}
			for _, t := range sg.Initializers {
				local[t.Name] = true
			}
			for _, sn := range sg.Nodes {
				for _, o := range sn.Outputs {
					local[o] = true
				}
			}
			for _, sn := range sg.Nodes {
				for _, in := range sn.Inputs {
					if in != "" && !local[in] {
						out = append(out, in)
					}
				}
				out = append(out, sn.subgraphReads()...)
			}
		}
	}
	return out
}

// TopoSort reorders the graph's nodes so that every node follows the
// producers of its inputs, keeping the existing order where it is already
// valid.
func (g *Graph) TopoSort() (err error) {
	defer prefixErr(&err)
	defined := map[string]bool{}
	for _, in := range g.Inputs {
		defined[in.Name] = true
	}
	for _, t := range g.Initializers {
		defined[t.Name] = true
	}
	order, err := g.topoOrder(defined, g.Producers())
	if err != nil {
		return err
	}
	copy(g.Nodes, order)
	return nil
}
