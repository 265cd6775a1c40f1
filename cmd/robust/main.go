// Command robust trains neural networks that resist adversarial examples and
// measures how robust any ONNX classifier is.
//
//	robust info model.onnx                 what a model is made of
//	robust zoo list                        built-in architectures
//	robust train --model small-cnn ...     free / PGD / fast / natural training
//	robust eval model.onnx --eps 4/255     robust accuracy under an attack suite
//	robust merge part-*.json --json all.json  merge the reports of a sharded eval
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
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/alecthomas/kong"

	"github.com/robust-go/robust/evaluate"
	"github.com/robust-go/robust/ort"
	"github.com/robust-go/robust/train"
)

// Exit codes: 0 success, 1 a robustness gate was missed, 2 usage or input
// errors (bad flags, unreadable model or data, unwritable outputs), 130
// interrupted by Ctrl-C (training saved a checkpoint, an evaluation wrote
// its partial reports).
const (
	exitOK    = 0
	exitGate  = 1
	exitUsage = 2
	// exitInterrupted follows the shell convention for SIGINT (128+2).
	exitInterrupted = 130
)

// Globals are the flags every command takes.
type Globals struct {
	Version  kong.VersionFlag `help:"Print robust's version and exit."`
	OrtLib   string           `name:"ort-lib" env:"ROBUST_ORT_LIB" placeholder:"PATH" help:"ONNX Runtime shared library (libonnxruntime.so). Default: the project cache (scripts/setup-ort.sh installs it), then system library folders."`
	Device   string           `default:"cpu" placeholder:"cpu|cuda[:N]" help:"Execution provider: cpu, or cuda / cuda:N for a GPU build of ONNX Runtime."`
	Threads  int              `default:"0" help:"Intra-op threads for ONNX Runtime (0: one per core)."`
	Sessions int              `default:"0" help:"ONNX Runtime sessions that attack slices of each batch at the same time (eval, attack): 0 chooses one single-threaded session per thread on the CPU (one session for models with over 256 MB of weights), one session on a GPU; 1 is one session using every thread."`
	LogLevel string           `name:"log-level" default:"warning" enum:"verbose,info,warning,error,fatal" help:"Log level (${enum})."`
	// Progress display (cmd/robust/progress.go).
	Quiet     bool   `short:"q" help:"Show no progress (bars, periodic lines)."`
	LogFormat string `name:"log-format" default:"text" enum:"text,json" help:"Logs and progress on stderr: text (a bar on a terminal, a line every few seconds otherwise) or json (one JSON object per line)."`

	stdout io.Writer
	stderr io.Writer
	logger *slog.Logger

	// ctx is the parent of every command's context (Background in main;
	// tests cancel it to interrupt a command).
	ctx context.Context
	// sessions counts the model sessions eval and attack opened, for tests that
	// check that a usage error is found before any model is loaded.
	sessions int
	// onEvalProgress, when set, also receives an evaluation's progress (tests).
	onEvalProgress func(evaluate.Progress)
}

// interruptible returns the context of a long command: the first Ctrl-C
// (or SIGTERM) cancels it, so that the command stops cleanly — training
// saves a checkpoint, an evaluation writes what it has measured, marked
// partial — and exits 130; a second Ctrl-C kills the process at once.
// Every long command (train, harden, eval, attack) uses it.
func (g *Globals) interruptible() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(g.ctx, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // restore the default handlers: a second Ctrl-C kills
	}()
	return ctx, stop
}

// interrupted reports whether err is a command stopped by Ctrl-C.
func interrupted(err error) bool {
	return errors.Is(err, train.ErrInterrupted) || errors.Is(err, context.Canceled)
}

// runtime initialises ONNX Runtime with the global flags.
func (g *Globals) runtime() (*ort.Env, error) {
	level, err := ort.ParseLogLevel(g.LogLevel)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	env, err := ort.Init(ort.Options{LibraryPath: g.OrtLib, Device: g.Device, Threads: g.Threads, LogLevel: level})
	if err != nil {
		// The library says what to set; say which flags set it.
		var nf *ort.LibraryNotFoundError
		switch {
		case errors.Is(err, ort.ErrCUDAUnavailable):
			err = fmt.Errorf("%w\n(pass a GPU build of ONNX Runtime with --ort-lib PATH, or use --device cpu)", err)
		case errors.As(err, &nf) || strings.Contains(err.Error(), "Options.LibraryPath"):
			err = fmt.Errorf("%w\n(Options.LibraryPath is --ort-lib PATH)", err)
		}
	}
	return env, err
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
	Merge   MergeCmd   `cmd:"" help:"Merge the JSON reports of a sharded evaluation (robust eval --shard I/N) into one report; gates and exit codes as robust eval."`
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
	return newCLI(stdout, stderr).execute(args)
}

// newCLI returns the command tree writing to stdout and stderr.
func newCLI(stdout, stderr io.Writer) *CLI {
	cli := &CLI{}
	cli.stdout, cli.stderr, cli.ctx = stdout, stderr, context.Background()
	return cli
}

// execute parses args, runs the command and returns the exit code.
func (cli *CLI) execute(args []string) int {
	stderr := cli.stderr
	exitCode := -1
	parser, err := cli.parser(&exitCode)
	if err != nil {
		fmt.Fprintf(stderr, "robust: %v\n", err)
		return exitUsage
	}
	ctx, err := parser.Parse(args)
	if exitCode >= 0 { // --help, --version or a parse error already reported
		if exitCode != 0 {
			return exitUsage
		}
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "robust: %v\n", err)
		return exitUsage
	}
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
		if interrupted(err) {
			return exitInterrupted
		}
		return exitUsage
	}
	return exitOK
}

// parser returns the command line parser of the command tree; kong's exit
// code goes to exitCode. extra options come after robust's own (tests
// replace the file mappers with them).
func (cli *CLI) parser(exitCode *int, extra ...kong.Option) (*kong.Kong, error) {
	opts := append([]kong.Option{
		kong.Name("robust"),
		kong.Description("Adversarial robustness for ONNX models: free adversarial training, attack suites, CI gates."),
		kong.UsageOnError(),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		kong.ValueFormatter(helpWithDefault),
		kong.Writers(cli.stdout, cli.stderr),
		kong.Exit(func(code int) { *exitCode = code }),
		kong.Vars{"version": versionLine()},
	}, extra...)
	return kong.New(cli, opts...)
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

// helpWithDefault is kong's help text of a flag with its default value
// appended, so that help shows every default, including those that differ
// between commands.
func helpWithDefault(v *kong.Value) string {
	help := kong.DefaultHelpValueFormatter(v)
	if v.IsBool() && v.Default == "true" {
		return strings.TrimSuffix(help, ".") + " (default: on)."
	}
	if v.IsBool() || !v.HasDefault || v.Default == "" || strings.Contains(help, "(default") {
		return help
	}
	if strings.HasSuffix(help, ".") && !strings.HasSuffix(help, "...") {
		help = help[:len(help)-1]
	}
	return help + fmt.Sprintf(" (default: %s).", v.Default)
}

// Validate refuses negative thread and session counts before any command
// runs.
func (g *Globals) Validate() error {
	return checkCounts(count{"--threads", g.Threads, 0, "one per core"}, count{"--sessions", g.Sessions, 0, "chosen for the device"})
}
