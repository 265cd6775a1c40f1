package liberr

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func load(fail error) (err error) {
	defer Prefix(&err, "pkg")
	return fail
}

func loadTwice(fail error) (err error) {
	defer Prefix(&err, "pkg")
	return load(fail)
}

func loadWrapped(fail error) (err error) {
	defer Prefix(&err, "pkg")
	if err := load(fail); err != nil {
		return fmt.Errorf("open x: %w", err)
	}
	return nil
}

func TestPrefix(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"nil", load(nil), ""},
		{"plain", load(fs.ErrNotExist), "pkg: file does not exist"},
		{"nested", loadTwice(fs.ErrNotExist), "pkg: file does not exist"},
		{"prefixed", load(errors.New("pkg: bad")), "pkg: bad"},
		{"other package", load(errors.New("pkgx: bad")), "pkg: pkgx: bad"},
		{"wrapped inside", loadWrapped(fs.ErrNotExist), "pkg: open x: file does not exist"},
		{"wrapped inside, prefixed", load(fmt.Errorf("open x: %w", load(errors.New("pkg: bad")))), "pkg: open x: bad"},
		{"not a prefix", load(errors.New("empty pkg: bad")), "pkg: empty pkg: bad"},
	} {
		got := ""
		if tc.err != nil {
			got = tc.err.Error()
		}
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	for _, err := range []error{load(fs.ErrNotExist), loadWrapped(fs.ErrNotExist)} {
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%v does not wrap fs.ErrNotExist", err)
		}
	}
}

func TestBare(t *testing.T) {
	_, err := os.Open(filepath.Join(t.TempDir(), ".x.tmp123"))
	bare := Bare(err)
	if strings.Contains(bare.Error(), ".tmp") || !errors.Is(bare, fs.ErrNotExist) {
		t.Errorf("Bare(%v) = %v", err, bare)
	}
	if err := errors.New("plain"); Bare(err) != err {
		t.Errorf("Bare changed %v", err)
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		err error
		ok  bool
	}{
		{nil, false},
		{errors.New("pkg: bad"), true},
		{errors.New("bad"), false},
		{errors.New("pkg: load: pkg: bad"), false},
		{errors.New("pkgx: bad"), false},
		{errors.New("pkg: load: empty pkg: bad"), true},
	} {
		if got := Check(tc.err, "pkg"); (got == nil) != tc.ok {
			t.Errorf("Check(%v) = %v, want ok %v", tc.err, got, tc.ok)
		}
	}
}
