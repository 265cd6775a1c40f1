package dataset

import (
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// storages returns the same 7 RGB 6×5 images with labels i%3 in the three
// storages: float32, 8-bit and streamed from PNG files (resized to their
// own size, which leaves them unchanged).
func storages(t *testing.T) map[string]*Dataset {
	t.Helper()
	const n, h, w = 7, 5, 6
	pix := make([]uint8, n*3*h*w)
	for i := range pix {
		pix[i] = uint8(i*37 + i/90)
	}
	y := make([]int64, n)
	for i := range y {
		y[i] = int64(i % 3)
	}
	u8 := &Dataset{Name: "s", C: 3, H: h, W: w, NumClasses: 3, Pix: pix, Y: y}
	f32 := &Dataset{Name: "s", C: 3, H: h, W: w, NumClasses: 3, X: make([]float32, len(pix)), Y: y}
	bytesToUnit(f32.X, pix)
	dir := t.TempDir()
	for i := range n {
		img := patternRGBA(w, h, func(x, yy, ch int) uint8 { return pix[((i*3+ch)*h+yy)*w+x] })
		// Class folders sort as the labels; file names keep sample order.
		writePNG(t, filepath.Join(dir, "c"+strconv.Itoa(i%3), "s"+strconv.Itoa(i)+".png"), img)
	}
	st, err := LoadImageFolder(dir, ImageFolderOptions{Resize: h, Crop: h})
	if err != nil {
		t.Fatal(err)
	}
	// The folder lists samples by class, then name: reorder to i.
	order := make([]int, n)
	for k, it := range st.stream.items {
		i, _ := strconv.Atoi(filepath.Base(it.path)[1:2])
		order[i] = k
	}
	if st, err = st.Select(order); err != nil {
		t.Fatal(err)
	}
	// Resizing a 6×5 image to shorter side 5 leaves it unchanged, and the
	// 5×5 center crop keeps columns 0–4 (left = round((6-5)/2) = 0, half to
	// even): compare with the same crop of the in-memory images.
	crop := func(d *Dataset) *Dataset {
		c := &Dataset{Name: "s", C: 3, H: h, W: h, NumClasses: 3, Y: y}
		all, err := d.Floats(nil, 0, n)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n * 3 * h {
			c.X = append(c.X, all[i*w:i*w+h]...)
		}
		return c
	}
	return map[string]*Dataset{"float32": crop(f32), "8-bit": crop(u8), "streamed": st, "8-bit full": u8, "float32 full": f32}
}

func TestStorages(t *testing.T) {
	ds := storages(t)
	ref := ds["float32"]
	for name, d := range ds {
		t.Run(name, func(t *testing.T) {
			if err := d.Validate(); err != nil {
				t.Fatal(err)
			}
			want := ref
			if strings.HasSuffix(name, "full") {
				want = ds["float32 full"]
			}
			all := func(d *Dataset) []float32 {
				x, err := d.Floats(nil, 0, d.Len())
				if err != nil {
					t.Fatal(err)
				}
				return x
			}
			wantAll := all(want)
			sz := want.ImageSize()
			if got := all(d); !slices.Equal(got, wantAll) {
				t.Fatalf("Floats differ from float32 storage")
			}
			x, err := d.Floats(make([]float32, 1), 2, 5)
			if err != nil || !slices.Equal(x, wantAll[2*sz:5*sz]) {
				t.Errorf("Floats(2,5): %v", err)
			}
			g := make([]float32, 3*sz)
			if err := d.Gather(g, []int{4, 0, 4}); err != nil ||
				!slices.Equal(g[:sz], wantAll[4*sz:5*sz]) || !slices.Equal(g[sz:2*sz], wantAll[:sz]) {
				t.Errorf("Gather: %v", err)
			}
			if err := d.Gather(g, []int{7}); err == nil {
				t.Error("Gather out of range accepted")
			}
			if _, err := d.Floats(nil, 3, 8); err == nil {
				t.Error("Floats out of range accepted")
			}
			sub := d.Subset(3)
			if sub.Len() != 3 || sub.Streamed() != d.Streamed() || !slices.Equal(all(sub), wantAll[:3*sz]) {
				t.Error("Subset")
			}
			sel, err := d.Select([]int{6, 1})
			if err != nil || sel.Streamed() != d.Streamed() || !slices.Equal(sel.Y, []int64{0, 1}) ||
				!slices.Equal(all(sel), append(slices.Clone(wantAll[6*sz:7*sz]), wantAll[sz:2*sz]...)) {
				t.Errorf("Select: %v", err)
			}
			tr, val, err := d.Split(2, 5)
			if err != nil || tr.Len() != 5 || val.Len() != 2 {
				t.Fatalf("Split: %v", err)
			}
			mem, err := d.InMemory()
			if err != nil || mem.Streamed() || !slices.Equal(all(mem), wantAll) {
				t.Errorf("InMemory: %v", err)
			}
			if !d.Streamed() && !slices.Equal(d.Image(3), wantAll[3*sz:4*sz]) {
				t.Error("Image")
			}
		})
	}
}
