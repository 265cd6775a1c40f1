package dataset

import (
	"bytes"
	"image"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
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
		img := d.Image(i)
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
	if err != nil || d.Len() != 2 || d.Y[1] != 1 || d.Image(1)[1] != float32(pat(1)(1, 0, 0))/255 {
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
	dst := make([]float32, 3*5*5)
	var rs resizer
	if err := loadImage("testdata/resize_src.png", 6, 5, dst, &rs); err != nil {
		t.Fatal(err)
	}
	for i, v := range dst {
		if d := math.Abs(float64(v)*255 - float64(want[i])); d > 1 { // PIL rounds each pass to uint8
			t.Errorf("value %d (c%d y%d x%d) = %.2f, PIL %d", i, i/25, i/5%5, i%5, v*255, want[i])
		}
	}
}

func TestResizeCrop(t *testing.T) {
	// Values vary along x only: v(x) = 10x on an 8×4 image. Shorter side
	// 4 → 2 halves the width to 4; crop 2 keeps columns 1 and 2, whose
	// antialiased triangle weights over x = 2j-1…2j+2 are 1/8, 3/8, 3/8, 1/8.
	img := patternRGBA(8, 4, func(x, y, ch int) uint8 { return uint8(10 * x) })
	var rs resizer
	rs.src = toPlanarRGB(img, nil)
	dst := make([]float32, 3*2*2)
	rs.resizeCrop(dst, 8, 4, 2, 2)
	for ch := range 3 {
		for y := range 2 {
			for x, want := range []float64{25, 45} {
				if got := float64(dst[(ch*2+y)*2+x]) * 255; math.Abs(got-want) > 1e-3 {
					t.Errorf("(%d,%d,%d) = %v, want %v", ch, y, x, got, want)
				}
			}
		}
	}

	// Non-square, no scaling: the center crop of a 10×6 image at size 6
	// is columns 2…7.
	img = patternRGBA(10, 6, func(x, y, ch int) uint8 { return uint8(x*20 + y + ch) })
	rs.src = toPlanarRGB(img, rs.src)
	dst = make([]float32, 3*6*6)
	rs.resizeCrop(dst, 10, 6, 6, 6)
	for ch := range 3 {
		for y := range 6 {
			for x := range 6 {
				if got, want := dst[(ch*6+y)*6+x], float32((x+2)*20+y+ch)/255; got != want {
					t.Fatalf("crop (%d,%d,%d) = %v, want %v", ch, y, x, got, want)
				}
			}
		}
	}

	// A crop larger than the resized image is zero-padded; a constant
	// image stays constant under resizing.
	img = patternRGBA(5, 3, func(x, y, ch int) uint8 { return 200 })
	rs.src = toPlanarRGB(img, rs.src)
	dst = make([]float32, 3*4*4)
	rs.resizeCrop(dst, 5, 3, 2, 4) // resized to 3×2, crop 4
	zeros, full := 0, 0
	for _, v := range dst {
		switch {
		case v == 0:
			zeros++
		case math.Abs(float64(v)-200.0/255) < 1e-6:
			full++
		default:
			t.Fatalf("unexpected value %v", v)
		}
	}
	if full != 3*3*2 || zeros != 3*16-full {
		t.Errorf("%d zeros, %d image pixels", zeros, full)
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
	grayImg := d.Image(3) // other: c.JPG, gray.jpg, red.png
	for _, v := range grayImg {
		if math.Abs(float64(v)-128.0/255) > 2.0/255 {
			t.Fatalf("gray JPEG pixel %v", v*255)
		}
	}
	red := d.Image(4)
	if red[0] != 1 || red[256] != 0 || red[512] != 0 {
		t.Errorf("transparent red PNG: r=%v g=%v b=%v (alpha is dropped)", red[0], red[256], red[512])
	}
	// JPEG is lossy: compare a pixel of a.jpg with its source loosely.
	// The 40×30 image is resized to 26×20 and cropped at left 5, top 2:
	// output (y 8, x 8) is centred on source ((13.5)·40/26, (10.5)·30/20),
	// where the linear pattern 3x + 2y (at pixel centres) is:
	sx, sy := 13.5*40/26, 10.5*30/20
	want := (3*(sx-0.5) + 2*(sy-0.5)) / 255
	if v := float64(d.Image(0)[8*16+8]); math.Abs(v-want) > 2.0/255 {
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
	t.Run("corrupt image", func(t *testing.T) {
		dir := t.TempDir()
		for i := range 20 {
			writePNG(t, filepath.Join(dir, "a", string(rune('a'+i))+".png"), patternRGBA(4, 4, func(x, y, c int) uint8 { return 1 }))
		}
		bad := writeFile(t, filepath.Join(dir, "a", "k.jpg"), []byte("this is not a jpeg"))
		_, err := LoadImageFolder(dir, ImageFolderOptions{Crop: 4})
		wantErr(t, err, ErrFormat, "load "+bad)
		// A PNG truncated midway.
		var b bytes.Buffer
		writePNG(t, filepath.Join(dir, "a", "k.jpg"), patternRGBA(4, 4, func(x, y, c int) uint8 { return 1 }))
		raw, _ := os.ReadFile(bad)
		b.Write(raw[:len(raw)/2])
		writeFile(t, bad, b.Bytes())
		_, err = LoadImageFolder(dir, ImageFolderOptions{Crop: 4})
		wantErr(t, err, ErrFormat, "load "+bad)
	})
	t.Run("missing dir", func(t *testing.T) {
		_, err := LoadImageFolder(filepath.Join(t.TempDir(), "nope"), ImageFolderOptions{})
		wantErr(t, err, os.ErrNotExist, "nope")
	})
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
