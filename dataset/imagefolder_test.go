package dataset

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestLoadImageFolderExact(t *testing.T) {
	dir := t.TempDir()
	pat := func(k int) func(x, y, ch int) uint8 {
		return func(x, y, ch int) uint8 { return uint8(x*31 + y*7 + ch*50 + k*3) }
	}
	// Classes sorted by name: "a_dog" = 0, "b_cat" = 1; files by name.
	writePNG(t, filepath.Join(dir, "b_cat", "1.png"), patternRGBA(8, 8, pat(0)))
	writePNG(t, filepath.Join(dir, "b_cat", "0.PNG"), patternRGBA(8, 8, pat(1)))
	writePNG(t, filepath.Join(dir, "a_dog", "x.png"), patternRGBA(8, 8, pat(2)))
	gray := image.NewGray(image.Rect(0, 0, 8, 8))
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i * 4)
	}
	writePNG(t, filepath.Join(dir, "a_dog", "y.png"), gray)
	writeFile(t, filepath.Join(dir, "a_dog", "notes.txt"), []byte("skipped"))
	writePNG(t, filepath.Join(dir, ".hidden", "h.png"), gray)
	writePNG(t, filepath.Join(dir, "a_dog", ".h.png"), gray)
	writeFile(t, filepath.Join(dir, "README"), []byte("not a class"))

	d, err := LoadImageFolder(dir, ImageFolderOptions{Resize: 8, Crop: 8, Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 4 || d.C != 3 || d.H != 8 || d.W != 8 || d.NumClasses != 2 {
		t.Fatalf("got %v", d)
	}
	if d.Classes[0] != "a_dog" || d.Classes[1] != "b_cat" {
		t.Errorf("classes %v", d.Classes)
	}
	wantY := []int64{0, 0, 1, 1}
	wantPat := []func(x, y, ch int) uint8{pat(2), nil, pat(1), pat(0)}
	for i := range 4 {
		if d.Y[i] != wantY[i] {
			t.Errorf("Y[%d] = %d, want %d", i, d.Y[i], wantY[i])
		}
		img := imageOf(t, d, i)
		for ch := range 3 {
			for y := range 8 {
				for x := range 8 {
					var v uint8
					if wantPat[i] == nil {
						v = gray.Pix[y*8+x]
					} else {
						v = wantPat[i](x, y, ch)
					}
					if got := img[(ch*8+y)*8+x]; got != float32(v)/255 {
						t.Fatalf("image %d (%d,%d,%d) = %v, want %v", i, ch, y, x, got, float32(v)/255)
					}
				}
			}
		}
	}

	d, err = LoadImageFolder(dir, ImageFolderOptions{Resize: 8, Crop: 8, MaxPerClass: 1})
	if err != nil || d.Len() != 2 || d.Y[1] != 1 || imageOf(t, d, 1)[1] != float32(pat(1)(1, 0, 0))/255 {
		t.Errorf("MaxPerClass: %v %v", d, err)
	}
}

// TestResizeGolden compares with PIL's bilinear resize and torchvision's
// center crop (testdata/gen_fixtures.py): shorter side 9 → 6, crop 5.
func TestResizeGolden(t *testing.T) {
	golden, err := ReadNPY("testdata/resize_golden_u8.npy")
	if err != nil {
		t.Fatal(err)
	}
	want := golden.Data.([]uint8)
	dst := make([]uint8, 3*5*5)
	s := &stream{resize: 6, crop: 5, maxPixels: DefaultMaxPixels}
	if err := new(decoder).preprocess(streamItem{path: "testdata/resize_src.png"}, s, dst, nil); err != nil {
		t.Fatal(err)
	}
	for i, v := range dst {
		if d := math.Abs(float64(v) - float64(want[i])); d > 1 { // rounding differs by one step at most
			t.Errorf("value %d (c%d y%d x%d) = %d, PIL %d", i, i/25, i/5%5, i%5, v, want[i])
		}
	}
}

// transformed runs the evaluation transform on img.
func transformed(img image.Image, resize, crop int) []uint8 {
	dst := make([]uint8, 3*crop*crop)
	new(decoder).transform(img, resize, crop, dst, nil)
	return dst
}

func TestResizeCrop(t *testing.T) {
	// Values vary along x only: v(x) = 10x on an 8×4 image. Shorter side
	// 4 → 2 halves the width to 4; crop 2 keeps columns 1 and 2, whose
	// antialiased triangle weights over x = 2j-1…2j+2 are 1/8, 3/8, 3/8, 1/8.
	img := patternRGBA(8, 4, func(x, y, ch int) uint8 { return uint8(10 * x) })
	dst := transformed(img, 2, 2)
	for ch := range 3 {
		for y := range 2 {
			for x, want := range []float64{25, 45} {
				if got := float64(dst[(ch*2+y)*2+x]); math.Abs(got-want) > 0.5 {
					t.Errorf("(%d,%d,%d) = %v, want %v", ch, y, x, got, want)
				}
			}
		}
	}

	// Non-square, no scaling: the center crop of a 10×6 image at size 6
	// is columns 2…7.
	img = patternRGBA(10, 6, func(x, y, ch int) uint8 { return uint8(x*20 + y + ch) })
	dst = transformed(img, 6, 6)
	for ch := range 3 {
		for y := range 6 {
			for x := range 6 {
				if got, want := dst[(ch*6+y)*6+x], uint8((x+2)*20+y+ch); got != want {
					t.Fatalf("crop (%d,%d,%d) = %v, want %v", ch, y, x, got, want)
				}
			}
		}
	}

	// A crop larger than the resized image is zero-padded; a constant
	// image stays constant under resizing.
	img = patternRGBA(5, 3, func(x, y, ch int) uint8 { return 200 })
	dst = transformed(img, 2, 4) // resized to 3×2, crop 4
	zeros, full := 0, 0
	for _, v := range dst {
		switch v {
		case 0:
			zeros++
		case 200:
			full++
		default:
			t.Fatalf("unexpected value %v", v)
		}
	}
	if full != 3*3*2 || zeros != 3*16-full {
		t.Errorf("%d zeros, %d image pixels", zeros, full)
	}
	// torchvision pads (4-3)//2 = 0 columns on the left and (4-2)//2 = 1
	// row on top.
	if dst[0] != 0 || dst[4] != 200 || dst[4+3] != 0 {
		t.Errorf("padding misplaced: row 0 %v, row 1 %v", dst[:4], dst[4:8])
	}
}

func TestLoadImageFolderJPEG(t *testing.T) {
	dir := t.TempDir()
	for i, name := range []string{"cls/a.jpg", "cls/b.jpeg", "other/c.JPG"} {
		img := patternRGBA(40+i*10, 30, func(x, y, ch int) uint8 { return uint8(x*3 + y*2 + ch*60) })
		var b bytes.Buffer
		if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 95}); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, name), b.Bytes())
	}
	// Grayscale JPEG and a PNG with transparency.
	g := image.NewGray(image.Rect(0, 0, 20, 20))
	for i := range g.Pix {
		g.Pix[i] = 128
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, g, nil); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "other", "gray.jpg"), b.Bytes())
	nrgba := image.NewNRGBA(image.Rect(0, 0, 16, 16))
	for i := 0; i < len(nrgba.Pix); i += 4 {
		nrgba.Pix[i], nrgba.Pix[i+1], nrgba.Pix[i+2], nrgba.Pix[i+3] = 255, 0, 0, 10
	}
	writePNG(t, filepath.Join(dir, "other", "red.png"), nrgba)

	d, err := LoadImageFolder(dir, ImageFolderOptions{Resize: 20, Crop: 16})
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 5 || d.H != 16 || d.W != 16 || d.C != 3 {
		t.Fatalf("got %v", d)
	}
	if err := d.Validate(); err != nil {
		t.Error(err)
	}
	grayImg := imageOf(t, d, 3) // other: c.JPG, gray.jpg, red.png
	for _, v := range grayImg {
		if math.Abs(float64(v)-128.0/255) > 2.0/255 {
			t.Fatalf("gray JPEG pixel %v", v*255)
		}
	}
	red := imageOf(t, d, 4)
	if red[0] != 1 || red[256] != 0 || red[512] != 0 {
		t.Errorf("transparent red PNG: r=%v g=%v b=%v (alpha is dropped)", red[0], red[256], red[512])
	}
	// JPEG is lossy: compare a pixel of a.jpg with its source loosely.
	// The 40×30 image is resized to 26×20 and cropped at left 5, top 2:
	// output (y 8, x 8) is centred on source ((13.5)·40/26, (10.5)·30/20),
	// where the linear pattern 3x + 2y (at pixel centres) is:
	sx, sy := 13.5*40/26, 10.5*30/20
	want := (3*(sx-0.5) + 2*(sy-0.5)) / 255
	if v := float64(imageOf(t, d, 0)[8*16+8]); math.Abs(v-want) > 2.0/255 {
		t.Errorf("jpeg pixel %v, want about %v", v*255, want*255)
	}
}

func TestLoadImageFolderErrors(t *testing.T) {
	t.Run("empty class", func(t *testing.T) {
		dir := t.TempDir()
		writePNG(t, filepath.Join(dir, "a", "1.png"), patternRGBA(4, 4, func(x, y, c int) uint8 { return 1 }))
		writeFile(t, filepath.Join(dir, "b", "readme.txt"), nil)
		_, err := LoadImageFolder(dir, ImageFolderOptions{Crop: 4})
		wantErr(t, err, ErrEmpty, dir, `class folder "b"`)
	})
	t.Run("no classes", func(t *testing.T) {
		dir := t.TempDir()
		_, err := LoadImageFolder(dir, ImageFolderOptions{})
		wantErr(t, err, ErrEmpty, dir, "no class subdirectories")
	})
	t.Run("not an image", func(t *testing.T) {
		dir := t.TempDir()
		for i := range 20 {
			writePNG(t, filepath.Join(dir, "a", string(rune('a'+i))+".png"), patternRGBA(4, 4, func(x, y, c int) uint8 { return 1 }))
		}
		bad := writeFile(t, filepath.Join(dir, "a", "k.jpg"), []byte("this is not a jpeg"))
		_, err := LoadImageFolder(dir, ImageFolderOptions{Crop: 4})
		wantErr(t, err, ErrFormat, "load "+bad)
	})
	t.Run("missing dir", func(t *testing.T) {
		_, err := LoadImageFolder(filepath.Join(t.TempDir(), "nope"), ImageFolderOptions{})
		wantErr(t, err, os.ErrNotExist, "nope")
	})
}

// pngHeader returns the start of a PNG file whose header announces a w×h
// RGB image, and no image data: a decompression bomb's header.
func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 2, 0, 0, 0) // 8-bit RGB
	chunk := append([]byte("IHDR"), ihdr...)
	b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(ihdr))))
	b.Write(chunk)
	b.Write(binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(chunk)))
	return b.Bytes()
}

// TestImageFolderHostile checks bombs, truncated and corrupt files: refused
// from the header or failing the batch that needs them, named, counted and
// listed with SkipBad, never a panic.
func TestImageFolderHostile(t *testing.T) {
	good := func(t *testing.T, dir string) {
		for i := range 6 {
			writePNG(t, filepath.Join(dir, "c"+string(rune('0'+i%2)), string(rune('a'+i))+".png"),
				patternRGBA(12, 10, func(x, y, c int) uint8 { return uint8(x + y + i) }))
		}
	}
	var full bytes.Buffer
	if err := jpeg.Encode(&full, patternRGBA(64, 48, func(x, y, c int) uint8 { return uint8(x * y) }), nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		data   []byte
		opts   ImageFolderOptions
		target error // from LoadImageFolder without SkipBad; nil: from the batch
	}{
		{"bomb", pngHeader(100_000, 100_000), ImageFolderOptions{}, ErrTooLarge},
		{"bomb under a lowered limit", full.Bytes(), ImageFolderOptions{MaxPixels: 64*48 - 1}, ErrTooLarge},
		{"garbage", []byte("GIF89a but not really"), ImageFolderOptions{}, ErrFormat},
		{"empty file", nil, ImageFolderOptions{}, ErrFormat},
		{"truncated JPEG", full.Bytes()[:full.Len()/2], ImageFolderOptions{}, nil},
		{"header only", pngHeader(8, 8), ImageFolderOptions{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			good(t, dir)
			bad := writeFile(t, filepath.Join(dir, "c1", "bad.jpg"), tc.data)
			tc.opts.Crop = 8
			d, err := LoadImageFolder(dir, tc.opts)
			if tc.target != nil {
				wantErr(t, err, tc.target, "load "+bad)
			} else {
				if err != nil {
					t.Fatalf("listing: %v", err)
				}
				_, err = d.Floats(nil, 0, d.Len())
				if err == nil || !strings.Contains(err.Error(), bad) {
					t.Errorf("reading all: %v, want an error naming %s", err, bad)
				}
				it, err := NewIterator(d, IteratorOptions{BatchSize: 4})
				if err != nil {
					t.Fatal(err)
				}
				x, y := make([]float32, 4*d.ImageSize()), make([]int64, 4)
				for range 2 {
					if _, ok := it.NextInto(x, y); !ok {
						break
					}
				}
				if it.Err() == nil || !strings.Contains(it.Err().Error(), bad) {
					t.Errorf("iterator: %v, want an error naming %s", it.Err(), bad)
				}
			}

			tc.opts.SkipBad = true
			d, err = LoadImageFolder(dir, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if d.Len() != 6 || len(d.Skipped) != 1 || d.Skipped[0].Path != bad || d.Skipped[0].Err == "" {
				t.Fatalf("SkipBad: %d samples, skipped %+v", d.Len(), d.Skipped)
			}
			if _, err := d.Floats(nil, 0, d.Len()); err != nil {
				t.Errorf("SkipBad: %v", err)
			}
			// Data derived from the folder still names the files left
			// out of it (evaluation reports list them).
			sel, err := d.Select([]int{1, 2})
			if err != nil {
				t.Fatal(err)
			}
			train, val, err := d.Split(2, 1)
			if err != nil {
				t.Fatal(err)
			}
			mem, err := d.Subset(3).InMemory()
			if err != nil {
				t.Fatal(err)
			}
			for name, dd := range map[string]*Dataset{"Subset": d.Subset(3), "Select": sel, "Split train": train, "Split validation": val, "InMemory": mem} {
				if !slices.Equal(dd.Skipped, d.Skipped) {
					t.Errorf("%s: skipped %+v, want %+v", name, dd.Skipped, d.Skipped)
				}
			}
		})
	}

	// A raised limit reads the image that a lowered one refused.
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "c", "big.jpg"), full.Bytes())
	d, err := LoadImageFolder(dir, ImageFolderOptions{Crop: 8, MaxPixels: 64 * 48})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Floats(nil, 0, 1); err != nil {
		t.Error(err)
	}
}
func TestImageFolderOptionsDefaults(t *testing.T) {
	for _, tc := range []struct {
		opts         ImageFolderOptions
		resize, crop int
	}{
		{ImageFolderOptions{}, 256, 224},
		{ImageFolderOptions{Crop: 32}, 32, 32},
		{ImageFolderOptions{Resize: 40}, 40, 224},
		{ImageFolderOptions{Resize: 36, Crop: 32}, 36, 32},
	} {
		if r, c := tc.opts.sizes(); r != tc.resize || c != tc.crop {
			t.Errorf("%+v: got %d/%d, want %d/%d", tc.opts, r, c, tc.resize, tc.crop)
		}
	}
}
