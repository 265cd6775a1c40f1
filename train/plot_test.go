package train

import (
	"bytes"
	"encoding/xml"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestReadLog(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "log.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l, err := ReadLog(f)
	if err != nil {
		t.Fatal(err)
	}
	if l.Config == nil || l.Config.Method != Free || l.Config.Replays != 4 || l.TotalSteps != 48 {
		t.Errorf("config %+v, %d steps; want the resume's: free, m=4, 48 steps", l.Config, l.TotalSteps)
	}
	h := l.Passes
	// Three passes; pass 2, logged again after the resume, with its
	// last values.
	if len(h) != 3 {
		t.Fatalf("%d passes, want 3: %+v", len(h), h)
	}
	for i, s := range h {
		if s.Pass != i+1 || s.EpochEquivalents != 4*(i+1) {
			t.Errorf("pass %d: %+v", i+1, s)
		}
	}
	if h[1].Loss != 1.50 || h[1].HeldoutPGD == nil || *h[1].HeldoutPGD != 0.30 {
		t.Errorf("pass 2 kept %+v, want the values logged after the resume", h[1])
	}
	for _, bad := range []string{"{\"event\":\"pass\"\n", "not json\n"} {
		if _, err := ReadLog(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("ReadLog(%q) = %v, want an error naming line 1", bad, err)
		}
	}
}

func TestWriteCurves(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "log.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l, err := ReadLog(f)
	if err != nil {
		t.Fatal(err)
	}
	// The learning rate follows the schedule: piecewise ×0.1 at half and
	// three quarters of the 48 steps, 4 steps per epoch-equivalent.
	lr, ok := l.schedule()
	if !ok {
		t.Fatal("no schedule from the log's configuration")
	}
	for _, p := range lr {
		want := 0.05
		switch step := p.X * 4; {
		case step >= 36:
			want = 0.0005
		case step >= 24:
			want = 0.005
		}
		if math.Abs(p.Y-want) > 1e-12 {
			t.Errorf("lr at %.2f epoch-equivalents: %v, want %v", p.X, p.Y, want)
		}
	}
	noConfig := &RunLog{Passes: l.Passes}
	if _, ok := noConfig.schedule(); ok {
		t.Error("a schedule without the run's configuration")
	}
	for _, tc := range []struct {
		format string
		// 8×9 inches: 768×864 pixels in PNG, 576×648 points in SVG.
		wantW, wantH string
	}{
		{"png", "768", "864"},
		{"svg", "576pt", "648pt"},
	} {
		var b bytes.Buffer
		if err := l.WriteCurves(&b, tc.format); err != nil {
			t.Fatalf("%s: %v", tc.format, err)
		}
		var w, hgt string
		switch tc.format {
		case "png":
			img, err := png.Decode(&b)
			if err != nil {
				t.Fatalf("png: %v", err)
			}
			w, hgt = strconv.Itoa(img.Bounds().Dx()), strconv.Itoa(img.Bounds().Dy())
		case "svg":
			var root struct {
				Width  string `xml:"width,attr"`
				Height string `xml:"height,attr"`
			}
			if err := xml.Unmarshal(b.Bytes(), &root); err != nil {
				t.Fatalf("svg: %v", err)
			}
			w, hgt = root.Width, root.Height
		}
		if w != tc.wantW || hgt != tc.wantH {
			t.Errorf("%s: %s×%s, want %s×%s", tc.format, w, hgt, tc.wantW, tc.wantH)
		}
	}
	if err := noConfig.WriteCurves(new(bytes.Buffer), "png"); err != nil {
		t.Errorf("curves without the configuration: %v", err)
	}
	if err := (&RunLog{}).WriteCurves(new(bytes.Buffer), "png"); err == nil {
		t.Error("curves of no pass drawn")
	}
	if err := l.WriteCurves(new(bytes.Buffer), "bmp"); err == nil {
		t.Error("curves drawn as BMP")
	}
}
