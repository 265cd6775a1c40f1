package ort

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	ortgo "github.com/yalue/onnxruntime_go"
)

// LogLevel is the severity from which ONNX Runtime prints log messages.
type LogLevel int

// Log levels. The zero value is ONNX Runtime's default, warnings.
const (
	LogWarning LogLevel = iota
	LogVerbose
	LogInfo
	LogError
	LogFatal
)

var logLevelNames = [...]string{
	LogWarning: "warning",
	LogVerbose: "verbose",
	LogInfo:    "info",
	LogError:   "error",
	LogFatal:   "fatal",
}

// String returns the level's name, as [ParseLogLevel] reads it.
func (l LogLevel) String() string {
	if l >= 0 && int(l) < len(logLevelNames) {
		return logLevelNames[l]
	}
	return "LogLevel(" + strconv.Itoa(int(l)) + ")"
}

// ParseLogLevel parses "verbose", "info", "warning", "error" or "fatal".
func ParseLogLevel(s string) (LogLevel, error) {
	for l, name := range logLevelNames {
		if s == name {
			return LogLevel(l), nil
		}
	}
	return 0, fmt.Errorf("ort: unknown log level %q: want one of %s", s, strings.Join(logLevelNames[:], ", "))
}

func (l LogLevel) ortLevel() (ortgo.LoggingLevel, error) {
	switch l {
	case LogVerbose:
		return ortgo.LoggingLevelVerbose, nil
	case LogInfo:
		return ortgo.LoggingLevelInfo, nil
	case LogWarning:
		return ortgo.LoggingLevelWarning, nil
	case LogError:
		return ortgo.LoggingLevelError, nil
	case LogFatal:
		return ortgo.LoggingLevelFatal, nil
	}
	return 0, fmt.Errorf("ort: invalid log level %d", int(l))
}

func (l LogLevel) envOption() ortgo.EnvironmentOption {
	switch l {
	case LogVerbose:
		return ortgo.WithLogLevelVerbose()
	case LogInfo:
		return ortgo.WithLogLevelInfo()
	case LogError:
		return ortgo.WithLogLevelError()
	case LogFatal:
		return ortgo.WithLogLevelFatal()
	}
	return ortgo.WithLogLevelWarning()
}

// Options configure [Init].
type Options struct {
	// LibraryPath is the ONNX Runtime shared library (the --ort-lib flag).
	// When empty, [FindLibrary] looks for one; after a successful Init, an
	// empty LibraryPath means the library already loaded.
	LibraryPath string
	// Threads is the number of intra-op threads of each session; 0 lets ONNX
	// Runtime choose (one per physical core).
	Threads int
	// Device is "cpu" (the default when empty), "cuda" or "cuda:N".
	Device string
	// LogLevel is ONNX Runtime's log severity. It is process-wide: the
	// latest Init sets it.
	LogLevel LogLevel
	// CUDA tunes the CUDA execution provider when Device is a GPU.
	CUDA CUDAOptions
}

// Env creates sessions that share a device and thread settings. Any number of
// Envs may exist; they all use the one ONNX Runtime loaded in the process.
// An Env holds no resources of its own and needs no closing.
type Env struct {
	library string
	version string
	threads int
	device  Device
	cuda    map[string]string // CUDA provider options (CUDA devices only)
}

// ErrCUDAUnavailable is wrapped by the errors of [Init] and
// [Env.NewSession] when a CUDA device is asked for but the loaded ONNX
// Runtime cannot provide one.
var ErrCUDAUnavailable = errors.New("CUDA execution provider unavailable")

// loaded is the one ONNX Runtime of the process. onnxruntime_go keeps the
// library handle and the OrtEnv in package variables and can initialise only
// once, and unloading ONNX Runtime (whose thread pools outlive sessions) is
// not safe, so Init loads the library once and every Env shares it. This is
// the package's only global mutable state.
var loaded struct {
	mu      sync.Mutex
	path    string      // library path; "" until the first successful Init
	file    os.FileInfo // to recognise the same library under another path
	version string
}

// Init loads and initialises ONNX Runtime, on the first call, and returns an
// Env for the options. Later calls return new Envs using the library already
// loaded; naming a different library is an error, since a process can load
// only one. When a CUDA device is asked for, Init checks that the library
// can use it and fails with an error wrapping [ErrCUDAUnavailable] if not.
func Init(opts Options) (*Env, error) {
	dev := Device{Kind: DeviceCPU}
	if opts.Device != "" {
		var err error
		if dev, err = ParseDevice(opts.Device); err != nil {
			return nil, err
		}
	}
	if opts.Threads < 0 {
		return nil, fmt.Errorf("ort: negative thread count %d", opts.Threads)
	}
	level, err := opts.LogLevel.ortLevel()
	if err != nil {
		return nil, err
	}

	loaded.mu.Lock()
	defer loaded.mu.Unlock()
	if loaded.path == "" {
		if err := load(opts.LibraryPath, opts.LogLevel); err != nil {
			return nil, err
		}
	} else {
		if opts.LibraryPath != "" {
			if err := checkSameLibrary(opts.LibraryPath); err != nil {
				return nil, err
			}
		}
		if err := ortgo.SetEnvironmentLogLevel(level); err != nil {
			return nil, fmt.Errorf("ort: set log level %s: %w", opts.LogLevel, err)
		}
	}

	e := &Env{library: loaded.path, version: loaded.version, threads: opts.Threads, device: dev}
	if dev.Kind == DeviceCUDA {
		if e.cuda, err = opts.CUDA.ProviderOptions(dev.ID); err != nil {
			return nil, err
		}
		// Fail early, with the explanation, rather than at the first session.
		so, err := e.sessionOptions()
		if err != nil {
			return nil, err
		}
		if err := so.Destroy(); err != nil {
			return nil, fmt.Errorf("ort: release session options: %w", err)
		}
	}
	return e, nil
}

// load loads the library; loaded.mu must be held.
func load(explicit string, level LogLevel) error {
	if ortgo.IsInitialized() {
		return errors.New("ort: onnxruntime_go was initialised outside package ort")
	}
	path, err := FindLibrary(explicit)
	if err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("ort: %w", err)
	}
	ortgo.SetSharedLibraryPath(path)
	if err := ortgo.InitializeEnvironment(level.envOption()); err != nil {
		msg := "ort: load ONNX Runtime from %s: %w"
		if strings.Contains(err.Error(), "ORT API base") {
			// onnxruntime_go asks for the C API of ORT 1.24; older
			// libraries refuse it.
			msg += " (the library is too old: ONNX Runtime 1.24 or newer is needed; robust is tested with " + CachedVersion + ")"
		}
		return fmt.Errorf(msg, path, err)
	}
	loaded.path, loaded.file, loaded.version = path, fi, ortgo.GetVersion()
	return nil
}

// checkSameLibrary reports whether path is the library already loaded;
// loaded.mu must be held.
func checkSameLibrary(path string) error {
	p, err := checkLibrary(path, "Options.LibraryPath")
	if err != nil {
		return err
	}
	if p == loaded.path {
		return nil
	}
	if fi, err := os.Stat(p); err == nil && os.SameFile(fi, loaded.file) {
		return nil
	}
	return fmt.Errorf("ort: ONNX Runtime is already loaded from %s; a process cannot switch to %s", loaded.path, p)
}

// Library returns the path of the loaded ONNX Runtime library.
func (e *Env) Library() string { return e.library }

// Version returns the loaded ONNX Runtime's version, e.g. "1.30.0".
func (e *Env) Version() string { return e.version }

// Device returns the device the Env's sessions run on.
func (e *Env) Device() Device { return e.device }

// Threads returns the intra-op thread count of the Env's sessions (0: ONNX
// Runtime's default).
func (e *Env) Threads() int { return e.threads }

// sessionOptions returns session options for the Env's threads and device.
// The caller destroys them.
func (e *Env) sessionOptions() (*ortgo.SessionOptions, error) {
	so, err := ortgo.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("ort: create session options: %w", err)
	}
	if err := e.configure(so); err != nil {
		_ = so.Destroy()
		return nil, err
	}
	return so, nil
}

func (e *Env) configure(so *ortgo.SessionOptions) error {
	if e.threads > 0 {
		if err := so.SetIntraOpNumThreads(e.threads); err != nil {
			return fmt.Errorf("ort: set %d intra-op threads: %w", e.threads, err)
		}
	}
	if e.device.Kind != DeviceCUDA {
		return nil
	}
	cuda, err := ortgo.NewCUDAProviderOptions()
	if err != nil {
		return e.cudaError(err)
	}
	defer func() { _ = cuda.Destroy() }()
	if err := cuda.Update(e.cuda); err != nil {
		return e.cudaError(err)
	}
	if err := so.AppendExecutionProviderCUDA(cuda); err != nil {
		return e.cudaError(err)
	}
	return nil
}

// cudaError explains why the CUDA execution provider could not be added.
func (e *Env) cudaError(err error) error {
	msg := err.Error()
	cpuOnly := strings.Contains(msg, "providers_cuda") ||
		strings.Contains(msg, "providers_shared") ||
		strings.Contains(msg, "not enabled") ||
		strings.Contains(msg, "not available") ||
		strings.Contains(msg, "not supported")
	if cpuOnly {
		return fmt.Errorf("ort: device %s: %w: the ONNX Runtime library %s is CPU-only "+
			"(ONNX Runtime said: %v); a GPU build of ONNX Runtime is needed, with "+
			"libonnxruntime_providers_cuda.so and libonnxruntime_providers_shared.so "+
			"next to libonnxruntime.so, built for your CUDA major version (scripts/setup-ort.sh, asked for the GPU "+
			"libraries, installs them beside the cached one): name it with Options.LibraryPath or $%s, or use the CPU",
			e.device, ErrCUDAUnavailable, e.library, err, EnvLibrary)
	}
	return fmt.Errorf("ort: device %s: %w: ONNX Runtime (%s) could not enable CUDA: %v; "+
		"check the GPU index, the NVIDIA driver and the CUDA/cuDNN libraries that this ONNX Runtime build needs",
		e.device, ErrCUDAUnavailable, e.library, err)
}
