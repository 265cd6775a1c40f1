package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/robust-go/robust/internal/liberr"
	"github.com/robust-go/robust/onnxgraph"
)

// output is a file a command will write.
type output struct {
	flag  string // the flag naming it, e.g. "--json"
	path  string
	write func(io.Writer) error
}

// checkOutputs checks, before any work, that every named output can be
// written: its folder exists and is writable, and it is not a folder
// itself. The error names the flag and the user's path.
func checkOutputs(outs []output) error {
	var errs []error
	for _, o := range outs {
		if o.path == "" {
			continue
		}
		if err := checkWritable(o.path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", o.flag, err))
		}
	}
	return errors.Join(errs...)
}

// checkWritable checks that path can be created or replaced, by creating
// and removing a file beside it.
func checkWritable(path string) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("cannot write %s: it is a folder", path)
	}
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err != nil {
		return fmt.Errorf("cannot write %s: folder %s does not exist", path, dir)
	} else if !fi.IsDir() {
		return fmt.Errorf("cannot write %s: %s is not a folder", path, dir)
	}
	f, err := os.CreateTemp(dir, ".robust-check-*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, liberr.Bare(err))
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

// writeOutputs writes every named output, also when some fail, and
// returns the failures joined. A Markdown report whose path is
// $GITHUB_STEP_SUMMARY is appended to, as GitHub expects; other files are
// replaced atomically.
func writeOutputs(outs []output) error {
	var errs []error
	for _, o := range outs {
		if o.path == "" {
			continue
		}
		if err := writeFile(o.path, o.write); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// writeFile writes a file through a writer function: appended to when it
// is $GITHUB_STEP_SUMMARY, else replaced atomically. Errors name path,
// never a temporary file.
func writeFile(path string, write func(io.Writer) error) error {
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if isStepSummary(path) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return fmt.Errorf("write %s: %w", path, liberr.Bare(err))
		}
		_, werr := f.Write(buf.Bytes())
		if err := errors.Join(werr, f.Close()); err != nil {
			return fmt.Errorf("write %s: %w", path, liberr.Bare(err))
		}
		return nil
	}
	if err := onnxgraph.WriteFileAtomic(path, buf.Bytes()); err != nil {
		return fmt.Errorf("write %s: %w", path, liberr.Bare(err))
	}
	return nil
}

// isStepSummary reports whether path is GitHub Actions' job summary file.
func isStepSummary(path string) bool {
	summary := os.Getenv("GITHUB_STEP_SUMMARY")
	if summary == "" {
		return false
	}
	a, err1 := filepath.Abs(path)
	b, err2 := filepath.Abs(summary)
	return err1 == nil && err2 == nil && a == b
}

// sameFile reports whether two paths name the same existing file.
func sameFile(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}
