package evaluate

import (
	"bytes"
	"encoding/xml"
	"image"
	"image/png"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/robust-go/robust/internal/figure"
)

// curveReport is a hand-made report of two attacks at three budgets.
func curveReport() *Report {
	acc := func(correct int) Accuracy { return NewAccuracy(correct, 200) }
	pt := func(eps float64, text string, fgsm, pgd int) Point {
		return Point{Eps: eps, EpsText: text, Robust: acc(pgd), Attacks: []AttackResult{
			{Name: "fgsm", Robust: acc(fgsm)}, {Name: "pgd", Robust: acc(pgd)},
		}}
	}
	return &Report{
		Model: "tiny.onnx", Data: "tiny/test", Samples: 200, Norm: "linf", Clean: acc(180),
		Points: []Point{pt(8.0/255, "8/255", 90, 70), pt(2.0/255, "2/255", 150, 140), pt(4.0/255, "4/255", 120, 100)},
	}
}

// gridItems returns n pairs of the tiny images, every second one broken.
func testGridItems(n int) []GridItem {
	d := tinyData()
	var items []GridItem
	for i := range n {
		adv := append([]float32{}, d.Image(i)...)
		adv[0] = 1 - adv[0]
		pred := int(d.Y[i])
		if i%2 == 1 {
			pred = (pred + 1) % tinyClasses
		}
		items = append(items, GridItem{Clean: d.Image(i), Adv: adv, Label: int(d.Y[i]), PredClean: int(d.Y[i]), PredAdv: pred})
	}
	return items
}

// decodeSize decodes a figure and returns its size in pixels (PNG) or
// points (SVG), and the image for PNG.
func decodeSize(t *testing.T, format string, b []byte) (w, h float64, img image.Image) {
	t.Helper()
	switch format {
	case "png":
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("png: %v", err)
		}
		return float64(img.Bounds().Dx()), float64(img.Bounds().Dy()), img
	case "svg":
		var root struct {
			XMLName xml.Name
			Width   string `xml:"width,attr"`
			Height  string `xml:"height,attr"`
		}
		if err := xml.Unmarshal(b, &root); err != nil || root.XMLName.Local != "svg" {
			t.Fatalf("svg: %v (root %q)", err, root.XMLName.Local)
		}
		pt := func(s string) float64 {
			v, err := strconv.ParseFloat(strings.TrimSuffix(s, "pt"), 64)
			if err != nil {
				t.Fatalf("svg size %q: %v", s, err)
			}
			return v
		}
		return pt(root.Width), pt(root.Height), nil
	}
	t.Fatalf("format %q", format)
	return 0, 0, nil
}

// hasColour reports whether some pixel is within tol of c on every channel.
func hasColour(img image.Image, c figure.RGB, tol int) bool {
	cr, cg, cb, _ := c.RGBA()
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			d := max(absDiff(r, cr), absDiff(g, cg), absDiff(bl, cb)) >> 8
			if int(d) <= tol {
				return true
			}
		}
	}
	return false
}

func absDiff(a, b uint32) uint32 { return max(a, b) - min(a, b) }

func TestFigures(t *testing.T) {
	// The grid of 5 pairs in 2 columns has 3 rows: each pair is two
	// 96-pixel images plus labels.
	const gridCols, gridN = 2, 5
	for _, tc := range []struct {
		name, format string
		write        func(*bytes.Buffer) error
		// wantW, wantH: the exact size (curve), or the least (grid), in
		// pixels; SVG sizes are in points (72 per inch, PNG has 96).
		wantW, wantH float64
		exact        bool
	}{
		{"curve", "png", func(b *bytes.Buffer) error { return curveReport().WriteCurve(b, "png") }, 768, 480, true},
		{"curve", "svg", func(b *bytes.Buffer) error { return curveReport().WriteCurve(b, "svg") }, 768, 480, true},
		{"grid", "png", func(b *bytes.Buffer) error {
			return WriteGrid(b, "png", testGridItems(gridN), tinyShape, []string{"T-shirt", "trouser", "pullover", "dress"}, gridCols)
		}, gridCols * 2 * 96, 3 * 96, false},
		{"grid", "svg", func(b *bytes.Buffer) error {
			return WriteGrid(b, "svg", testGridItems(gridN), tinyShape, nil, gridCols)
		}, gridCols * 2 * 96, 3 * 96, false},
	} {
		t.Run(tc.name+"."+tc.format, func(t *testing.T) {
			var b bytes.Buffer
			if err := tc.write(&b); err != nil {
				t.Fatal(err)
			}
			w, h, img := decodeSize(t, tc.format, b.Bytes())
			if tc.format == "svg" {
				w, h = w*figure.DPI/72, h*figure.DPI/72
			}
			if tc.exact && (math.Abs(w-tc.wantW) > 1 || math.Abs(h-tc.wantH) > 1) {
				t.Errorf("%.0f×%.0f pixels, want %.0f×%.0f", w, h, tc.wantW, tc.wantH)
			}
			if !tc.exact && (w < tc.wantW || h < tc.wantH) {
				t.Errorf("%.0f×%.0f pixels, want at least %.0f×%.0f", w, h, tc.wantW, tc.wantH)
			}
			if img == nil {
				return
			}
			// Colour carries meaning: the grid marks right and wrong
			// predictions, the curve draws the all-attacks line in black.
			want := map[string][]figure.RGB{"curve": {figure.Black}, "grid": {figure.Good, figure.Bad}}
			for _, c := range want[tc.name] {
				if !hasColour(img, c, 24) {
					t.Errorf("no pixel of colour %06x", uint32(c))
				}
			}
		})
	}
}

func TestFigureErrors(t *testing.T) {
	items := testGridItems(2)
	for _, tc := range []struct {
		name  string
		write func(*bytes.Buffer) error
	}{
		{"grid without images", func(b *bytes.Buffer) error { return WriteGrid(b, "png", nil, tinyShape, nil, 2) }},
		{"grid of 2 channels", func(b *bytes.Buffer) error { return WriteGrid(b, "png", items, [3]int{2, 4, 4}, nil, 2) }},
		{"grid of a short image", func(b *bytes.Buffer) error {
			return WriteGrid(b, "png", []GridItem{{Clean: []float32{0}}}, tinyShape, nil, 2)
		}},
		{"grid as GIF", func(b *bytes.Buffer) error { return WriteGrid(b, "gif", items, tinyShape, nil, 2) }},
		{"curve without points", func(b *bytes.Buffer) error { return (&Report{}).WriteCurve(b, "png") }},
		{"curve as JPEG", func(b *bytes.Buffer) error { return curveReport().WriteCurve(b, "jpg") }},
	} {
		if err := tc.write(new(bytes.Buffer)); err == nil || !strings.HasPrefix(err.Error(), "evaluate: ") {
			t.Errorf("%s: error %v, want one starting with \"evaluate: \"", tc.name, err)
		}
	}
}

func TestFigureFormat(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"curve.png", "png"}, {"runs/x/curve.SVG", "svg"}, {"paper.pdf", "pdf"}, {"curve.gif", ""}, {"curve", ""},
	} {
		got, err := FigureFormat(tc.path)
		if got != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("FigureFormat(%q) = %q, %v; want %q", tc.path, got, err, tc.want)
		}
	}
}

// TestCurveMinEps draws a report with minimal ε per sample: the curve
// gains the step line of the empirical robust accuracy, in its legend,
// and the ε axis reaches the largest minimal ε found.
func TestCurveMinEps(t *testing.T) {
	r := curveReport()
	var plain bytes.Buffer
	if err := r.WriteCurve(&plain, "svg"); err != nil {
		t.Fatal(err)
	}
	r.MinEps = &MinEps{Samples: 200, Misclassified: 20, Values: []float64{0.001, 0.01, 0.02, 0.05, 0.09}}
	var b bytes.Buffer
	if err := r.WriteCurve(&b, "svg"); err != nil {
		t.Fatal(err)
	}
	const legend = "minimal ε per sample"
	if strings.Contains(plain.String(), legend) || !strings.Contains(b.String(), legend) {
		t.Errorf("legend %q: without min-ε %v, with %v", legend, strings.Contains(plain.String(), legend), strings.Contains(b.String(), legend))
	}
	if b.Len() <= plain.Len() {
		t.Errorf("min-ε curve adds nothing: %d bytes, %d without", b.Len(), plain.Len())
	}
}
