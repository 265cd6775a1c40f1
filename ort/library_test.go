package ort

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func touch(t *testing.T, path string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func fakeEnv(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestFindLibraryOrder(t *testing.T) {
	dir := t.TempDir()
	explicit := touch(t, filepath.Join(dir, "explicit", "libonnxruntime.so.1"))
	fromEnv := touch(t, filepath.Join(dir, "env", "libonnxruntime.so.1"))
	cacheDir := filepath.Join(dir, "cache")
	cached := touch(t, filepath.Join(cacheDir, "ort", CachedVersion, "libonnxruntime.so.1"))
	ldDir := filepath.Join(dir, "ld")
	ld := touch(t, filepath.Join(ldDir, "libonnxruntime.so.1"))
	sysDir := filepath.Join(dir, "sys")
	sys := touch(t, filepath.Join(sysDir, "libonnxruntime.so"))

	vars := map[string]string{
		EnvLibrary:         fromEnv,
		"ROBUST_CACHE_DIR": cacheDir,
		"LD_LIBRARY_PATH":  filepath.Join(dir, "nothing-here") + ":" + ldDir,
	}
	steps := []struct {
		explicit string
		drop     string // variable to unset after this step
		want     string
	}{
		{explicit, "", explicit},
		{"", EnvLibrary, fromEnv},
		{"", "ROBUST_CACHE_DIR", cached},
		{"", "LD_LIBRARY_PATH", ld},
		{"", "", sys},
	}
	for _, st := range steps {
		got, err := findLibrary(st.explicit, fakeEnv(vars), []string{sysDir})
		if err != nil {
			t.Fatalf("with %v: %v", vars, err)
		}
		if got != st.want {
			t.Errorf("with %v: got %s, want %s", vars, got, st.want)
		}
		delete(vars, st.drop)
	}
}

func TestFindLibraryRelativeExplicitIsMadeAbsolute(t *testing.T) {
	dir := t.TempDir()
	touch(t, filepath.Join(dir, "libonnxruntime.so"))
	t.Chdir(dir)
	got, err := findLibrary("libonnxruntime.so", fakeEnv(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(got) {
		t.Errorf("got %q, want an absolute path", got)
	}
}

func TestFindLibraryNotFound(t *testing.T) {
	dir := t.TempDir()
	vars := map[string]string{
		"HOME":            filepath.Join(dir, "home"),
		"LD_LIBRARY_PATH": filepath.Join(dir, "ld1") + ":" + filepath.Join(dir, "ld2"),
	}
	sysDir := filepath.Join(dir, "usr", "lib")
	_, err := findLibrary("", fakeEnv(vars), []string{sysDir})
	var nf *LibraryNotFoundError
	if !errors.As(err, &nf) {
		t.Fatalf("got %v, want a *LibraryNotFoundError", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"Options.LibraryPath",
		EnvLibrary,
		filepath.Join(dir, "home", ".cache", "robust", "ort", CachedVersion, "libonnxruntime.so.1"),
		filepath.Join(dir, "ld1", "libonnxruntime.so"),
		filepath.Join(dir, "ld2", "libonnxruntime.so.1"),
		filepath.Join(sysDir, "libonnxruntime.so"),
		filepath.Join(sysDir, "libonnxruntime.so.1"),
		"scripts/setup-ort.sh",
		"make ort",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not mention %q:\n%s", want, msg)
		}
	}
}

func TestFindLibraryNamedButMissing(t *testing.T) {
	dir := t.TempDir()
	cacheDir := filepath.Join(dir, "cache")
	touch(t, filepath.Join(cacheDir, "ort", CachedVersion, "libonnxruntime.so.1"))
	missing := filepath.Join(dir, "no", "libonnxruntime.so")
	vars := map[string]string{"ROBUST_CACHE_DIR": cacheDir}

	// An explicit path that does not exist is an error, even though the
	// cache holds a library.
	_, err := findLibrary(missing, fakeEnv(vars), nil)
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "Options.LibraryPath") {
		t.Errorf("explicit missing path: got %v", err)
	}
	vars[EnvLibrary] = missing
	_, err = findLibrary("", fakeEnv(vars), nil)
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), EnvLibrary) {
		t.Errorf("missing $%s: got %v", EnvLibrary, err)
	}
	_, err = findLibrary(dir, fakeEnv(nil), nil)
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: got %v", err)
	}
}

func TestFindLibraryPublicExplicitMissing(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "libonnxruntime.so")
	if _, err := FindLibrary(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("got %v, want an error naming %s", err, missing)
	}
}

func TestCacheLibraryPath(t *testing.T) {
	tail := filepath.Join("ort", CachedVersion, "libonnxruntime.so.1")
	for _, tc := range []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"ROBUST_CACHE_DIR": "/c", "XDG_CACHE_HOME": "/x", "HOME": "/h"}, filepath.Join("/c", tail)},
		{map[string]string{"XDG_CACHE_HOME": "/x", "HOME": "/h"}, filepath.Join("/x/robust", tail)},
		{map[string]string{"HOME": "/h"}, filepath.Join("/h/.cache/robust", tail)},
		{nil, ""},
	} {
		if got := cacheLibraryPath(fakeEnv(tc.vars)); got != tc.want {
			t.Errorf("%v: got %q, want %q", tc.vars, got, tc.want)
		}
	}
}

func TestParseDevice(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Device
		wantErr string
	}{
		{"cpu", Device{Kind: DeviceCPU}, ""},
		{"cuda", Device{Kind: DeviceCUDA, ID: 0}, ""},
		{"cuda:0", Device{Kind: DeviceCUDA, ID: 0}, ""},
		{"cuda:3", Device{Kind: DeviceCUDA, ID: 3}, ""},
		{"cuda:12", Device{Kind: DeviceCUDA, ID: 12}, ""},
		{"", Device{}, "empty device"},
		{"gpu", Device{}, "unknown device"},
		{"CPU", Device{}, "unknown device"},
		{" cpu", Device{}, "unknown device"},
		{"cpu:0", Device{}, "unknown device"},
		{"cuda:", Device{}, "not a non-negative decimal integer"},
		{"cuda:x", Device{}, "not a non-negative decimal integer"},
		{"cuda:-1", Device{}, "not a non-negative decimal integer"},
		{"cuda:+1", Device{}, "not a non-negative decimal integer"},
		{"cuda:1 ", Device{}, "not a non-negative decimal integer"},
		{"cuda:0x1", Device{}, "not a non-negative decimal integer"},
		{"cuda:99999999999999999999", Device{}, "GPU index"},
		{"cuda0", Device{}, "unknown device"},
	} {
		got, err := ParseDevice(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseDevice(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseDevice(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			continue
		}
		if back, err := ParseDevice(got.String()); err != nil || back != got {
			t.Errorf("ParseDevice(%q) does not round-trip: %v, %v", got.String(), back, err)
		}
	}
}

func TestParseLogLevel(t *testing.T) {
	for _, l := range []LogLevel{LogVerbose, LogInfo, LogWarning, LogError, LogFatal} {
		got, err := ParseLogLevel(l.String())
		if err != nil || got != l {
			t.Errorf("ParseLogLevel(%q) = %v, %v", l.String(), got, err)
		}
	}
	if _, err := ParseLogLevel("loud"); err == nil {
		t.Error("ParseLogLevel(loud): no error")
	}
}
