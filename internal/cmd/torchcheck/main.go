// Command torchcheck compares robust's gradients with PyTorch autograd for
// reference directories written by scripts/check_torch.py (see package
// torchref), printing one JSON object per directory:
//
//	{"dir": ..., "input_err": ..., "param_err": ..., "params": ..., "ok": ..., "seconds": ...}
//
// (input_err and param_err against PyTorch's float32 gradients; with its
// float64 ones, input_err_exact and param_err_exact against those and
// torch_input_err and torch_param_err PyTorch float32's own;
// input_err_by_export the input gradient's error on each export; ok is
// torchref.Result.Pass) or {"dir": ..., "error": ...}. It exits non-zero
// when a directory fails.
//
// With -dump, robust's gradients and ReLU and MaxPool inputs are written next to
// PyTorch's (torchref.CheckDump), for scripts/check_torch.py's test of
// float32 flips at ReLU and max-pooling kinks.
//
// Usage: go run ./internal/cmd/torchcheck [-tol 1e-3] [-dump] [-v] DIR...
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
	// NotTrainable names the compared parameters robust does not train by
	// default (onnxgraph.TrainableParams).
	NotTrainable []string `json:"not_trainable,omitempty"`
	// With PyTorch's float64 gradients in the directory: robust's errors
	// against them (the exact gradients) and PyTorch float32's own.
	InputErrExact *float64 `json:"input_err_exact,omitempty"`
	ParamErrExact *float64 `json:"param_err_exact,omitempty"`
	TorchInputErr *float64 `json:"torch_input_err,omitempty"`
	TorchParamErr *float64 `json:"torch_param_err,omitempty"`
	// InputByExport is the input gradient's error on each export
	// (torchref.Result.InputByExport).
	InputByExport map[string]float64 `json:"input_err_by_export,omitempty"`
	// OK is torchref.Result.Pass.
	OK      bool    `json:"ok"`
	Seconds float64 `json:"seconds"`
	Error   string  `json:"error,omitempty"`
}

func main() {
	tol := flag.Float64("tol", 1e-3, "largest accepted max |Δ| / max |g|")
	threads := flag.Int("threads", 2, "ONNX Runtime intra-op threads")
	verbose := flag.Bool("v", false, "print every parameter's error to stderr, largest first")
	dump := flag.Bool("dump", false, "write robust's gradients next to PyTorch's (robust_*.bin)")
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
		check := torchref.Check
		if *dump {
			check = torchref.CheckDump
		}
		res, err := check(env, dir)
		l.Seconds = time.Since(start).Seconds()
		if err != nil {
			l.Error = err.Error()
			failed = true
		} else {
			l.InputErr, l.ParamErr, l.WorstParam = res.InputErr, res.ParamErr, res.WorstParam
			l.Params, l.Missing, l.Trainable, l.NotTrainable = res.Params, res.Missing, res.Trainable, res.NotTrainable
			l.InputByExport = res.InputByExport
			if res.Exact != nil {
				pe, _ := res.Exact.MaxParam()
				tp, _ := res.Torch.MaxParam()
				l.InputErrExact, l.ParamErrExact = &res.Exact.Input, &pe
				l.TorchInputErr, l.TorchParamErr = &res.Torch.Input, &tp
			}
			l.OK = res.Pass(*tol)
			failed = failed || !l.OK
			if *verbose {
				names := slices.SortedFunc(maps.Keys(res.Errors), func(a, b string) int {
					return cmp.Compare(res.Errors[b], res.Errors[a])
				})
				for _, name := range names {
					if res.Exact != nil {
						fmt.Fprintf(os.Stderr, "%s\t%.3g\tvs float64 %.3g\ttorch float32 vs float64 %.3g\n",
							name, res.Errors[name], res.Exact.Params[name], res.Torch.Params[name])
						continue
					}
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
