// Command torchcheck compares robust's gradients with PyTorch autograd for
// reference directories written by scripts/check_torch.py (see package
// torchref), printing one JSON object per directory:
//
//	{"dir": ..., "input_err": ..., "param_err": ..., "params": ..., "seconds": ...}
//
// or {"dir": ..., "error": ...}. It exits non-zero when a directory fails.
//
// Usage: go run ./internal/cmd/torchcheck [-tol 1e-3] DIR...
package main

import (
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/robust-go/robust/internal/torchref"
	"github.com/robust-go/robust/ort"
)

type line struct {
	Dir        string  `json:"dir"`
	InputErr   float64 `json:"input_err"`
	ParamErr   float64 `json:"param_err"`
	WorstParam string  `json:"worst_param,omitempty"`
	Params     int     `json:"params"`
	Missing    int     `json:"missing"`
	Trainable  int     `json:"trainable"`
	Seconds    float64 `json:"seconds"`
	Error      string  `json:"error,omitempty"`
}

func main() {
	tol := flag.Float64("tol", 1e-3, "largest accepted max |Δ| / max |g|")
	threads := flag.Int("threads", 2, "ONNX Runtime intra-op threads")
	verbose := flag.Bool("v", false, "print every parameter's error to stderr, largest first")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: torchcheck [-tol 1e-3] DIR...")
		os.Exit(2)
	}
	env, err := ort.Init(ort.Options{Threads: *threads, LogLevel: ort.LogError})
	if err != nil {
		fmt.Fprintln(os.Stderr, "torchcheck:", err)
		os.Exit(1)
	}
	failed := false
	enc := json.NewEncoder(os.Stdout)
	for _, dir := range flag.Args() {
		start := time.Now()
		l := line{Dir: dir}
		res, err := torchref.Check(env, dir)
		l.Seconds = time.Since(start).Seconds()
		if err != nil {
			l.Error = err.Error()
			failed = true
		} else {
			l.InputErr, l.ParamErr, l.WorstParam = res.InputErr, res.ParamErr, res.WorstParam
			l.Params, l.Missing, l.Trainable = res.Params, res.Missing, res.Trainable
			failed = failed || res.InputErr > *tol || res.ParamErr > *tol
			if *verbose {
				names := slices.SortedFunc(maps.Keys(res.Errors), func(a, b string) int {
					return cmp.Compare(res.Errors[b], res.Errors[a])
				})
				for _, name := range names {
					fmt.Fprintf(os.Stderr, "%s\t%.3g\n", name, res.Errors[name])
				}
			}
		}
		if err := enc.Encode(l); err != nil {
			fmt.Fprintln(os.Stderr, "torchcheck:", err)
			os.Exit(1)
		}
	}
	if failed {
		os.Exit(1)
	}
}
