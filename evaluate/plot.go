package evaluate

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
)

var (
	white    = color.RGBA{255, 255, 255, 255}
	black    = color.RGBA{0, 0, 0, 255}
	grey     = color.RGBA{200, 200, 200, 255}
	darkGrey = color.RGBA{110, 110, 110, 255}
	good     = color.RGBA{0, 140, 60, 255}
	bad      = color.RGBA{200, 30, 30, 255}
	// palette colours the attacks' curves (Okabe–Ito, colour-blind safe).
	palette = []color.RGBA{
		{230, 159, 0, 255}, {86, 180, 233, 255}, {0, 158, 115, 255}, {213, 94, 0, 255},
		{0, 114, 178, 255}, {204, 121, 167, 255}, {240, 228, 66, 255},
	}
)

// WriteCurvePNG draws robust accuracy against ε: one line per attack (its
// robust accuracy as in the report's mode), a thick black line for the
// samples surviving every attack and a dashed line at clean accuracy.
// Every curve starts at clean accuracy at ε = 0.
func (r *Report) WriteCurvePNG(w io.Writer) error {
	if len(r.Points) == 0 {
		return errors.New("curve: the report has no ε")
	}
	const (
		width, height = 760, 480
		left, right   = 70, 190
		top, bottom   = 40, 60
		scale         = 2
	)
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	fillRect(img, 0, 0, width, height, white)
	pw, ph := width-left-right, height-top-bottom
	maxEps := 0.0
	for _, p := range r.Points {
		maxEps = max(maxEps, p.Eps)
	}
	px := func(eps float64) int { return left + int(math.Round(eps/maxEps*float64(pw))) }
	py := func(acc float64) int { return top + ph - int(math.Round(acc*float64(ph))) }

	// Grid, axes and labels.
	for v := 0; v <= 100; v += 20 {
		y := py(float64(v) / 100)
		drawLine(img, left, y, left+pw, y, grey, 1)
		s := fmt.Sprintf("%d%%", v)
		drawText(img, left-8-textWidth(s, scale), y-glyphH*scale/2, s, black, scale)
	}
	labelEnd := math.MinInt // skip ε labels that would overlap the previous one
	for _, p := range sortedPoints(r.Points) {
		x := px(p.Eps)
		drawLine(img, x, top, x, top+ph, grey, 1)
		if lx := x - textWidth(p.EpsText, scale)/2; lx > labelEnd+6 {
			drawText(img, lx, top+ph+8, p.EpsText, black, scale)
			labelEnd = lx + textWidth(p.EpsText, scale)
		}
	}
	drawLine(img, left, top, left, top+ph, black, 2)
	drawLine(img, left, top+ph, left+pw, top+ph, black, 2)
	drawText(img, left+pw/2-textWidth("ε", scale)/2, height-22, "ε", black, scale)
	title := fmt.Sprintf("robust accuracy, %s, %s", normSymbol(r.Norm), r.Data)
	drawText(img, left, 12, title, black, scale)

	// Clean accuracy, dashed.
	for x := left; x < left+pw; x += 12 {
		drawLine(img, x, py(r.Clean.Value), min(x+6, left+pw), py(r.Clean.Value), darkGrey, 2)
	}
	pts := sortedPoints(r.Points)
	legendY := top
	legend := func(name string, c color.RGBA, thick int) {
		fillRect(img, left+pw+16, legendY+glyphH*scale/2-thick/2, 20, thick, c)
		drawText(img, left+pw+42, legendY, name, black, scale)
		legendY += 22
	}
	for i, a := range r.Points[0].Attacks {
		c := palette[i%len(palette)]
		prevX, prevY := px(0), py(r.Clean.Value)
		for _, p := range pts {
			ar := p.Attack(a.Name)
			if ar == nil || ar.Skipped != "" {
				continue
			}
			x, y := px(p.Eps), py(ar.Robust.Value)
			drawLine(img, prevX, prevY, x, y, c, 2)
			fillRect(img, x-3, y-3, 7, 7, c)
			prevX, prevY = x, y
		}
		legend(a.Name, c, 3)
	}
	prevX, prevY := px(0), py(r.Clean.Value)
	for _, p := range pts {
		x, y := px(p.Eps), py(p.Robust.Value)
		drawLine(img, prevX, prevY, x, y, black, 4)
		prevX, prevY = x, y
	}
	legend("all attacks", black, 4)
	legend("clean", darkGrey, 2)
	return png.Encode(w, img)
}

// drawLine draws a line of the given thickness (Bresenham).
func drawLine(img *image.RGBA, x0, y0, x1, y1 int, c color.Color, thick int) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		fillRect(img, x0-thick/2, y0-thick/2, thick, thick, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		if e2 := 2 * e; e2 >= dy {
			e += dy
			x0 += sx
		} else {
			e += dx
			y0 += sy
		}
	}
}

func abs(v int) int { return max(v, -v) }

func sign(v int) int {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

// GridItem is one sample of an adversarial-examples figure.
type GridItem struct {
	Clean, Adv []float32 // C·H·W values in [0,1], NCHW
	// Label is the true class; PredClean and PredAdv the model's
	// predictions on the clean and adversarial images.
	Label, PredClean, PredAdv int
}

// WriteGridPNG draws clean and adversarial images side by side, cols pairs
// per row, each under the model's prediction: green when it is the true
// class, red otherwise. classes, when given, names the classes. Images are
// C×H×W with C = 1 (grey) or 3 (RGB).
func WriteGridPNG(w io.Writer, items []GridItem, shape [3]int, classes []string, cols int) error {
	c, h, wd := shape[0], shape[1], shape[2]
	if len(items) == 0 {
		return errors.New("grid: no images")
	}
	if c != 1 && c != 3 {
		return fmt.Errorf("grid: %d channels; only grey or RGB images can be drawn", c)
	}
	if cols <= 0 {
		cols = 4
	}
	cols = min(cols, len(items))
	zoom := max(1, 96/max(h, wd))
	const textScale, pad = 1, 6
	iw, ih := wd*zoom, h*zoom
	labelH := 2*(glyphH*textScale+3) + 2
	name := func(k int) string {
		if k >= 0 && k < len(classes) {
			return classes[k]
		}
		return fmt.Sprint(k)
	}
	// A cell holds a pair: clean | adversarial, with labels underneath.
	cellW := 2*iw + pad
	for _, it := range items {
		cellW = max(cellW, textWidth("adv: "+name(it.PredAdv), textScale)+iw+pad, textWidth("clean: "+name(it.PredClean), textScale))
	}
	cellH := ih + labelH
	rowsN := (len(items) + cols - 1) / cols
	header := glyphH*2 + 12
	img := image.NewRGBA(image.Rect(0, 0, cols*(cellW+2*pad)+pad, header+rowsN*(cellH+2*pad)+pad))
	fillRect(img, 0, 0, img.Bounds().Dx(), img.Bounds().Dy(), white)
	drawText(img, pad, 6, "clean | adversarial   (green: correct, red: wrong)", black, 2)
	for n, it := range items {
		if len(it.Clean) != c*h*wd || len(it.Adv) != c*h*wd {
			return fmt.Errorf("grid: image %d has %d/%d values, want %d", n, len(it.Clean), len(it.Adv), c*h*wd)
		}
		x0 := pad + (n%cols)*(cellW+2*pad)
		y0 := header + pad + (n/cols)*(cellH+2*pad)
		drawImage(img, x0, y0, it.Clean, shape, zoom)
		drawImage(img, x0+iw+pad, y0, it.Adv, shape, zoom)
		mark := func(pred int) color.RGBA {
			if pred == it.Label {
				return good
			}
			return bad
		}
		drawText(img, x0, y0+ih+3, "clean: "+name(it.PredClean), mark(it.PredClean), textScale)
		drawText(img, x0, y0+ih+3+glyphH*textScale+3, "adv: "+name(it.PredAdv), mark(it.PredAdv), textScale)
	}
	return png.Encode(w, img)
}

// drawImage draws an NCHW image in [0,1] magnified zoom times.
func drawImage(img *image.RGBA, x0, y0 int, pix []float32, shape [3]int, zoom int) {
	c, h, w := shape[0], shape[1], shape[2]
	byteOf := func(v float32) uint8 { return uint8(math.Round(float64(min(max(v, 0), 1)) * 255)) }
	for y := range h {
		for x := range w {
			var col color.RGBA
			if c == 1 {
				v := byteOf(pix[y*w+x])
				col = color.RGBA{v, v, v, 255}
			} else {
				col = color.RGBA{byteOf(pix[y*w+x]), byteOf(pix[(h+y)*w+x]), byteOf(pix[(2*h+y)*w+x]), 255}
			}
			fillRect(img, x0+x*zoom, y0+y*zoom, zoom, zoom, col)
		}
	}
}
