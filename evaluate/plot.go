package evaluate

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/robust-go/robust/internal/figure"
)

// Figure sizes. A PNG is size·96 pixels (figure.DPI); SVG and PDF keep
// the size in points.
const (
	curveWidth, curveHeight = 8 * vg.Inch, 5 * vg.Inch
	// gridImage is the side of one image of the grid.
	gridImage = vg.Length(96) * vg.Inch / figure.DPI
)

// WriteCurve draws robust accuracy against ε in format ("png", "svg" or
// "pdf"; see [FigureFormat]): one line per attack (its robust accuracy as
// in the report's mode), a thick black line for the samples surviving
// every attack with its 95% Wilson interval as a grey band, and a dashed
// line at clean accuracy. Every curve starts at clean accuracy at ε = 0.
// A report with minimal ε per sample ([Config.MinEps]) adds the empirical
// robust accuracy at every ε as a step line, read off the samples' minimal
// perturbations instead of a grid of ε runs.
func (r *Report) WriteCurve(w io.Writer, format string) error {
	if len(r.Points) == 0 {
		return errors.New("evaluate: curve: the report has no ε")
	}
	pts := sortedPoints(r.Points)
	p := figure.New(fmt.Sprintf("Robust accuracy, %s, %s (%d samples)", normSymbol(r.Norm), r.Data, r.Samples), "ε", "accuracy (%)")
	p.Y.Min, p.Y.Max = 0, 100
	p.Y.Tick.Marker = figure.PercentTicks{}
	// A little room right of the last ε keeps its markers whole.
	p.X.Min, p.X.Max = 0, 1.02*pts[len(pts)-1].Eps
	if r.MinEps != nil && len(r.MinEps.Values) > 0 {
		p.X.Max = max(p.X.Max, 1.02*r.MinEps.Values[len(r.MinEps.Values)-1])
	}
	// Accuracy falls with ε: the bottom left is where the lines are not.
	p.Legend.Top, p.Legend.Left = false, true
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(10), vg.Points(10)
	p.Add(plotter.NewGrid())

	// The band: the Wilson interval of the samples that survive every
	// attack, from clean accuracy's interval at ε = 0.
	band := make(plotter.XYs, 0, 2*len(pts)+2)
	band = append(band, plotter.XY{X: 0, Y: 100 * r.Clean.Low})
	for _, pt := range pts {
		band = append(band, plotter.XY{X: pt.Eps, Y: 100 * pt.Robust.Low})
	}
	for i := len(pts) - 1; i >= 0; i-- {
		band = append(band, plotter.XY{X: pts[i].Eps, Y: 100 * pts[i].Robust.High})
	}
	band = append(band, plotter.XY{X: 0, Y: 100 * r.Clean.High})
	poly, err := plotter.NewPolygon(band)
	if err != nil {
		return fmt.Errorf("evaluate: curve: %w", err)
	}
	poly.Color = color.RGBA{0, 0, 0, 40}
	poly.LineStyle.Width = 0
	p.Add(poly)

	clean := plotter.NewFunction(func(float64) float64 { return 100 * r.Clean.Value })
	clean.Color, clean.Width, clean.Dashes = figure.Grey, vg.Points(1.5), []vg.Length{vg.Points(6), vg.Points(4)}
	p.Add(clean)
	p.Legend.Add(fmt.Sprintf("clean %s", pct(r.Clean.Value)), clean)

	for i, a := range pts[0].Attacks {
		xys := plotter.XYs{{X: 0, Y: 100 * r.Clean.Value}}
		for _, pt := range pts {
			if ar := pt.Attack(a.Name); ar != nil && ar.Skipped == "" {
				xys = append(xys, plotter.XY{X: pt.Eps, Y: 100 * ar.Robust.Value})
			}
		}
		l, s, err := plotter.NewLinePoints(xys)
		if err != nil {
			return fmt.Errorf("evaluate: curve: %s: %w", a.Name, err)
		}
		l.Color, l.Width = figure.Colour(i), vg.Points(1.5)
		s.Color, s.Shape = figure.Colour(i), draw.CircleGlyph{}
		p.Add(l, s)
		p.Legend.Add(a.Name, l, s)
	}
	all := plotter.XYs{{X: 0, Y: 100 * r.Clean.Value}}
	for _, pt := range pts {
		all = append(all, plotter.XY{X: pt.Eps, Y: 100 * pt.Robust.Value})
	}
	l, err := plotter.NewLine(all)
	if err != nil {
		return fmt.Errorf("evaluate: curve: %w", err)
	}
	l.Color, l.Width = figure.Black, vg.Points(3)
	p.Add(l)
	p.Legend.Add("all attacks (95% CI)", l, poly)

	if r.MinEps != nil {
		eps, acc := r.MinEps.Curve()
		xys := make(plotter.XYs, 0, len(eps)+1)
		for i := range eps {
			xys = append(xys, plotter.XY{X: eps[i], Y: 100 * acc[i]})
		}
		// The last step runs to the axis' end: the samples the search
		// did not break stay robust.
		xys = append(xys, plotter.XY{X: p.X.Max, Y: xys[len(xys)-1].Y})
		m, err := plotter.NewLine(xys)
		if err != nil {
			return fmt.Errorf("evaluate: curve: minimal ε: %w", err)
		}
		m.StepStyle = plotter.PostStep
		m.Color, m.Width, m.Dashes = figure.Black, vg.Points(1.5), []vg.Length{vg.Points(2), vg.Points(2)}
		p.Add(m)
		p.Legend.Add("minimal ε per sample", m)
	}

	ticks := []plot.Tick{{Value: 0, Label: "0"}}
	for _, pt := range pts {
		ticks = append(ticks, plot.Tick{Value: pt.Eps, Label: pt.EpsText})
	}
	if last := pts[len(pts)-1].Eps; p.X.Max > 1.5*last {
		// The minimal-ε line runs past the evaluated budgets: plain
		// ticks label the rest of the axis.
		for _, t := range (plot.DefaultTicks{}).Ticks(0, p.X.Max) {
			if t.Value > 1.2*last && t.Label != "" {
				ticks = append(ticks, t)
			}
		}
	}
	p.X.Tick.Marker = plot.ConstantTicks(thinTicks(ticks, p.X.Max))
	if err := figure.Write(w, curveWidth, curveHeight, format, p); err != nil {
		return fmt.Errorf("evaluate: curve: %w", err)
	}
	return nil
}

// thinTicks keeps the labels of ticks far enough apart to be read: a
// label closer than 6% of the axis to the previous one is dropped (its
// tick stays).
func thinTicks(ticks []plot.Tick, span float64) []plot.Tick {
	last := math.Inf(-1)
	for i := range ticks {
		if ticks[i].Value-last < 0.06*span {
			ticks[i].Label = ""
			continue
		}
		last = ticks[i].Value
	}
	return ticks
}

// FigureFormat returns the format of a figure file from its extension:
// "png", "svg" or "pdf".
func FigureFormat(path string) (string, error) {
	f, err := figure.FormatOf(path)
	if err != nil {
		return "", fmt.Errorf("evaluate: %w", err)
	}
	return f, nil
}

// GridItem is one sample of an adversarial-examples figure.
type GridItem struct {
	Clean, Adv []float32 // C·H·W values in [0,1], NCHW
	// Label is the true class; PredClean and PredAdv the model's
	// predictions on the clean and adversarial images.
	Label, PredClean, PredAdv int
}

// WriteGrid draws clean and adversarial images side by side in format
// ("png", "svg" or "pdf"), cols pairs per row, each pair over the true
// class and the model's predictions: green when a prediction is the true
// class, red otherwise. classes, when given, names the classes. Images are
// C×H×W with C = 1 (grey) or 3 (RGB); each is drawn 96 pixels wide.
func WriteGrid(w io.Writer, format string, items []GridItem, shape [3]int, classes []string, cols int) error {
	c, h, wd := shape[0], shape[1], shape[2]
	if len(items) == 0 {
		return errors.New("evaluate: grid: no images")
	}
	if c != 1 && c != 3 {
		return fmt.Errorf("evaluate: grid: %d channels; only grey or RGB images can be drawn", c)
	}
	for n, it := range items {
		if len(it.Clean) != c*h*wd || len(it.Adv) != c*h*wd {
			return fmt.Errorf("evaluate: grid: image %d has %d/%d values, want %d", n, len(it.Clean), len(it.Adv), c*h*wd)
		}
	}
	if cols <= 0 {
		cols = 4
	}
	cols = min(cols, len(items))
	rows := (len(items) + cols - 1) / cols

	const fontSize = 10
	face := figure.Font(vg.Points(fontSize))
	line := face.Extents().Height * 1.15
	pad := vg.Points(8)
	sty := func(c color.Color) draw.TextStyle {
		return draw.TextStyle{Color: c, Font: face.Font, Handler: &text.Plain{Fonts: font.DefaultCache}}
	}
	name := func(k int) string {
		if k >= 0 && k < len(classes) {
			return classes[k]
		}
		return fmt.Sprint(k)
	}
	// A cell is a pair clean | adversarial over three lines of text.
	cellW := 2*gridImage + pad/2
	for _, it := range items {
		for _, s := range []string{"true: " + name(it.Label), "clean: " + name(it.PredClean), "adv: " + name(it.PredAdv)} {
			cellW = max(cellW, face.Width(s))
		}
	}
	cellH := gridImage + 3*line + pad/2
	header := 2 * line
	width := vg.Length(cols)*(cellW+pad) + pad
	height := header + vg.Length(rows)*(cellH+pad) + pad

	canvas, err := figure.NewCanvas(width, height, format)
	if err != nil {
		return fmt.Errorf("evaluate: grid: %w", err)
	}
	dc := draw.New(canvas)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	dc.FillText(sty(figure.Black), vg.Point{X: pad, Y: height - line*1.3},
		"left: clean, right: adversarial; prediction green if correct, red if wrong")
	for n, it := range items {
		x0 := pad + vg.Length(n%cols)*(cellW+pad)
		top := height - header - pad - vg.Length(n/cols)*(cellH+pad)
		y0 := top - gridImage // bottom of the images
		dc.DrawImage(vg.Rectangle{Min: vg.Point{X: x0, Y: y0}, Max: vg.Point{X: x0 + gridImage, Y: top}}, toImage(it.Clean, shape))
		ax := x0 + gridImage + pad/2
		dc.DrawImage(vg.Rectangle{Min: vg.Point{X: ax, Y: y0}, Max: vg.Point{X: ax + gridImage, Y: top}}, toImage(it.Adv, shape))
		mark := func(pred int) color.Color {
			if pred == it.Label {
				return figure.Good
			}
			return figure.Bad
		}
		y := y0 - line
		dc.FillText(sty(figure.Black), vg.Point{X: x0, Y: y}, "true: "+name(it.Label))
		dc.FillText(sty(mark(it.PredClean)), vg.Point{X: x0, Y: y - line}, "clean: "+name(it.PredClean))
		dc.FillText(sty(mark(it.PredAdv)), vg.Point{X: x0, Y: y - 2*line}, "adv: "+name(it.PredAdv))
	}
	if _, err := canvas.WriteTo(w); err != nil {
		return fmt.Errorf("evaluate: grid: %w", err)
	}
	return nil
}

// toImage turns an NCHW image in [0,1] into an image magnified with
// nearest-neighbour sampling to about 96 pixels, so that viewers and
// vector formats do not blur its pixels.
func toImage(pix []float32, shape [3]int) image.Image {
	c, h, w := shape[0], shape[1], shape[2]
	zoom := max(1, 96/max(h, w))
	img := image.NewRGBA(image.Rect(0, 0, w*zoom, h*zoom))
	byteOf := func(v float32) uint8 { return uint8(math.Round(float64(min(max(v, 0), 1)) * 255)) }
	for y := range h * zoom {
		for x := range w * zoom {
			i := (y/zoom)*w + x/zoom
			var col color.RGBA
			if c == 1 {
				v := byteOf(pix[i])
				col = color.RGBA{v, v, v, 255}
			} else {
				col = color.RGBA{byteOf(pix[i]), byteOf(pix[h*w+i]), byteOf(pix[2*h*w+i]), 255}
			}
			img.SetRGBA(x, y, col)
		}
	}
	return img
}
