package main

import (
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/robust-go/robust/internal/testenv"
)

// pngSize decodes a PNG file and returns its size.
func pngSize(t *testing.T, path string) (w, h int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img.Bounds().Dx(), img.Bounds().Dy()
}

// TestTrainingFigure checks that robust train draws its curves into the
// run directory and that robust plot draws them again, in PNG and SVG.
func TestTrainingFigure(t *testing.T) {
	testenv.ORT(t)
	data := writeSynthetic(t, 96)
	out := filepath.Join(t.TempDir(), "run")
	code, stdout, stderr := robust(t, "--threads", "2", "train", "--data", data, "--out", out, "--method", "natural",
		"--epochs", "2", "--batch", "32", "--eval-n", "32", "--eval-steps", "1", "--no-progress")
	if code != exitOK {
		t.Fatalf("train: exit %d\n%s%s", code, stdout, stderr)
	}
	// 8×9 inches at 96 dpi.
	if w, h := pngSize(t, filepath.Join(out, trainingFigure)); w != 768 || h != 864 {
		t.Errorf("training.png is %d×%d, want 768×864", w, h)
	}
	svg := filepath.Join(t.TempDir(), "curves.svg")
	for _, tc := range []struct {
		args []string
		want string // the file drawn
	}{
		{[]string{"plot", out}, filepath.Join(out, trainingFigure)},
		{[]string{"plot", filepath.Join(out, runLog), "-o", svg}, svg},
	} {
		code, stdout, stderr := robust(t, tc.args...)
		if code != exitOK || !strings.Contains(stdout, "drew "+tc.want) {
			t.Errorf("%v: exit %d\n%s%s", tc.args, code, stdout, stderr)
			continue
		}
		b, err := os.ReadFile(tc.want)
		if err != nil || !strings.Contains(string(b[:min(len(b), 200)]), map[bool]string{true: "<svg", false: "PNG"}[strings.HasSuffix(tc.want, ".svg")]) {
			t.Errorf("%s: %v, starts %q", tc.want, err, b[:min(len(b), 40)])
		}
	}
	for _, bad := range [][]string{
		{"plot", out, "-o", filepath.Join(t.TempDir(), "curves.gif")},
		{"plot", filepath.Join(t.TempDir(), "missing")},
	} {
		if code, _, stderr := robust(t, bad...); code != exitUsage || stderr == "" {
			t.Errorf("%v: exit %d, %q", bad, code, stderr)
		}
	}
}

// TestHardenFigure checks that robust harden draws its training curves
// beside the hardened model, with the progress shown as lines (stderr is
// not a terminal).
func TestHardenFigure(t *testing.T) {
	testenv.ORT(t)
	data := fashionSample(t, 128)
	out := filepath.Join(t.TempDir(), "hardened.onnx")
	code, stdout, stderr := robust(t, "--threads", "2", "harden", torchFixture, "--data", data, "-o", out,
		"--eps", "0.1", "--replays", "2", "--epochs", "2", "--batch", "64", "--eval-n", "0")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	if w, h := pngSize(t, strings.TrimSuffix(out, ".onnx")+"."+trainingFigure); w != 768 || h != 864 {
		t.Errorf("hardened.training.png is %d×%d, want 768×864", w, h)
	}
	if !strings.Contains(stderr, "] pass 1/1: ") || strings.Contains(stderr, "\r") {
		t.Errorf("stderr should hold progress lines and no carriage return:\n%q", stderr)
	}
}
