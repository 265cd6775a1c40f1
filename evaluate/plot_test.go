package evaluate

import (
	"bytes"
	"image/png"
	"testing"
)

func TestWriteGridPNG(t *testing.T) {
	d := tinyData()
	var items []GridItem
	for i := range 5 {
		adv := append([]float32{}, d.Image(i)...)
		adv[0] = 1 - adv[0]
		items = append(items, GridItem{Clean: d.Image(i), Adv: adv, Label: int(d.Y[i]), PredClean: int(d.Y[i]), PredAdv: (int(d.Y[i]) + 1) % 4})
	}
	var b bytes.Buffer
	if err := WriteGridPNG(&b, items, tinyShape, []string{"a", "b", "c", "d"}, 2); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&b)
	if err != nil {
		t.Fatal(err)
	}
	if w, h := img.Bounds().Dx(), img.Bounds().Dy(); w < 2*2*96 || h < 3*96 {
		t.Errorf("grid of 5 images in 2 columns is %d×%d", w, h)
	}
	for _, bad := range []struct {
		items []GridItem
		shape [3]int
	}{
		{nil, tinyShape},
		{items, [3]int{2, 4, 4}},
		{[]GridItem{{Clean: []float32{0}}}, tinyShape},
	} {
		if err := WriteGridPNG(&b, bad.items, bad.shape, nil, 2); err == nil {
			t.Errorf("grid of %d items, shape %v accepted", len(bad.items), bad.shape)
		}
	}
	if err := (&Report{}).WriteCurvePNG(&b); err == nil {
		t.Error("curve without points accepted")
	}
}
