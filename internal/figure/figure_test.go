package figure

import (
	"bytes"
	"errors"
	"image/color"
	"image/png"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

func TestFormatOf(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"a.png", "png"}, {"dir.v2/a.SVG", "svg"}, {"a.pdf", "pdf"}, {"a.jpg", ""}, {"png", ""}, {"", ""},
	} {
		got, err := FormatOf(tc.path)
		if got != tc.want || (tc.want == "") != errors.Is(err, ErrFormat) {
			t.Errorf("FormatOf(%q) = %q, %v; want %q", tc.path, got, err, tc.want)
		}
	}
}

func TestRGB(t *testing.T) {
	for _, tc := range []struct {
		c    RGB
		want color.RGBA
	}{
		{Black, color.RGBA{0, 0, 0, 255}}, {Good, color.RGBA{0, 0x82, 0x3c, 255}}, {0xffffff, color.RGBA{255, 255, 255, 255}},
	} {
		if got := color.RGBAModel.Convert(tc.c).(color.RGBA); got != tc.want {
			t.Errorf("%06x: %v, want %v", uint32(tc.c), got, tc.want)
		}
	}
	if Colour(0) != Colour(7) || Colour(0) == Colour(1) {
		t.Error("the palette does not cycle over 7 colours")
	}
}

func TestPercentTicks(t *testing.T) {
	ticks := PercentTicks{}.Ticks(0, 100)
	if len(ticks) != 11 {
		t.Fatalf("%d ticks, want 11", len(ticks))
	}
	for i, tk := range ticks {
		labelled := tk.Label != ""
		if tk.Value != float64(10*i) || labelled != (i%2 == 0) {
			t.Errorf("tick %d: %+v", i, tk)
		}
	}
}

// TestWrite stacks two plots on a 4×6 inch PNG (384×576 pixels), SVG and
// PDF.
func TestWrite(t *testing.T) {
	var plots [2]*plot.Plot
	for i := range plots {
		p := New("", "x", "y")
		l, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: 1, Y: float64(i)}})
		if err != nil {
			t.Fatal(err)
		}
		p.Add(l)
		plots[i] = p
	}
	var b bytes.Buffer
	if err := Write(&b, 4*vg.Inch, 6*vg.Inch, "png", plots[0], plots[1]); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&b)
	if err != nil {
		t.Fatal(err)
	}
	if w, h := img.Bounds().Dx(), img.Bounds().Dy(); w != 384 || h != 576 {
		t.Errorf("%d×%d, want 384×576", w, h)
	}
	for _, tc := range []struct{ format, magic string }{{"svg", "<?xml"}, {"pdf", "%PDF-"}} {
		b.Reset()
		if err := Write(&b, 4*vg.Inch, 6*vg.Inch, tc.format, plots[0], plots[1]); err != nil {
			t.Fatalf("%s: %v", tc.format, err)
		}
		if !bytes.HasPrefix(b.Bytes(), []byte(tc.magic)) {
			t.Errorf("%s starts %q, want %q", tc.format, b.Bytes()[:min(b.Len(), 16)], tc.magic)
		}
	}
	if err := Write(&b, vg.Inch, vg.Inch, "gif", plots[0]); !errors.Is(err, ErrFormat) {
		t.Errorf("GIF: %v", err)
	}
}
