// Package figure holds what robust's figures have in common: the output
// format chosen by a file's extension, the canvas, the fonts and the
// colour palette. The figures themselves (robustness curves, training
// curves, adversarial-example grids) are drawn with gonum.org/v1/plot in
// the packages that own their data.
package figure

import (
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// ErrFormat is returned for a file extension no figure can be written as.
var ErrFormat = errors.New("figure: unsupported format (want .png, .svg or .pdf)")

// FormatOf returns the format of a figure file from its extension: "png",
// "svg" or "pdf".
func FormatOf(path string) (string, error) {
	ext := strings.ToLower(strings.TrimPrefix(filepath.Ext(path), "."))
	if CheckFormat(ext) != nil {
		return "", fmt.Errorf("%w: %s", ErrFormat, path)
	}
	return ext, nil
}

// CheckFormat reports whether format is one figures are written in.
func CheckFormat(format string) error {
	switch format {
	case "png", "svg", "pdf":
		return nil
	}
	return fmt.Errorf("%w: %q", ErrFormat, format)
}

// DPI is the resolution of raster figures: a figure w inches wide is
// w·DPI pixels wide in PNG.
const DPI = 96

// NewCanvas returns a canvas of the given size that writes format.
func NewCanvas(width, height vg.Length, format string) (vg.CanvasWriterTo, error) {
	if err := CheckFormat(format); err != nil {
		return nil, err
	}
	return draw.NewFormattedCanvas(width, height, format)
}

// Write draws the plots, stacked in one column and aligned on their
// axes, on a canvas of the given size and writes it to w.
func Write(w io.Writer, width, height vg.Length, format string, plots ...*plot.Plot) error {
	c, err := NewCanvas(width, height, format)
	if err != nil {
		return err
	}
	dc := draw.New(c)
	if len(plots) == 1 {
		plots[0].Draw(dc)
	} else {
		rows := make([][]*plot.Plot, len(plots))
		for i, p := range plots {
			rows[i] = []*plot.Plot{p}
		}
		tiles := draw.Tiles{Rows: len(plots), Cols: 1, PadTop: vg.Points(4), PadBottom: vg.Points(4), PadX: vg.Points(4), PadY: vg.Points(10)}
		canvases := plot.Align(rows, tiles, dc)
		for i, p := range plots {
			p.Draw(canvases[i][0])
		}
	}
	_, err = c.WriteTo(w)
	return err
}

// Font returns the sans-serif face of the figures at the given size.
func Font(size vg.Length) font.Face {
	return font.DefaultCache.Lookup(font.Font{Typeface: "Liberation", Variant: "Sans"}, size)
}

// New returns an empty plot styled like every figure: sans-serif text,
// a legend at the top right, a light grid left to the caller.
func New(title, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	sans := font.Font{Typeface: "Liberation", Variant: "Sans"}
	p.Title.Text = title
	p.Title.TextStyle.Font = font.From(sans, 13)
	p.X.Label.Text, p.Y.Label.Text = xLabel, yLabel
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = font.From(sans, 11)
		a.Tick.Label.Font = font.From(sans, 10)
	}
	p.Legend.TextStyle.Font = font.From(sans, 10)
	p.Legend.Top = true
	return p
}

// PercentTicks marks an axis of percentages: a labelled tick every 20%,
// a minor one every 10%.
type PercentTicks struct{}

// Ticks implements plot.Ticker.
func (PercentTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	for v := 10 * math.Ceil(lo/10); v <= hi; v += 10 {
		t := plot.Tick{Value: v}
		if int(v)%20 == 0 {
			t.Label = strconv.Itoa(int(v))
		}
		ticks = append(ticks, t)
	}
	return ticks
}

// RGB is an opaque colour 0xRRGGBB; as a constant it needs no mutable
// package variable.
type RGB uint32

// RGBA implements color.Color.
func (c RGB) RGBA() (r, g, b, a uint32) {
	r, g, b = uint32(c>>16&0xff), uint32(c>>8&0xff), uint32(c&0xff)
	return r * 0x101, g * 0x101, b * 0x101, 0xffff
}

// Colours used for meaning rather than series.
const (
	Black RGB = 0x000000
	Grey  RGB = 0x787878
	Good  RGB = 0x00823c // a correct prediction
	Bad   RGB = 0xc81e1e // a wrong prediction
)

// Colour returns the i-th colour of the palette (Okabe–Ito, safe for
// colour-blind readers), cycling.
func Colour(i int) color.Color {
	palette := [...]RGB{0xe69f00, 0x56b4e9, 0x009e73, 0xd55e00, 0x0072b2, 0xcc79a7, 0xf0e442}
	return palette[i%len(palette)]
}
