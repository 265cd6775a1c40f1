// Command robust trains neural networks that resist adversarial examples and
// measures how robust any ONNX classifier is.
//
//	robust info model.onnx                 what a model is made of
//	robust zoo list                        built-in architectures
//	robust train --model small-cnn ...     free / PGD / fast / natural training
//	robust eval model.onnx --eps 4/255     robust accuracy under an attack suite
//	robust attack model.onnx --out adv.npz adversarial examples and a picture grid
//	robust harden model.onnx --out h.onnx  free adversarial fine-tuning of any ONNX classifier
//	robust plot runs/free                  training curves from a run's log
//
// Progress goes to stderr: a bar on a terminal, a line every few seconds
// in a file or CI log, JSON lines with --log-format json, nothing with
// --quiet.
//
// Run `robust --help` or `robust COMMAND --help` for the flags.
package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/alecthomas/kong"

	"github.com/robust-go/robust/ort"
	"github.com/robust-go/robust/train"
)

// Exit codes: 0 success, 1 a robustness gate was missed, 2 usage or input
// errors (bad flags, unreadable model or data), 130 training interrupted
// (checkpoint saved).
const (
	exitOK    = 0
	exitGate  = 1
	exitUsage = 2
	// exitInterrupted follows the shell convention for SIGINT (128+2):
	// training saved a checkpoint and --resume continues it.
	exitInterrupted = 130
)

// Globals are the flags every command takes.
type Globals struct {
	OrtLib   string `name:"ort-lib" env:"ROBUST_ORT_LIB" placeholder:"PATH" help:"ONNX Runtime shared library (libonnxruntime.so). Default: the project cache (scripts/setup-ort.sh installs it), then system library folders."`
	Device   string `default:"cpu" placeholder:"cpu|cuda[:N]" help:"Execution provider: cpu, or cuda / cuda:N for a GPU build of ONNX Runtime."`
	Threads  int    `default:"0" help:"Intra-op threads for ONNX Runtime (0: one per core)."`
	LogLevel string `name:"log-level" default:"warning" enum:"verbose,info,warning,error,fatal" help:"Log level (${enum})."`
	// Progress display (cmd/robust/progress.go).
	Quiet     bool   `short:"q" help:"Show no progress (bars, periodic lines)."`
	LogFormat string `name:"log-format" default:"text" enum:"text,json" help:"Logs and progress on stderr: text (a bar on a terminal, a line every few seconds otherwise) or json (one JSON object per line)."`

	stdout io.Writer
	stderr io.Writer
	logger *slog.Logger
}

// runtime initialises ONNX Runtime with the global flags.
func (g *Globals) runtime() (*ort.Env, error) {
	level, err := ort.ParseLogLevel(g.LogLevel)
	if err != nil {
		return nil, err
	}
	return ort.Init(ort.Options{LibraryPath: g.OrtLib, Device: g.Device, Threads: g.Threads, LogLevel: level})
}

// CLI is the command tree.
type CLI struct {
	Globals

	Version VersionCmd `cmd:"" help:"Print robust's version and the ONNX Runtime it finds."`
	Info    InfoCmd    `cmd:"" help:"Describe an ONNX model: inputs, outputs, opset, parameters, operators and which of them robust can differentiate."`
	Zoo     ZooCmd     `cmd:"" help:"Built-in architectures: list them, export one as ONNX."`
	Train   TrainCmd   `cmd:"" help:"Train a classifier: free, PGD or fast adversarial training, or natural; checkpoints, exact resume, ONNX export."`
	Eval    EvalCmd    `cmd:"" help:"Measure a model's robust accuracy under an attack suite; CI gates, reports, curves."`
	Attack  AttackCmd  `cmd:"" help:"Write adversarial examples (.npz) and a PNG grid of clean vs adversarial images."`
	Harden  HardenCmd  `cmd:"" help:"Fine-tune an existing ONNX classifier with free adversarial training; write a drop-in replacement."`
	Plot    PlotCmd    `cmd:"" help:"Draw a training run's curves (loss, accuracy, held-out clean and PGD accuracy, learning rate) from its log."`
}

// usageError marks errors caused by the user's input (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// gateError marks a missed robustness threshold (exit code 1).
type gateError struct{ reason string }

func (e gateError) Error() string { return e.reason }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run parses args, runs the command and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	var cli CLI
	exitCode := -1
	parser, err := kong.New(&cli,
		kong.Name("robust"),
		kong.Description("Adversarial robustness for ONNX models: free adversarial training, attack suites, CI gates."),
		kong.UsageOnError(),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { exitCode = code }),
		kong.Vars{"version": version},
	)
	if err != nil {
		fmt.Fprintf(stderr, "robust: %v\n", err)
		return exitUsage
	}
	ctx, err := parser.Parse(args)
	if exitCode >= 0 { // --help or a parse error already reported
		if exitCode != 0 {
			return exitUsage
		}
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "robust: %v\n", err)
		return exitUsage
	}
	cli.stdout, cli.stderr = stdout, stderr
	logOpts := &slog.HandlerOptions{Level: slogLevel(cli.LogLevel)}
	cli.logger = slog.New(slog.NewTextHandler(stderr, logOpts))
	if cli.LogFormat == "json" {
		cli.logger = slog.New(slog.NewJSONHandler(stderr, logOpts))
	}
	if err := ctx.Run(&cli.Globals); err != nil {
		fmt.Fprintf(stderr, "robust: %v\n", err)
		var gate gateError
		if errors.As(err, &gate) {
			return exitGate
		}
		if errors.Is(err, train.ErrInterrupted) {
			return exitInterrupted
		}
		return exitUsage
	}
	return exitOK
}

func slogLevel(s string) slog.Level {
	switch s {
	case "verbose":
		return slog.LevelDebug
	case "info":
		return slog.LevelInfo
	case "warning":
		return slog.LevelWarn
	}
	return slog.LevelError
}
