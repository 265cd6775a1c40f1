package evaluate_test

import (
	"bytes"
	"fmt"
	"image/png"
	"log"
	"os"
	"path/filepath"

	"github.com/robust-go/robust/evaluate"
)

// Draw a report's robustness curve in the format its file name asks for.
func ExampleReport_WriteCurve() {
	acc := func(correct int) evaluate.Accuracy { return evaluate.NewAccuracy(correct, 1000) }
	report := &evaluate.Report{Data: "fashion-mnist/test", Samples: 1000, Norm: "linf", Clean: acc(860),
		Points: []evaluate.Point{
			{Eps: 0.05, EpsText: "0.05", Robust: acc(740), Attacks: []evaluate.AttackResult{{Name: "pgd", Robust: acc(740)}}},
			{Eps: 0.1, EpsText: "0.1", Robust: acc(510), Attacks: []evaluate.AttackResult{{Name: "pgd", Robust: acc(510)}}},
		}}
	dir, err := os.MkdirTemp("", "curve")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "curve.png") // or curve.svg, curve.pdf
	format, err := evaluate.FigureFormat(path)
	if err != nil {
		log.Fatal(err)
	}
	var b bytes.Buffer
	if err := report.WriteCurve(&b, format); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
	img, err := png.Decode(&b)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(format, img.Bounds().Dx(), "×", img.Bounds().Dy())
	// Output: png 768 × 480
}
