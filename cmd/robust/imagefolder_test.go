package main

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/robust-go/robust/internal/testenv"
)

// writeImageFolder writes an image folder with train/ and val/ splits of 3
// classes told apart by colour: n images per class and split, of varying
// sizes, plus one unreadable file in train/.
func writeImageFolder(t *testing.T, n int) (dir, bad string) {
	t.Helper()
	dir = t.TempDir()
	r := rand.New(rand.NewPCG(4, 5))
	for _, split := range []string{"train", "val"} {
		for k := range 3 {
			for i := range n {
				w, h := 20+r.IntN(12), 18+r.IntN(12)
				img := image.NewRGBA(image.Rect(0, 0, w, h))
				for p := 0; p < len(img.Pix); p += 4 {
					v := color.RGBA{uint8(r.IntN(90)), uint8(r.IntN(90)), uint8(r.IntN(90)), 255}
					switch k {
					case 0:
						v.R += 150
					case 1:
						v.G += 150
					case 2:
						v.B += 150
					}
					img.Pix[p], img.Pix[p+1], img.Pix[p+2], img.Pix[p+3] = v.R, v.G, v.B, v.A
				}
				var b bytes.Buffer
				if err := png.Encode(&b, img); err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(dir, split, "class"+strconv.Itoa(k), strconv.Itoa(i)+".png")
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	bad = filepath.Join(dir, "train", "class1", "broken.jpg")
	if err := os.WriteFile(bad, []byte("\xff\xd8\xff\xe0 truncated"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, bad
}

// TestTrainHardenImageFolder trains a model on a streamed image folder with
// ImageNet-style preprocessing and augmentation, then hardens it on the
// same folder: both commands run on data they read batch by batch.
func TestTrainHardenImageFolder(t *testing.T) {
	testenv.ORT(t)
	dir, bad := writeImageFolder(t, 16)
	data := "imagefolder:" + dir
	out := filepath.Join(t.TempDir(), "run")
	pre := []string{"--resize", "18", "--crop", "16", "--augment", "random-resized-crop:16,flip"}

	// Without --skip-bad, the unreadable file stops the run and is named.
	code, stdout, stderr := robust(t, append([]string{"--threads", "2", "train", "--data", data, "--out", out, "--no-progress"}, pre...)...)
	if code == exitOK || !strings.Contains(stdout+stderr, bad) {
		t.Fatalf("bad file: exit %d, output does not name %s:\n%s%s", code, bad, stdout, stderr)
	}

	args := append([]string{"--threads", "2", "train", "--data", data, "--out", out, "--skip-bad",
		"--method", "free", "--replays", "2", "--epochs", "4", "--batch", "16", "--eval-n", "12", "--eval-steps", "2",
		"--no-progress"}, pre...)
	code, stdout, stderr = robust(t, args...)
	if code != exitOK {
		t.Fatalf("train: exit %d\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "skipped 1 unreadable image") || !strings.Contains(stderr, bad) {
		t.Errorf("train: stderr does not list the skipped file:\n%s", stderr)
	}
	if !strings.Contains(stdout, "wrote "+filepath.Join(out, "model.onnx")) {
		t.Errorf("train: stdout:\n%s", stdout)
	}

	hard := filepath.Join(t.TempDir(), "hardened.onnx")
	code, stdout, stderr = robust(t, append([]string{"--threads", "2", "harden", filepath.Join(out, "model.onnx"),
		"--data", data, "-o", hard, "--skip-bad", "--eps", "4/255", "--replays", "2", "--epochs", "2", "--batch", "16",
		"--eval-n", "24", "--no-progress"}, pre...)...)
	if code != exitOK {
		t.Fatalf("harden: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{"before", "after", "wrote " + hard} {
		if !strings.Contains(stdout, want) {
			t.Errorf("harden: stdout lacks %q:\n%s", want, stdout)
		}
	}

	// The evaluation reads the val split through the same preprocessing.
	code, stdout, stderr = robust(t, "--threads", "2", "eval", hard, "--data", data, "--resize", "18", "--crop", "16",
		"--n", "0", "--eps", "4/255", "--suite", "fgsm", "--no-progress")
	if code != exitOK && code != exitGate {
		t.Fatalf("eval: exit %d\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "48") {
		t.Errorf("eval: stdout does not report the 48 val images:\n%s", stdout)
	}
}
