package ort

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// CachedVersion is the ONNX Runtime version that scripts/setup-ort.sh
// installs into the project cache.
const CachedVersion = "1.30.0"

// EnvLibrary is the environment variable that names the ONNX Runtime shared
// library to load, when no explicit path is given.
const EnvLibrary = "ROBUST_ORT_LIB"

// installHint tells users how to get a library.
const installHint = "install it with scripts/setup-ort.sh (or `make ort`), " +
	"or name it with Options.LibraryPath or $" + EnvLibrary

// LibraryNotFoundError is returned by [FindLibrary] when no ONNX Runtime
// library exists in any of the places it looks.
type LibraryNotFoundError struct {
	// Searched lists every place looked at, in order.
	Searched []string
}

func (e *LibraryNotFoundError) Error() string {
	var b strings.Builder
	b.WriteString("ort: ONNX Runtime shared library not found; looked in:")
	for _, s := range e.Searched {
		b.WriteString("\n\t")
		b.WriteString(s)
	}
	b.WriteString("\n")
	b.WriteString(installHint)
	return b.String()
}

// CacheLibraryPath returns where scripts/setup-ort.sh installs the library:
// $ROBUST_CACHE_DIR/ort/<CachedVersion>/libonnxruntime.so.1, where the cache
// directory defaults to $XDG_CACHE_HOME/robust, then $HOME/.cache/robust.
// It returns "" when none of these variables is set.
func CacheLibraryPath() string {
	return cacheLibraryPath(os.Getenv)
}

func cacheLibraryPath(getenv func(string) string) string {
	root := getenv("ROBUST_CACHE_DIR")
	if root == "" {
		cache := getenv("XDG_CACHE_HOME")
		if cache == "" {
			home := getenv("HOME")
			if home == "" {
				return ""
			}
			cache = filepath.Join(home, ".cache")
		}
		root = filepath.Join(cache, "robust")
	}
	return filepath.Join(root, "ort", CachedVersion, "libonnxruntime.so.1")
}

// FindLibrary returns the absolute path of the ONNX Runtime shared library
// to load. It tries, in order:
//
//  1. explicit (the --ort-lib flag), when not empty;
//  2. $ROBUST_ORT_LIB, when set;
//  3. the project cache, [CacheLibraryPath];
//  4. the directories of $LD_LIBRARY_PATH, then /usr/local/lib,
//     /usr/lib/<multiarch triplet>, /usr/lib64 and /usr/lib, looking for
//     libonnxruntime.so and libonnxruntime.so.1.
//
// An explicit path or $ROBUST_ORT_LIB that names no file is an error: the
// search does not silently go on. When nothing is found the error is a
// *[LibraryNotFoundError] listing every place looked at.
func FindLibrary(explicit string) (string, error) {
	return findLibrary(explicit, os.Getenv, systemLibDirs())
}

func findLibrary(explicit string, getenv func(string) string, systemDirs []string) (string, error) {
	if explicit != "" {
		return checkLibrary(explicit, "Options.LibraryPath")
	}
	if p := getenv(EnvLibrary); p != "" {
		return checkLibrary(p, "$"+EnvLibrary)
	}
	searched := []string{
		"Options.LibraryPath: not given",
		"$" + EnvLibrary + ": not set",
	}
	if p := cacheLibraryPath(getenv); p != "" {
		if isFile(p) {
			return filepath.Abs(p)
		}
		searched = append(searched, p+" (project cache)")
	} else {
		searched = append(searched, "project cache: $ROBUST_CACHE_DIR, $XDG_CACHE_HOME and $HOME all unset")
	}
	var dirs []string
	for _, d := range filepath.SplitList(getenv("LD_LIBRARY_PATH")) {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	dirs = append(dirs, systemDirs...)
	for _, d := range dirs {
		for _, name := range libraryNames() {
			p := filepath.Join(d, name)
			if isFile(p) {
				return filepath.Abs(p)
			}
			searched = append(searched, p)
		}
	}
	return "", &LibraryNotFoundError{Searched: searched}
}

// checkLibrary validates a library path the user asked for by name.
func checkLibrary(path, source string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("ort: ONNX Runtime library %q (from %s) does not exist; %s", path, source, installHint)
		}
		return "", fmt.Errorf("ort: ONNX Runtime library %q (from %s): %w", path, source, err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("ort: ONNX Runtime library %q (from %s) is not a regular file", path, source)
	}
	// dlopen searches the system paths for a name without a slash, so always
	// hand it an absolute path.
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("ort: ONNX Runtime library %q (from %s): %w", path, source, err)
	}
	return abs, nil
}

func isFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

func libraryNames() []string {
	if runtime.GOOS == "darwin" {
		return []string{"libonnxruntime.dylib"}
	}
	return []string{"libonnxruntime.so", "libonnxruntime.so.1"}
}

// systemLibDirs lists the standard library directories, most specific first.
func systemLibDirs() []string {
	dirs := []string{"/usr/local/lib"}
	switch runtime.GOARCH {
	case "amd64":
		dirs = append(dirs, "/usr/lib/x86_64-linux-gnu")
	case "arm64":
		dirs = append(dirs, "/usr/lib/aarch64-linux-gnu")
	}
	if runtime.GOOS == "darwin" {
		dirs = append(dirs, "/opt/homebrew/lib")
	}
	return append(dirs, "/usr/lib64", "/usr/lib")
}
