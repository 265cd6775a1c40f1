package dataset

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// torchvisionTolerance is the largest difference allowed between robust's
// preprocessing and torchvision's, in 8-bit steps (2/255 in [0,1]).
const torchvisionTolerance = 2

// TestTorchvisionFixture compares the image-folder preprocessing with
// torchvision 0.14 on PIL images: Resize + CenterCrop, and the resized
// crop of RandomResizedCrop for fixed windows. The expected outputs were
// computed once by testdata/gen_torchvision.py; this test runs without
// Python.
func TestTorchvisionFixture(t *testing.T) {
	dir := filepath.Join("testdata", "torchvision")
	want, err := ReadNPZ(filepath.Join(dir, "expected.npz"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "cases.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	k := 0
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key := fmt.Sprintf("case%d", k)
		k++
		t.Run(line, func(t *testing.T) {
			fields := strings.Fields(line)
			nums := make([]int, len(fields)-2)
			for i, s := range fields[2:] {
				if nums[i], err = strconv.Atoi(s); err != nil {
					t.Fatal(err)
				}
			}
			exp, ok := want[key]
			if !ok {
				t.Fatalf("expected.npz lacks %s: rerun gen_torchvision.py", key)
			}
			dec := new(decoder)
			img, err := dec.decode(streamItem{path: filepath.Join(dir, fields[1])}, DefaultMaxPixels)
			if err != nil {
				t.Fatal(err)
			}
			var got []uint8
			switch fields[0] {
			case "center":
				got = make([]uint8, 3*nums[1]*nums[1])
				dec.transform(img, nums[0], nums[1], got, nil)
			case "resized":
				size := nums[4]
				got = make([]uint8, 3*size*size)
				dec.resizedCrop(dec.dropAlpha(img), nums[0], nums[1], nums[2], nums[3], size)
				toPlanar(got, dec.rgba, size, false)
			default:
				t.Fatalf("unknown case kind %q", fields[0])
			}
			ref := exp.Data.([]uint8)
			if len(ref) != len(got) {
				t.Fatalf("torchvision gives %d values (shape %v), robust %d", len(ref), exp.Shape, len(got))
			}
			worst, sum := 0, 0
			for i := range got {
				d := int(got[i]) - int(ref[i])
				d = max(d, -d)
				worst, sum = max(worst, d), sum+d
			}
			t.Logf("max |Δ| = %d/255, mean %.3f/255", worst, float64(sum)/float64(len(got)))
			if worst > torchvisionTolerance {
				t.Errorf("max difference %d/255 exceeds %d/255", worst, torchvisionTolerance)
			}
		})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if k != len(want) {
		t.Errorf("%d cases, %d expected arrays", k, len(want))
	}
}
